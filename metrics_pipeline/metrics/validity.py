"""Row validity (METRICS.md edge rule 13), derived from the contract.

A row breaks the contract when a required column is NULL, an enumerated column holds an unknown
value, an amount or counter is negative, or a currency is not 'USD'. Such rows are left out of
every metric (`valid_rows`); the `source_expectations` check reports them (quality/expectations.py),
naming table, column, rule and row ids.
"""

from __future__ import annotations

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable


def valid_rows(table: SourceTable, t: sa.Table) -> sa.ColumnElement:
    """Predicate true for rows that follow the contract (NULL-safe: comparisons on NULL fail)."""
    conds = []
    for c in table.present_columns:
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
