"""Activity metrics from the `app` database: signups, active users, sessions, stickiness, retention."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import number, source_table, valid
from metrics_pipeline.metrics.periods import Period, periods_between, periods_subquery, shifted
from metrics_pipeline.metrics.spec import (
    ALL_GRAINS, DAY_WEEK_MONTH, CustomMetrics, Domain, MetricDef, MetricRow, MetricSpec, count,
    distinct, ratio_row, total,
)
from metrics_pipeline.metrics.sqltime import duration_micros, timestamp_literal

RETENTION_DAYS = (1, 7, 30)


def _ended(t: sa.Table) -> sa.ColumnElement:
    return t.c.ended_at.is_not(None)


SPECS = (
    MetricSpec("new_users", ALL_GRAINS, "Accounts registered in the period (deleted ones included).",
               dims=("platform", "country"), table="users"),
    MetricSpec("active_users", ALL_GRAINS,
               "Distinct users who started a session in the period (DAU/WAU/MAU), by session platform.",
               dims=("platform",), table="user_sessions", time="started_at", measure=distinct("user_id")),
    MetricSpec("sessions", DAY_WEEK_MONTH, "App sessions started in the period.",
               dims=("platform",), table="user_sessions", time="started_at"),
    MetricSpec("avg_session_duration_seconds", DAY_WEEK_MONTH,
               "Mean length in seconds of the sessions started in the period that have ended.",
               dims=("platform",), table="user_sessions", time="started_at",
               measure=total(lambda t: duration_micros(t.c.ended_at, t.c.started_at), _ended),
               denominator=count(_ended), scale=1e6),
)


def daily_active_by_period(conn: sa.Connection, periods: list[Period]) -> dict[str, list[int]]:
    """For each period, the distinct active users of every calendar day in it (0 for idle days)."""
    days = [(p, d) for p in periods for d in periods_between("day", p.start, p.end, p.tz)]
    rel = periods_subquery([d for _, d in days], conn.dialect.name, "d",
                           extra={"parent": [f"'{p.key}'" for p, _ in days]})
    s = source_table("user_sessions")
    q = (
        sa.select(rel.c.parent, rel.c.period_start, sa.func.count(sa.distinct(s.c.user_id)).label("n"))
        .select_from(rel.join(s, sa.and_(s.c.started_at >= rel.c.lo, s.c.started_at < rel.c.hi)))
        .where(valid(s))
        .group_by(rel.c.parent, rel.c.period_start)
    )
    seen = {(str(r.parent), str(r.period_start)): number(r.n) for r in conn.execute(q)}
    out: dict[str, list[int]] = defaultdict(list)
    for p, d in days:
        out[p.key].append(seen.get((p.key, d.key), 0))
    return out


def stickiness(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    """Average daily active users over every day of the month / monthly active users."""
    daily = daily_active_by_period(conn, periods)
    s = source_table("user_sessions")
    p = periods_subquery(periods, conn.dialect.name)
    monthly = {
        str(r.period_start): number(r.n)
        for r in conn.execute(
            sa.select(p.c.period_start, sa.func.count(sa.distinct(s.c.user_id)).label("n"))
            .select_from(p.join(s, sa.and_(s.c.started_at >= p.c.lo, s.c.started_at < p.c.hi)))
            .where(valid(s))
            .group_by(p.c.period_start)
        )
    }
    return [
        ratio_row("stickiness", period, sum(daily[period.key]) / len(daily[period.key]),
                  monthly.get(period.key, 0))
        for period in periods
    ]


def cohort_returns(conn: sa.Connection, pairs: list[tuple[Period, Period]]) -> dict[tuple[str, str], tuple[int, int]]:
    """For (measured, cohort) period pairs: (users returned, cohort size), keyed by (measured, cohort) key.

    The cohort is the valid users created in the cohort period (deleted ones included); a user has
    returned when one of their sessions started in the measured period. Empty cohorts are absent.
    """
    dialect = conn.dialect.name
    c = periods_subquery([cohort for _, cohort in pairs], dialect, "c", extra={
        "measured": [f"'{m.key}'" for m, _ in pairs],
        "m_lo": [timestamp_literal(m.start_utc, dialect) for m, _ in pairs],
        "m_hi": [timestamp_literal(m.end_utc, dialect) for m, _ in pairs],
    })
    users, sessions = source_table("users"), source_table("user_sessions")
    returned = sa.exists().where(
        sessions.c.user_id == users.c.id,
        sessions.c.started_at >= c.c.m_lo,
        sessions.c.started_at < c.c.m_hi,
        valid(sessions),
    )
    q = (
        sa.select(c.c.measured, c.c.period_start, sa.func.count().label("cohort"),
                  sa.func.sum(sa.case((returned, 1), else_=0)).label("returned"))
        .select_from(c.join(users, sa.and_(users.c.created_at >= c.c.lo, users.c.created_at < c.c.hi)))
        .where(valid(users))
        .group_by(c.c.measured, c.c.period_start)
    )
    return {(str(r.measured), str(r.period_start)): (number(r.returned), number(r.cohort)) for r in conn.execute(q)}


def retention(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    """retention_dk for day D: users created on D-k with a session started on D / users created on D-k."""
    pairs = [(p, shifted(p, -k)) for p in periods for k in RETENTION_DAYS]
    got = cohort_returns(conn, pairs)
    return [ratio_row(f"retention_d{k}", p, *got.get((p.key, shifted(p, -k).key), (0, 0)))
            for p in periods for k in RETENTION_DAYS]


ACTIVITY = Domain(
    name="activity",
    database="app",
    description="Who signs up and who comes back: new and active users, sessions, stickiness, retention.",
    specs=SPECS,
    custom=(
        CustomMetrics(
            (MetricDef("stickiness", ("month",),
                       "Average daily active users over every day of the month / monthly active users.",
                       kind="ratio"),),
            ("user_sessions",), stickiness),
        CustomMetrics(
            tuple(MetricDef(f"retention_d{k}", ("day",),
                            f"Share of the users created {k} day(s) before the day who had a session that day.",
                            kind="ratio") for k in RETENTION_DAYS),
            ("users", "user_sessions"), retention),
    ),
)
