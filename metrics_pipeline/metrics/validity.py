"""Row validity (METRICS.md edge rule 13), derived from the contract.

A row breaks the contract when a required column is NULL, an enumerated column holds an unknown
value, an amount or counter is negative, or a currency is not 'USD'. Such rows are left out of
every metric (`valid_rows`) and reported per period by `invalid_rows_by_period`, naming table,
column, rule and row ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable
from metrics_pipeline.metrics.periods import Period, in_period, periods_subquery


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
    period: str  # period_start of the rows' period
    rows: int
    sample_ids: tuple[str, ...]


def _row_id(table: SourceTable, t: sa.Table) -> sa.ColumnElement:
    """The row's id as text; a composite key reads "2026-01-05|meta_ads|c1" (`+` renders `||`)."""
    parts = [sa.cast(t.c[k], sa.Text) for k in table.key]
    row_id = parts[0]
    for part in parts[1:]:
        row_id = row_id + sa.literal("|", sa.Text) + part
    return row_id


def invalid_rows_by_period(
    conn: sa.Connection, table: SourceTable, time_columns: list[str], periods: list[Period], samples: int = 5,
) -> list[Violation]:
    """Every rule broken by rows of `table` whose time column(s) fall in `periods`, per period, with
    the count of bad rows and up to `samples` of their ids."""
    t = table.sa_table()
    p = periods_subquery(periods, conn.dialect.name)
    joined = p.join(t, sa.or_(*(in_period(t, c, p) for c in time_columns)))
    row_id = _row_id(table, t)
    found = []
    for rule in rules(table):
        bad = rule.violated(t, table.column(rule.column).allowed)
        counts = dict(conn.execute(sa.select(p.c.period_start, sa.func.count()).select_from(joined)
                                   .where(bad).group_by(p.c.period_start)).all())
        if not counts:
            continue
        ranked = (sa.select(p.c.period_start, row_id.label("rid"),
                            sa.func.row_number().over(partition_by=p.c.period_start, order_by=row_id).label("rn"))
                  .select_from(joined).where(bad).subquery())
        ids: dict[str, list[str]] = {}
        for period, rid in conn.execute(sa.select(ranked.c.period_start, ranked.c.rid).where(ranked.c.rn <= samples)
                                        .order_by(ranked.c.period_start, ranked.c.rn)):
            ids.setdefault(str(period), []).append(str(rid))
        found += [Violation(table.name, rule.column, rule.name, rule.describe(table), str(period), int(n),
                            tuple(ids.get(str(period), ())))
                  for period, n in sorted(counts.items())]
    return found
