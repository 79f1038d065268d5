"""Schema changes of source tables: the live columns compared with the last stored snapshot.

Before the first snapshot of a table, the contract is the baseline (only removals count then:
extra columns are allowed by the contract). Severity by kind:
- a removed contract column: `high`, raised to `critical` as soon as a metric fails for reading it
  (`defs/source_access.py`); metrics that do not read it go on;
- a removed column outside the contract: `medium`;
- a changed type: `high` for a contract column, `low` otherwise;
- an added column: `low`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable


@dataclass(frozen=True)
class Change:
    table: str
    column: str
    kind: str  # added | removed | type_changed
    severity: str
    before: str | None
    after: str | None

    @property
    def message(self) -> str:
        what = {"added": f"column {self.column} ({self.after}) was added",
                "removed": f"column {self.column} ({self.before}) was removed",
                "type_changed": f"column {self.column} changed type from {self.before} to {self.after}"}[self.kind]
        return f"{self.table}: {what}."


def live_columns(conn: sa.Connection, table: str) -> dict[str, str]:
    """{column: type as the database reports it} of a table; empty if the table does not exist."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table):
        return {}
    return {c["name"]: str(c["type"]).upper() for c in inspector.get_columns(table)}


def changes(table: SourceTable, previous: dict[str, str] | None, live: dict[str, str]) -> list[Change]:
    """What changed in `table` since `previous` (None: no snapshot yet, compare with the contract)."""
    contract = set(table.column_names)
    if previous is None:
        return [Change(table.name, c, "removed", "high", "contract", None)
                for c in table.column_names if c not in live]
    found = []
    for column, before in previous.items():
        if column not in live:
            found.append(Change(table.name, column, "removed", "high" if column in contract else "medium",
                                before, None))
        elif live[column] != before:
            found.append(Change(table.name, column, "type_changed", "high" if column in contract else "low",
                                before, live[column]))
    found += [Change(table.name, c, "added", "low", None, t) for c, t in live.items() if c not in previous]
    return found
