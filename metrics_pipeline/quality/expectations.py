"""Source validation with Great Expectations 1.x: one expectation suite per source table, built
from the contract and evaluated inside the source database (SQL pushdown) over a window's rows.

A table's suite expects: required columns not NULL, enumerated columns within their values,
amounts and counters not negative, `currency = 'USD'`, `ended_at >= started_at` where a table has
both, and references (e.g. `payments.user_id` -> `users.id`) that resolve in the same database.
Each bad row is attributed to the period of its time column (`SourceTable.time_column`), so one
validation of a backfill range names every failing partition with its count and sample ids.
Memory grows with the number of bad rows reported, never with the rows validated.
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable
from metrics_pipeline.metrics.periods import Period, periods_subquery
from metrics_pipeline.metrics.sqltime import date_literal, epoch_micros, naive_utc, timestamp_literal
from metrics_pipeline.resources.engines import engine_for, utc_session_args

SAMPLES = 5


@dataclass(frozen=True)
class Failure:
    """Rows of one table and period that fail one expectation."""

    table: str
    column: str
    expectation: str  # the GX expectation type, e.g. expect_column_values_to_not_be_null
    requirement: str  # what the contract asks, in words
    period: str  # period_start of the rows' period
    rows: int
    sample_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Rule:
    column: str
    requirement: str
    expectation: object  # a gx Expectation
    grouped: bool  # an UnexpectedRowsExpectation whose query already groups bad rows by period


def _gx():
    """Great Expectations, imported on first use (about 3 s) with its telemetry switched off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _window_sql(table: SourceTable, periods: Sequence[Period], dialect: str) -> str:
    col = table.time_column
    if table.column(col).kind == "date":
        lo, hi = (date_literal(d, dialect) for d in (periods[0].start.date(), periods[-1].end.date()))
    else:
        lo, hi = (timestamp_literal(t, dialect) for t in (periods[0].start_utc, periods[-1].end_utc))
    return f"SELECT * FROM {table.name} WHERE {col} >= {lo} AND {col} < {hi}"


def _grouped_rows_query(table: SourceTable, bad: str, periods: Sequence[Period], dialect: sa.Dialect) -> str:
    """Bad rows of the batch counted per period, with the first and last id as samples.

    The bad rows are found first and only they are matched to periods: SQLite would otherwise
    flatten the subquery and test every row of the window against every period (a 120-day window of
    560 k sessions: 4.2 s instead of 0.8 s). `LIMIT -1` (no limit) is SQLite's way to keep the
    subquery whole; PostgreSQL plans it well as it is (and rejects a negative LIMIT).
    """
    p = periods_subquery(list(periods), dialect.name)
    values = str(p.element.compile(dialect=dialect))
    col = table.time_column
    bounds = ("lo_date", "hi_date") if table.column(col).kind == "date" else ("lo", "hi")
    key = table.key[0]
    keep_whole = " LIMIT -1" if dialect.name == "sqlite" else ""
    return (f"SELECT p.period_start AS period, count(*) AS bad_rows, min(b.{key}) AS first_id, "
            f"max(b.{key}) AS last_id FROM (SELECT * FROM {{batch}} b WHERE {bad}{keep_whole}) b JOIN ({values}) p "
            f"ON b.{col} >= p.{bounds[0]} AND b.{col} < p.{bounds[1]} GROUP BY p.period_start")


def _sql(expr: sa.ColumnElement, dialect: sa.Dialect) -> str:
    return str(expr.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def rules(table: SourceTable, periods: Sequence[Period], dialect: sa.Dialect) -> list[_Rule]:
    """The table's expectation suite, as (column, requirement, expectation) rules."""
    ex = _gx().expectations
    out = []
    present = {c.name for c in table.present_columns}  # a dropped column is alerted as a schema change
    for c in table.present_columns:
        if not c.nullable:
            out.append(_Rule(c.name, f"{c.name} must not be NULL",
                             ex.ExpectColumnValuesToNotBeNull(column=c.name), False))
        if c.allowed:
            out.append(_Rule(c.name, f"{c.name} must be one of {', '.join(c.allowed)}",
                             ex.ExpectColumnValuesToBeInSet(column=c.name, value_set=list(c.allowed)), False))
        if c.non_negative:
            out.append(_Rule(c.name, f"{c.name} must not be negative",
                             ex.ExpectColumnValuesToBeBetween(column=c.name, min_value=0), False))
        if c.usd:
            out.append(_Rule(c.name, f"{c.name} must be 'USD'",
                             ex.ExpectColumnValuesToBeInSet(column=c.name, value_set=["USD"]), False))
    b = sa.table("b", *(sa.column(c) for c in present))
    if {"started_at", "ended_at"} <= present:
        # instants compared as numbers: SQLite text with and without a fraction must agree
        bad = _sql(epoch_micros(b.c.ended_at) < epoch_micros(b.c.started_at), dialect)
        out.append(_Rule("ended_at", "ended_at must not be before started_at", ex.UnexpectedRowsExpectation(
            unexpected_rows_query=_grouped_rows_query(table, bad, periods, dialect),
            description=f"{table.name}.ended_at >= started_at"), True))
    for column, parent in table.references:
        if column not in present:
            continue
        bad = f"b.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} r WHERE r.id = b.{column})"
        out.append(_Rule(column, f"{column} must match an id of {parent}", ex.UnexpectedRowsExpectation(
            unexpected_rows_query=_grouped_rows_query(table, bad, periods, dialect),
            description=f"{table.name}.{column} references {parent}.id"), True))
    return out


class _PeriodFinder:
    """Maps a bad row's time value (text on SQLite, datetime/date on PostgreSQL) to its period."""

    def __init__(self, periods: Sequence[Period], is_date: bool):
        self.periods = list(periods)
        self.is_date = is_date
        self.starts = [p.start.date() if is_date else p.start_utc for p in periods]

    def __call__(self, value) -> str | None:
        if value is None:
            return None
        if self.is_date:
            value = dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value
        else:
            value = naive_utc(value)
        i = bisect.bisect_right(self.starts, value) - 1
        return self.periods[i].key if i >= 0 else None


def validate_tables(url: str, tables: Sequence[SourceTable], periods: Sequence[Period]) -> tuple[list[Failure], dict]:
    """Run each table's suite over the rows of `periods` in the database at `url`.

    Returns the failures per (table, rule, period) and a summary per table for check metadata
    (rows validated, expectations evaluated and failed).
    """
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.validator.v1_validator import Validator

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    with warnings.catch_warnings():  # "a more specific datasource may be more appropriate": one serves both
        warnings.simplefilter("ignore")
        # On PostgreSQL the window's rows go to a temporary table first: for a query asset GX reads
        # the column names by running the whole query, and psycopg2 would hold all its rows in memory
        # (a 14-day validation: 369 MiB at 1x rows, 651 MiB at 10x; benchmarks/results/fixes.md)
        source = context.data_sources.add_sql(name="source", connection_string=url,
                                              create_temp_table=url.startswith("postgresql"),
                                              kwargs={"connect_args": utc_session_args(url)})
    dialect = engine_for(url, read_only=True).dialect
    failures: list[Failure] = []
    summary: dict[str, dict] = {}
    for table in tables:
        table_rules = rules(table, periods, dialect)
        suite = gx.ExpectationSuite(name=table.name, expectations=[r.expectation for r in table_rules])
        window = source.add_query_asset(name=table.name, query=_window_sql(table, periods, dialect.name))
        # One validator, so the window is fetched (on PostgreSQL: copied to a temporary table) once.
        # First every expectation's count of bad rows alone (GX bundles them into one aggregate query;
        # no sample: a sample is a query per expectation that scans the whole window when nothing is
        # wrong), then the bad rows' ids, only for the expectations that failed.
        validator = Validator(batch_definition=window.add_batch_definition_whole_table("window"),
                              result_format={"result_format": "BASIC", "partial_unexpected_count": 0})
        result = validator.validate_expectation_suite(suite)
        index_columns = list(dict.fromkeys([*table.key, table.time_column]))
        validator.result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": index_columns}
        find_period = _PeriodFinder(periods, table.column(table.time_column).kind == "date")
        failed = 0
        for rule, res in zip(table_rules, result.results, strict=True):
            if res.success:
                continue
            failed += 1
            res = validator.validate_expectation(rule.expectation)
            kind = res.expectation_config.type
            if rule.grouped:
                for row in res.result["details"]["unexpected_rows"]:
                    period, n, first, last = (row[k] for k in ("period", "bad_rows", "first_id", "last_id"))
                    failures.append(Failure(table.name, rule.column, kind, rule.requirement, str(period), int(n),
                                            tuple(dict.fromkeys(map(str, (first, last))))))
                continue
            by_period: dict[str, list[str]] = defaultdict(list)
            for row in res.result.get("unexpected_index_list") or []:
                period = find_period(row[table.time_column])
                if period is not None:
                    by_period[period].append("|".join(str(row[k]) for k in table.key))
            failures += [Failure(table.name, rule.column, kind, rule.requirement, period, len(ids),
                                 tuple(sorted(ids)[:SAMPLES])) for period, ids in sorted(by_period.items())]
        rows = next((r.result.get("element_count") for r in result.results if "element_count" in r.result), None)
        summary[table.name] = {"rows_validated": rows, "expectations": len(table_rules), "failed": failed}
    return sorted(failures, key=lambda f: (f.period, f.table, f.column, f.expectation)), summary
