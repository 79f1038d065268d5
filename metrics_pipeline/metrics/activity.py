"""Activity metrics from the `app` database: signups, active users, sessions, stickiness, retention."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import number, source_table, valid
from metrics_pipeline.metrics.periods import Period, periods_between, place, shifted, values_subquery
from metrics_pipeline.metrics.spec import (
    ALL_GRAINS, DAY_WEEK_MONTH, CustomMetrics, Domain, MetricDef, MetricRow, MetricSpec, count,
    distinct, ratio_row, total,
)
from metrics_pipeline.metrics.sqltime import duration_micros

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
    s = source_table("user_sessions")
    placed = place(s, "started_at", [d for _, d in days], conn.dialect.name, "d")
    q = (
        sa.select(placed.period_start.label("day"), sa.func.count(sa.distinct(s.c.user_id)).label("n"))
        .select_from(placed.joined)
        .where(placed.window, valid(s))
        .group_by(placed.period_start)
    )
    seen = {str(r.day): number(r.n) for r in conn.execute(q)}  # a day is in one period: periods do not overlap
    out: dict[str, list[int]] = defaultdict(list)
    for p, d in days:
        out[p.key].append(seen.get(d.key, 0))
    return out


def stickiness(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    """Average daily active users over every day of the month / monthly active users."""
    daily = daily_active_by_period(conn, periods)
    s = source_table("user_sessions")
    placed = place(s, "started_at", periods, conn.dialect.name)
    monthly = {
        str(r.period_start): number(r.n)
        for r in conn.execute(
            sa.select(placed.period_start, sa.func.count(sa.distinct(s.c.user_id)).label("n"))
            .select_from(placed.joined)
            .where(placed.window, valid(s))
            .group_by(placed.period_start)
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
    Members (users placed in cohort periods) and returners (distinct users of the sessions placed in
    measured periods) are matched by equality on (measured period, user): one pass over each table's
    window, whatever the indexes.
    """
    dialect = conn.dialect.name
    users, sessions = source_table("users"), source_table("user_sessions")
    cohorts = place(users, "created_at", _distinct(cohort for _, cohort in pairs), dialect, "c")
    wanted = values_subquery("pairs", ["cohort", "measured"], sorted({(f"'{c.key}'", f"'{m.key}'") for m, c in pairs}))
    members = (sa.select(wanted.c.measured, wanted.c.cohort, users.c.id)
               .select_from(cohorts.joined.join(wanted, wanted.c.cohort == cohorts.period_start))
               .where(cohorts.window, valid(users)).subquery("members"))
    measured = place(sessions, "started_at", _distinct(m for m, _ in pairs), dialect, "m")
    returners = (sa.select(measured.period_start.label("measured"), sessions.c.user_id)
                 .select_from(measured.joined).where(measured.window, valid(sessions))
                 .distinct().subquery("returners"))
    q = (
        sa.select(members.c.measured, members.c.cohort, sa.func.count().label("cohort_size"),
                  sa.func.count(returners.c.user_id).label("returned"))
        .select_from(members.outerjoin(returners, sa.and_(returners.c.measured == members.c.measured,
                                                          returners.c.user_id == members.c.id)))
        .group_by(members.c.measured, members.c.cohort)
    )
    return {(str(r.measured), str(r.cohort)): (number(r.returned), number(r.cohort_size)) for r in conn.execute(q)}


def _distinct(periods) -> list[Period]:
    return list({p.key: p for p in periods}.values())


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
