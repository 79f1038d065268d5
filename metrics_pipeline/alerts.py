"""Data-quality alerts: what a check found, stored in `data_quality_alerts` with a severity.

The same problem detected again updates its row (occurrences, last_detected_at) instead of adding
one; a check that evaluates a partition and no longer finds a problem resolves that partition's open
alerts of the check. Severities are the project's four levels; Dagster's WARN/ERROR is derived.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ALERT_TYPES = ("missing_data", "data_spike", "data_drop", "schema_change", "invalid_data",
               "invariant_violation", "freshness", "pipeline_failure")
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Alert:
    alert_type: str
    severity: str
    message: str
    partition_key: str
    period_start: str | None = None
    period_end: str | None = None
    source_table: str | None = None
    column_name: str | None = None
    metric: str | None = None
    dimension: str | None = None
    rule: str | None = None  # distinguishes problems of one column (e.g. not_null vs allowed_values)
    threshold: float | None = None
    actual_value: float | None = None
    expected_value: float | None = None

    def __post_init__(self):
        if self.alert_type not in ALERT_TYPES:
            raise ValueError(f"unknown alert type {self.alert_type!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def key(self, asset: str, check_name: str) -> str:
        parts = (self.alert_type, check_name, asset, self.partition_key, self.source_table, self.column_name,
                 self.metric, self.dimension, self.rule)
        return "|".join("" if p is None else str(p) for p in parts)

    def record(self) -> dict:
        """The alert's columns in `data_quality_alerts` (the rule is part of the key, not a column)."""
        return {k: v for k, v in asdict(self).items() if k != "rule"}


def at_least(severity: str, floor: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)
