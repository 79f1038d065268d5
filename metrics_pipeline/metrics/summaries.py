"""Summary tables built from `metric_values` totals: the daily KPI row and period snapshots with growth.

Pure logic, no Dagster: the assets in `defs/summary_assets.py` read totals from the warehouse, call
these functions and write what they return.

- `daily_kpi_summary`: one wide row per day, one column per headline metric (the table's columns
  name the metrics), copied from the day's totals (dimension '').
- `analytics_snapshots`: one row per (grain, period) holding a JSON document
  `{domain: {metric: {"value": v, "previous": p, "growth": g}}}` where `p` is the same metric's
  total in the previous period of the same grain and `g = (v - p) / p`, NULL when `p` is 0 or
  NULL/missing or `v` is NULL.

Both refuse to write anything when an input total of a period is missing: a missing total means
an upstream asset has not materialized that period, and a half-filled row would read as real data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

from metrics_pipeline.metrics.catalog import DOMAINS
from metrics_pipeline.metrics.derived import DERIVED, MissingInputError
from metrics_pipeline.metrics.periods import Period, shifted
from metrics_pipeline.warehouse_schema import daily_kpi_summary

__all__ = [
    "KPI_METRICS", "DERIVED_DOMAIN", "MissingInputError", "Totals", "growth", "kpi_rows", "missing_totals",
    "previous_period", "snapshot_document", "snapshot_domains", "snapshot_json", "snapshot_rows",
]

# period_start -> metric -> total value (None for a NULL total: present, but undefined)
Totals = Mapping[str, Mapping[str, float | None]]

_BOOKKEEPING = {"computed_at", "run_id"}
# The KPI columns ARE the metric names: the table definition is the single list of headline metrics.
KPI_METRICS: tuple[str, ...] = tuple(
    c.name for c in daily_kpi_summary.columns if c.name != "date" and c.name not in _BOOKKEEPING)
DERIVED_DOMAIN = "derived"
MAX_LISTED = 10


def _number(value) -> float | None:
    """A warehouse value as a float (PostgreSQL may hand back Decimal); NaN/inf read as NULL."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def missing_totals(periods: Iterable[Period], totals: Totals, metrics: Iterable[str]) -> list[str]:
    """`metric@period_start` of every (period, metric) without a total row, in period then metric order."""
    metrics = list(metrics)
    return [f"{m}@{p.key}" for p in periods for m in metrics if m not in totals.get(p.key, {})]


def _require(periods: list[Period], totals: Totals, metrics: Iterable[str], what: str) -> None:
    missing = missing_totals(periods, totals, metrics)
    if missing:
        more = f" (and {len(missing) - MAX_LISTED} more)" if len(missing) > MAX_LISTED else ""
        raise MissingInputError(
            f"{what}: {len(missing)} input total(s) missing from metric_values (materialize the upstream "
            f"assets for these periods first): {', '.join(missing[:MAX_LISTED])}{more}")


# ---- daily KPI summary -------------------------------------------------------------------------

def kpi_rows(periods: list[Period], totals: Totals) -> list[dict]:
    """One `daily_kpi_summary` row per day of `periods` from `totals[day][metric]`.

    Raises MissingInputError naming every missing metric@day; never returns a partial row.
    A NULL total (e.g. a retention rate whose cohort is empty) is written as NULL.
    """
    if any(p.grain != "day" for p in periods):
        raise ValueError("the KPI summary is daily: every period must have grain 'day'")
    _require(periods, totals, KPI_METRICS, "daily_kpi_summary")
    return [{"date": p.key, **{m: _number(totals[p.key][m]) for m in KPI_METRICS}} for p in periods]


# ---- period snapshots --------------------------------------------------------------------------

def snapshot_domains(grain: str) -> dict[str, str]:
    """{metric: domain} of every catalogued metric of `grain`: the domains' metrics and 'derived'."""
    domains = {m.name: d.name for d in DOMAINS if grain in d.grains for m in d.metrics_for(grain)}
    domains.update({d.name: DERIVED_DOMAIN for d in DERIVED if grain in d.grains})
    return domains


def previous_period(period: Period) -> Period:
    return shifted(period, -1)


def growth(value: float | None, previous: float | None) -> float | None:
    """(value - previous) / previous; None when previous is 0 or None, or value is None."""
    if value is None or previous is None or previous == 0:
        return None
    return (value - previous) / previous


def snapshot_document(current: Mapping[str, float | None], previous: Mapping[str, float | None],
                      domains: Mapping[str, str]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{domain: {metric: {value, previous, growth}}} for every metric of `domains`.

    `current` must hold every metric (a None value is a NULL total); a metric absent from `previous`
    has previous None (the previous period was not materialized, or precedes the history).
    """
    doc: dict[str, dict[str, dict[str, float | None]]] = {}
    for metric, domain in domains.items():
        v = _number(current[metric])
        p = _number(previous.get(metric))
        doc.setdefault(domain, {})[metric] = {"value": v, "previous": p, "growth": growth(v, p)}
    return doc


def snapshot_json(document: Mapping) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats as Python's shortest repr."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)


def snapshot_rows(periods: list[Period], totals: Totals, domains: Mapping[str, str]) -> list[dict]:
    """One `analytics_snapshots` row per period of `periods` (all of one grain).

    `totals` holds the totals of `periods` and, when it exists, of the period before the first one
    (the previous of every other period is inside the window). Metrics outside `domains` are ignored.
    Raises MissingInputError when a metric of `domains` has no total in one of `periods`.
    """
    grains = {p.grain for p in periods}
    if len(grains) != 1:
        raise ValueError(f"snapshot periods must share one grain, got {sorted(grains)}")
    _require(periods, totals, domains, f"{periods[0].grain} analytics_snapshots")
    rows = []
    for p in periods:
        doc = snapshot_document(totals[p.key], totals.get(previous_period(p).key, {}), domains)
        rows.append({"grain": p.grain, "period_start": p.key, "period_end": p.end_key,
                     "snapshot": snapshot_json(doc)})
    return rows

