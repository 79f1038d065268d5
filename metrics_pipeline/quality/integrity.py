"""Integrity rules on the rows a metric asset wrote to `metric_values`, per period.

- required keys present and the unique key unique;
- counts and money not negative (except metrics whose definition allows it);
- rates that their definition bounds (a subset over its whole) within [0, 1];
- weekly and monthly additive metrics equal to the sum of their days (METRICS.md rollup rule),
  where every day of the period is in the warehouse.
Any violation means wrong numbers would spread: the check that runs these rules is blocking.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.metrics.periods import Period, periods_between
from metrics_pipeline.metrics.spec import MetricDef
from metrics_pipeline.warehouse_schema import metric_values

MAY_BE_NEGATIVE = frozenset({"net_revenue", "net_mrr_churn_rate", "net_revenue_retention", "arpu", "clv", "roas"})
# share of a whole that contains it, by definition (not by the data's good will)
BOUNDED_RATES = frozenset({"retention_d1", "retention_d7", "retention_d30", "stickiness", "customer_churn_rate",
                           "gross_mrr_churn_rate", "ai_success_rate", "failure_rate", "retention_w1",
                           "retention_w4", "funnel_conversion"})
REQUIRED = ("metric", "grain", "period_start", "period_end", "dimension", "dimension_value", "source")
KEY = ("metric", "grain", "period_start", "dimension", "dimension_value")
TOLERANCE = 1e-6  # relative, for sums of floats


@dataclass(frozen=True)
class Violation:
    rule: str  # required_keys | unique_key | non_negative | rate_bounds | sum_of_days
    period: str
    metric: str | None
    dimension: str | None
    actual: float | None
    expected: float | None
    message: str


def _dim(row) -> str:
    return "" if not row.dimension else f"{row.dimension}={row.dimension_value}"


def violations(conn: sa.Connection, metrics: Sequence[MetricDef], grain: str,
               periods: Sequence[Period]) -> list[Violation]:
    """Every integrity rule broken by the rows of `metrics` at `grain` in `periods`."""
    mv = metric_values.c
    names = sorted(m.name for m in metrics)
    scope = sa.and_(mv.grain == grain, mv.metric.in_(names),
                    mv.period_start >= periods[0].key, mv.period_start < periods[-1].end_key)
    found: list[Violation] = []
    missing = sa.or_(*(mv[c].is_(None) for c in REQUIRED))
    for row in conn.execute(sa.select(mv.metric, mv.period_start, sa.func.count()).where(scope, missing)
                            .group_by(mv.metric, mv.period_start)):
        found.append(Violation("required_keys", row.period_start or "?", row.metric, None, row[2], 0,
                               f"{row[2]} row(s) of {row.metric} lack a required key column"))
    dupes = (sa.select(*(mv[c] for c in KEY), sa.func.count().label("n")).where(scope)
             .group_by(*(mv[c] for c in KEY)).having(sa.func.count() > 1))
    for row in conn.execute(dupes):
        found.append(Violation("unique_key", row.period_start, row.metric, _dim(row), row.n, 1,
                               f"{row.metric} {_dim(row) or 'total'} has {row.n} rows for one key"))
    kinds = {m.name: m for m in metrics}
    for row in conn.execute(sa.select(mv.metric, mv.period_start, mv.dimension, mv.dimension_value, mv.value)
                            .where(scope, mv.value.is_not(None))):
        if row.value < 0 and row.metric not in MAY_BE_NEGATIVE:
            found.append(Violation("non_negative", row.period_start, row.metric, _dim(row), row.value, 0,
                                   f"{row.metric} {_dim(row) or 'total'} is negative ({row.value:,.6g})"))
        if row.metric in BOUNDED_RATES and row.value > 1:
            found.append(Violation("rate_bounds", row.period_start, row.metric, _dim(row), row.value, 1,
                                   f"{row.metric} {_dim(row) or 'total'} is {row.value:.6g}, above 1"))
    additive = [n for n in names if kinds[n].kind == "additive" and "day" in kinds[n].grains]
    if grain in ("week", "month") and additive:
        found += _sum_of_days(conn, additive, periods)
    return sorted(found, key=lambda v: (v.period, v.rule, v.metric or "", v.dimension or ""))


def _sum_of_days(conn: sa.Connection, metrics: list[str], periods: Sequence[Period]) -> list[Violation]:
    """Additive metrics whose period total differs from the sum of the period's daily totals."""
    mv = metric_values.c
    rows = conn.execute(sa.select(mv.grain, mv.metric, mv.period_start, mv.value).where(
        mv.metric.in_(metrics), mv.dimension == "", mv.grain.in_([periods[0].grain, "day"]),
        mv.period_start >= periods[0].key, mv.period_start < periods[-1].end_key)).all()
    days: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r.grain == "day":
            days[r.metric][r.period_start] = r.value or 0.0
    found = []
    for r in rows:
        if r.grain == "day":
            continue
        period = next(p for p in periods if p.key == r.period_start)
        keys = [d.key for d in periods_between("day", period.start, period.end, period.tz)]
        if not all(k in days[r.metric] for k in keys):
            continue  # the period's days are not all materialized: nothing to compare with
        total = sum(days[r.metric][k] for k in keys)
        value = r.value or 0.0
        if abs(value - total) > TOLERANCE * max(1.0, abs(total)):
            found.append(Violation("sum_of_days", r.period_start, r.metric, None, value, total,
                                   f"{r.metric} of {period.grain} {r.period_start} is {value:,.6g} but its "
                                   f"{len(keys)} days sum to {total:,.6g}"))
    return found

