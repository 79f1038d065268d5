"""What the warehouse says to monitoring: the newest value of each headline KPI, and the open
data-quality alerts by type and severity. Read-only, two queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.alerts import ALERT_TYPES, SEVERITIES
from metrics_pipeline.metrics.periods import to_utc
from metrics_pipeline.resources.engines import engine_for, redacted, sqlite_path
from metrics_pipeline.warehouse_schema import data_quality_alerts, metric_values


@dataclass(frozen=True)
class Kpi:
    """One value of the newest period present for a metric and grain: the total (dimension '') or,
    when breakdowns are asked for, one of its breakdown values."""

    metric: str
    grain: str
    dimension: str
    dimension_value: str
    value: float | None
    period_start: float  # Unix time of the period's start (periods are cut in METRICS_TIMEZONE)


@dataclass(frozen=True)
class WarehouseReading:
    kpis: list[Kpi]
    open_alerts: dict[tuple[str, str], int]  # (alert_type, severity) -> open alerts, every pair present


def read_warehouse(url: str, kpis: Sequence[str], breakdowns: Sequence[str], timezone: str) -> WarehouseReading:
    """The newest period of each of `kpis` at every grain it has (its total, plus the `breakdowns`
    values of that period), and the open alerts. Raises when the warehouse cannot be read."""
    path = sqlite_path(url)
    if path is not None and not path.exists():  # SQLite would create an empty file: a reader must not
        raise FileNotFoundError(f"the warehouse {redacted(url)} does not exist")
    with engine_for(url, read_only=True).connect() as conn:
        return WarehouseReading(newest_kpis(conn, kpis, breakdowns, timezone), open_alerts(conn))


def newest_kpis(conn: sa.Connection, kpis: Sequence[str], breakdowns: Sequence[str], timezone: str) -> list[Kpi]:
    """Rows of the newest period_start of each (metric, grain) total among `kpis`: one grouped
    query on the primary key's leading columns, whatever the length of history."""
    mv = metric_values.c
    newest = (sa.select(mv.metric, mv.grain, sa.func.max(mv.period_start).label("period_start"))
              .where(mv.metric.in_(list(kpis)), mv.dimension == "")
              .group_by(mv.metric, mv.grain).subquery())
    rows = conn.execute(
        sa.select(mv.metric, mv.grain, mv.dimension, mv.dimension_value, mv.value, mv.period_start)
        .join(newest, sa.and_(mv.metric == newest.c.metric, mv.grain == newest.c.grain,
                              mv.period_start == newest.c.period_start))
        .where(mv.dimension.in_(["", *breakdowns]))
        .order_by(mv.metric, mv.grain, mv.dimension, mv.dimension_value))
    return [Kpi(r.metric, r.grain, r.dimension, r.dimension_value, None if r.value is None else float(r.value),
                period_timestamp(r.period_start, timezone)) for r in rows]


def period_timestamp(period_start: str, timezone: str) -> float:
    """Unix time of a `period_start` as stored (local `YYYY-MM-DD[ HH:MM:SS]` in `timezone`)."""
    return to_utc(dt.datetime.fromisoformat(period_start), timezone).replace(tzinfo=dt.timezone.utc).timestamp()


def open_alerts(conn: sa.Connection) -> dict[tuple[str, str], int]:
    """Open alerts by (alert_type, severity), 0 for the pairs with none (a series that goes to 0
    when alerts resolve, rather than one that vanishes)."""
    a = data_quality_alerts.c
    counts = dict.fromkeys(((t, s) for t in ALERT_TYPES for s in SEVERITIES), 0)
    for alert_type, severity, n in conn.execute(
            sa.select(a.alert_type, a.severity, sa.func.count()).where(a.is_resolved.is_(False))
            .group_by(a.alert_type, a.severity)):
        counts[(alert_type, severity)] = int(n)
    return counts
