"""AI usage metrics from `app.ai_requests`: volume, tokens, cost, success and latency."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import UNKNOWN, number, source_table, valid
from metrics_pipeline.metrics.periods import Period, place
from metrics_pipeline.metrics.spec import (
    DAY_WEEK_MONTH, CustomMetrics, Domain, MetricDef, MetricRow, MetricSpec, count, total, value_row,
)


def _completed(t: sa.Table) -> sa.ColumnElement:
    return t.c.status == "completed"


def latency_p95(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    """Nearest-rank p95 of completed requests' duration_ms: the value at rank ceil(0.95 n) (edge rule 9).

    Window functions rank the rows inside the database on both engines; only one row per period
    and model comes back. ceil(0.95 n) is computed in integers as (95 n + 99) / 100.
    """
    t = source_table("ai_requests")
    placed = place(t, "created_at", periods, conn.dialect.name)
    rows: list[MetricRow] = []
    by_key = {period.key: period for period in periods}
    for dim in ("", "model"):
        group = [placed.period_start] + ([sa.func.coalesce(t.c.model, UNKNOWN)] if dim else [])
        ranked = (
            sa.select(
                placed.period_start,
                (group[1] if dim else sa.literal("")).label("dim_value"),
                t.c.duration_ms,
                sa.func.row_number().over(partition_by=group, order_by=t.c.duration_ms).label("rn"),
                sa.func.count().over(partition_by=group).label("n"),
            )
            .select_from(placed.joined)
            .where(placed.window, valid(t), _completed(t))
            .subquery("ranked")
        )
        q = sa.select(ranked.c.period_start, ranked.c.dim_value, ranked.c.duration_ms).where(
            ranked.c.rn == (ranked.c.n * 95 + 99) // 100)
        for r in conn.execute(q):
            rows.append(value_row("ai_latency_p95_ms", by_key[str(r.period_start)], number(r.duration_ms),
                                  dim, str(r.dim_value) if dim else ""))
    return rows


AI = Domain(
    name="ai",
    database="app",
    description="What the AI features cost and how well they serve: requests, tokens, spend, success, latency.",
    specs=(
        MetricSpec("ai_requests", DAY_WEEK_MONTH, "AI feature calls made in the period.",
                   dims=("model", "status"), table="ai_requests"),
        MetricSpec("ai_tokens", DAY_WEEK_MONTH, "Input plus output tokens of the period's AI calls.",
                   dims=("model",), table="ai_requests",
                   measure=total(lambda t: t.c.input_tokens + t.c.output_tokens)),
        MetricSpec("ai_cost", DAY_WEEK_MONTH, "USD spent on the period's AI calls.",
                   dims=("model", "feature"), table="ai_requests", measure=total("cost_micros"), scale=1e6),
        MetricSpec("ai_success_rate", DAY_WEEK_MONTH, "Share of the period's AI calls that completed.",
                   dims=("model",), table="ai_requests", measure=count(_completed), denominator=count()),
    ),
    custom=(
        CustomMetrics(
            (MetricDef("ai_latency_p95_ms", DAY_WEEK_MONTH,
                       "95th percentile (nearest rank) of completed calls' duration in ms; NULL without any.",
                       dims=("model",), kind="ratio"),),
            ("ai_requests",), latency_p95),
    ),
)
