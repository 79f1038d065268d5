"""The conversion funnel (METRICS.md "Cohorts and funnels", edge rule 12).

The cohort of day D is the actors whose first ever `app_open` is on D. An actor reaches step k when
it has the step's event at or after the time it reached step k-1 and at most 14 x 24 hours after
its first `app_open`. Each step is the earliest qualifying event, found in SQL one step at a time;
only counts per (cohort, step) come back. A cohort is final once D + 15 days has begun.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import number, source_table, valid
from metrics_pipeline.metrics.periods import Period, place, to_utc
from metrics_pipeline.metrics.spec import MetricDef, MetricRow, ratio_row
from metrics_pipeline.metrics.sqltime import MICROSECOND, epoch_micros, scanned, timestamp_literal

STEPS = ("app_open", "registration_start", "registration_complete", "first_session", "first_match",
         "first_message", "subscription_view", "subscription_purchase")
WINDOW_MICROS = 14 * 24 * 3600 * 1_000_000
FINAL_AFTER_DAYS = 15

SUMMARY_METRIC = MetricDef("funnel_conversion", ("day",),
                           "Share of the day's new actors (first app_open) who purchased a subscription "
                           "within 14 days; dated by the cohort day.", kind="ratio")


@dataclass(frozen=True)
class FunnelStep:
    cohort_date: str
    step_index: int
    step: str
    actors: int
    conversion_from_start: float | None
    conversion_from_previous: float | None
    is_final: bool


def _reached(conn: sa.Connection, days: list[Period]) -> dict[tuple[str, int], int]:
    """Actors per (cohort day, step index).

    Step 1: each actor's app_opens of the window, placed in days; its cohort is the first such day,
    unless it had an app_open before the window (looked up only for the window's actors). Later
    steps join the window's events (plus 14 days) to the previous step by actor: equality joins
    over one window, whatever the indexes.
    """
    dialect = conn.dialect.name
    e, earlier = source_table("events"), source_table("events").alias("earlier")
    placed = place(e, "event_time", days, dialect)
    opens = (
        sa.select(placed.period_start.label("cohort"), e.c.actor_id,
                  sa.func.min(e.c.event_time).label("t0"))
        .select_from(placed.joined)
        .where(placed.window, valid(e), e.c.event_name == STEPS[0])
        .group_by(placed.period_start, e.c.actor_id)
        .cte("opens")
    )
    firsts = (sa.select(opens.c.actor_id, sa.func.min(opens.c.cohort).label("cohort"))
              .group_by(opens.c.actor_id).subquery())
    start = sa.literal_column(timestamp_literal(min(d.start_utc for d in days), dialect))
    seen_before = (
        sa.select(earlier.c.actor_id).distinct()
        .where(earlier.c.event_name == STEPS[0], scanned(earlier.c.event_time) < start,
               earlier.c.actor_id.in_(sa.select(firsts.c.actor_id)), valid(earlier))
        .subquery("seen_before")
    )
    first_day = sa.and_(firsts.c.actor_id == opens.c.actor_id, firsts.c.cohort == opens.c.cohort)
    t0 = epoch_micros(opens.c.t0)
    first = (
        sa.select(opens.c.cohort, opens.c.actor_id, t0.label("t0"), t0.label("t"))
        .select_from(opens.join(firsts, first_day)
                     .outerjoin(seen_before, seen_before.c.actor_id == opens.c.actor_id))
        .where(seen_before.c.actor_id.is_(None))
        .cte("s1")
    )
    # a step event is at or after the first app_open (>= start) and at most 14 days after it. The
    # window's step events are read once into a materialized relation that each step joins by actor:
    # left to itself, PostgreSQL with an index on event_time alone rescans the window's range once
    # per actor of the previous step (periods x rows: minutes for a quarter of events). Times are
    # carried as exact epoch microseconds, computed once per event and per actor, not per pair.
    last = max(d.end_utc for d in days) + dt.timedelta(microseconds=WINDOW_MICROS) + MICROSECOND
    steps = (
        sa.select(e.c.actor_id, e.c.event_name, epoch_micros(e.c.event_time).label("t"))
        .where(e.c.event_time >= start, e.c.event_time < sa.literal_column(timestamp_literal(last, dialect)),
               e.c.event_name.in_(STEPS[1:]), valid(e))
        .cte("step_events").prefix_with("MATERIALIZED")
    )
    reached = [first]
    for k, step in enumerate(STEPS[1:], start=2):
        prev = reached[-1]
        reached.append(
            sa.select(prev.c.cohort, prev.c.actor_id, prev.c.t0, sa.func.min(steps.c.t).label("t"))
            .select_from(prev.join(steps, sa.and_(steps.c.actor_id == prev.c.actor_id, steps.c.event_name == step)))
            .where(steps.c.t >= prev.c.t, steps.c.t <= prev.c.t0 + WINDOW_MICROS)
            .group_by(prev.c.cohort, prev.c.actor_id, prev.c.t0)
            .cte(f"s{k}")
        )
    q = sa.union_all(*(
        sa.select(s.c.cohort, sa.literal(k).label("step_index"), sa.func.count().label("actors")).group_by(s.c.cohort)
        for k, s in enumerate(reached, start=1)
    ))
    return {(str(r.cohort), int(r.step_index)): number(r.actors) for r in conn.execute(q)}


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def is_final(day: Period, as_of: dt.datetime) -> bool:
    """Final once D + 15 days has begun in METRICS_TIMEZONE (`as_of` is naive UTC)."""
    return as_of >= to_utc(day.start + dt.timedelta(days=FINAL_AFTER_DAYS), day.tz)


def funnel(conn: sa.Connection, days: list[Period], as_of: dt.datetime) -> tuple[list[FunnelStep], list[MetricRow]]:
    """The funnel table rows of every non-empty cohort in `days`, and each day's funnel_conversion row."""
    counts = _reached(conn, days)
    steps, rows = [], []
    for day in days:
        actors = [counts.get((day.key, k), 0) for k in range(1, len(STEPS) + 1)]
        rows.append(ratio_row(SUMMARY_METRIC.name, day, actors[-1], actors[0]))
        if not actors[0]:
            continue
        final = is_final(day, as_of)
        for k, (step, n) in enumerate(zip(STEPS, actors, strict=True), start=1):
            previous = actors[k - 2] if k > 1 else actors[0]
            steps.append(FunnelStep(day.key, k, step, n, _rate(n, actors[0]), _rate(n, previous), final))
    return steps, rows
