"""The vocabulary of the metric catalogue.

Most metrics are "a count, sum or distinct count of one table's rows whose time column falls in
the period, optionally split by one column": those are `MetricSpec`s, turned into SQL by
`engine.py`. Metrics that need their own logic (MRR movements, retention, stickiness) are declared
as `MetricDef`s and computed by a `CustomMetrics` function; metrics that combine other metrics of
the same period (net revenue, ARR) are `Formula`s. A `Domain` groups them by source database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa

from metrics_pipeline.contract import TABLES
from metrics_pipeline.metrics.periods import Period

ALL_GRAINS = ("hour", "day", "week", "month")
DAY_WEEK_MONTH = ("day", "week", "month")

# How a metric combines across periods, and reads when empty (edge rule 2): additive counts and sums
# add up and are 0 when empty; distinct counts, balances and movements (amounts measured between a
# period's start and end, like MRR movements) are 0 when empty but never add up; ratios, averages
# and percentiles are NULL when empty.
Kind = Literal["additive", "distinct", "ratio", "balance", "movement"]


@dataclass(frozen=True)
class MetricDef:
    """A metric of the catalogue: its name, grains, breakdowns and business meaning."""

    name: str
    grains: tuple[str, ...]
    description: str
    dims: tuple[str, ...] = ()
    kind: Kind = "additive"

    @property
    def empty_value(self) -> float | None:
        return None if self.kind == "ratio" else 0.0


ColumnFn = Callable[[sa.Table], sa.ColumnElement]
WhereFn = Callable[[sa.Table], sa.ColumnElement]


@dataclass(frozen=True)
class Measure:
    """An aggregate over the rows of a period: count, sum of an expression, or distinct count."""

    agg: Literal["count", "sum", "count_distinct"]
    expr: ColumnFn | None = None
    where: WhereFn | None = None

    def sql(self, t: sa.Table) -> sa.ColumnElement:
        cond = self.where(t) if self.where is not None else None
        if self.agg == "count":
            if cond is None:
                return sa.func.count()
            return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)
        value = self.expr(t)
        if cond is not None:
            value = sa.case((cond, value), else_=None)
        if self.agg == "sum":
            return sa.func.coalesce(sa.func.sum(value), 0)
        return sa.func.count(sa.distinct(value))


def count(where: WhereFn | None = None) -> Measure:
    return Measure("count", where=where)


def total(column: str | ColumnFn, where: WhereFn | None = None) -> Measure:
    expr = (lambda t: t.c[column]) if isinstance(column, str) else column
    return Measure("sum", expr, where)


def distinct(column: str, where: WhereFn | None = None) -> Measure:
    return Measure("count_distinct", lambda t: t.c[column], where)


@dataclass(frozen=True)
class MetricSpec(MetricDef):
    """A metric computed by the generic query: `measure / scale` (or a ratio of two measures).

    `table` and `time` name the source table and the timestamp column that places a row in a
    period; each of `dims` is a column of that table.
    """

    table: str = ""
    time: str = "created_at"
    measure: Measure = field(default_factory=count)
    denominator: Measure | None = None
    scale: float = 1.0  # value = measure / scale (cents -> USD: 100, micros -> USD: 1e6)

    def __post_init__(self):
        if self.table not in TABLES:
            raise ValueError(f"metric {self.name}: unknown source table {self.table!r}")
        missing = {self.time, *self.dims} - set(TABLES[self.table].column_names)
        if missing:
            raise ValueError(f"metric {self.name}: {self.table} has no column(s) {sorted(missing)}")
        if self.denominator is not None:
            object.__setattr__(self, "kind", "ratio")
        elif self.measure.agg == "count_distinct":
            object.__setattr__(self, "kind", "distinct")


@dataclass(frozen=True)
class MetricRow:
    """One row of `metric_values` before the run's bookkeeping columns are added."""

    metric: str
    grain: str
    period_start: str
    period_end: str
    dimension: str
    dimension_value: str
    value: float | None
    numerator: float | None = None
    denominator: float | None = None


def ratio_row(metric: str, period: Period, numerator, denominator, dimension="", dim_value="") -> MetricRow:
    """A ratio row: value = numerator / denominator, NULL when the denominator is 0 or missing."""
    num = None if numerator is None else float(numerator)
    den = None if denominator is None else float(denominator)
    value = num / den if num is not None and den else None
    return MetricRow(metric, period.grain, period.key, period.end_key, dimension, dim_value, value, num, den)


def value_row(metric: str, period: Period, value, dimension="", dim_value="") -> MetricRow:
    return MetricRow(metric, period.grain, period.key, period.end_key, dimension, dim_value,
                     None if value is None else float(value))


# A custom computation: (connection, periods of one grain, as_of) -> rows of its metrics.
ComputeFn = Callable[[sa.Connection, list[Period], dt.datetime], list[MetricRow]]


@dataclass(frozen=True)
class CustomMetrics:
    """Hand-written metrics that read `tables` and produce the rows of `metrics`."""

    metrics: tuple[MetricDef, ...]
    tables: tuple[str, ...]
    compute: ComputeFn


@dataclass(frozen=True)
class Formula(MetricDef):
    """A total computed from other totals of the same period: fn(values) -> value or (num, den)."""

    inputs: tuple[str, ...] = ()
    fn: Callable[..., object] = field(default=lambda *a: None)


@dataclass(frozen=True)
class Domain:
    """The metrics that one asset per grain computes from one source database."""

    name: str
    database: str
    description: str
    specs: tuple[MetricSpec, ...] = ()
    custom: tuple[CustomMetrics, ...] = ()
    formulas: tuple[Formula, ...] = ()

    @property
    def definitions(self) -> list[MetricDef]:
        return [*self.specs, *(m for c in self.custom for m in c.metrics), *self.formulas]

    def metrics_for(self, grain: str) -> list[MetricDef]:
        return [m for m in self.definitions if grain in m.grains]

    @property
    def grains(self) -> list[str]:
        return [g for g in ALL_GRAINS if self.metrics_for(g)]

    def tables_for(self, grain: str) -> list[str]:
        """Source tables read at this grain: the asset's true lineage."""
        names = {s.table for s in self.specs if grain in s.grains}
        for c in self.custom:
            if any(grain in m.grains for m in c.metrics):
                names.update(c.tables)
        return sorted(names)
