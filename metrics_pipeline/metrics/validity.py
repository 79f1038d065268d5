"""Row validity (METRICS.md edge rule 13), derived from the contract.

A row breaks the contract when a required column is NULL, an enumerated column holds an unknown
value, an amount or counter is negative, or a currency is not 'USD'. Such rows are left out of
every metric (`valid_rows`) and reported by `invalid_row_report`, which names table, rule and ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable


@dataclass(frozen=True)
class Rule:
    column: str
    name: str  # not_null | allowed_values | non_negative | usd_only

    def violated(self, t: sa.Table, allowed: tuple[str, ...]) -> sa.ColumnElement:
        c = t.c[self.column]
        if self.name == "not_null":
            return c.is_(None)
        if self.name == "allowed_values":
            return c.not_in(allowed)
        if self.name == "non_negative":
            return c < 0
        return c != "USD"

    def describe(self, table: SourceTable) -> str:
        col = table.column(self.column)
        return {
            "not_null": f"{self.column} must not be NULL",
            "allowed_values": f"{self.column} must be one of {', '.join(col.allowed)}",
            "non_negative": f"{self.column} must not be negative",
            "usd_only": f"{self.column} must be 'USD'",
        }[self.name]


def rules(table: SourceTable) -> list[Rule]:
    out = []
    for c in table.columns:
        if not c.nullable:
            out.append(Rule(c.name, "not_null"))
        if c.allowed:
            out.append(Rule(c.name, "allowed_values"))
        if c.non_negative:
            out.append(Rule(c.name, "non_negative"))
        if c.usd:
            out.append(Rule(c.name, "usd_only"))
    return out


def valid_rows(table: SourceTable, t: sa.Table) -> sa.ColumnElement:
    """Predicate true for rows that follow the contract (NULL-safe: comparisons on NULL fail)."""
    conds = []
    for c in table.columns:
        col = t.c[c.name]
        if not c.nullable:
            conds.append(col.is_not(None))
        checks = []
        if c.allowed:
            checks.append(col.in_(c.allowed))
        if c.non_negative:
            checks.append(col >= 0)
        if c.usd:
            checks.append(col == "USD")
        if checks:
            # a nullable checked column is valid when NULL
            cond = sa.and_(*checks)
            conds.append(sa.or_(col.is_(None), cond) if c.nullable else cond)
    return sa.and_(sa.true(), *conds)


@dataclass(frozen=True)
class Violation:
    table: str
    column: str
    rule: str
    message: str
    rows: int
    sample_ids: tuple[str, ...]


def invalid_row_report(
    conn: sa.Connection, table: SourceTable, window: Callable[[sa.Table], sa.ColumnElement] | None = None,
    samples: int = 5,
) -> list[Violation]:
    """Every rule broken by rows of `table` (those matching `window`), with counts and a few row ids."""
    t = table.sa_table()
    where = window(t) if window is not None else sa.true()
    # a composite key reads "2026-01-05|meta_ads|c1"; `+` on text renders as `||` on both engines
    parts = [sa.cast(t.c[k], sa.Text) for k in table.key]
    id_col = parts[0]
    for part in parts[1:]:
        id_col = id_col + sa.literal("|", sa.Text) + part
    found = []
    for rule in rules(table):
        bad = sa.and_(where, rule.violated(t, table.column(rule.column).allowed))
        n = conn.execute(sa.select(sa.func.count()).select_from(t).where(bad)).scalar_one()
        if n:
            ids = conn.execute(sa.select(id_col).where(bad).order_by(id_col).limit(samples)).scalars()
            found.append(Violation(table.name, rule.column, rule.name, rule.describe(table), int(n),
                                   tuple(str(i) for i in ids)))
    return found
