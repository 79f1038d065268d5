"""Metric periods: the calendar hours, days, ISO weeks and months of METRICS_TIMEZONE.

A period knows its local start and end (what `metric_values` stores) and the naive UTC instants
they correspond to (what source timestamps are compared with). `periods_subquery` turns a list of
periods into a small relation that metric queries join against, so one statement computes every
period of a backfill range, each as an index range scan on the source's time column.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import TABLES
from metrics_pipeline.metrics.sqltime import MICROSECOND, date_literal, timestamp_literal

GRAINS = ("hour", "day", "week", "month")
UTC = dt.timezone.utc


@dataclass(frozen=True)
class Period:
    grain: str
    start: dt.datetime  # local wall-clock start, naive
    end: dt.datetime  # local wall-clock exclusive end, naive
    start_utc: dt.datetime  # naive UTC
    end_utc: dt.datetime  # naive UTC
    tz: str = "UTC"

    @property
    def key(self) -> str:
        """`period_start` as written to the warehouse: DATE text, or TIMESTAMP text for hours."""
        return _label(self.grain, self.start)

    @property
    def end_key(self) -> str:
        return _label(self.grain, self.end)


def _label(grain: str, local: dt.datetime) -> str:
    return local.strftime("%Y-%m-%d %H:%M:%S") if grain == "hour" else local.date().isoformat()


def floor_to_grain(grain: str, local: dt.datetime) -> dt.datetime:
    """The start of the period of `grain` containing the local wall-clock time `local`."""
    if grain == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown grain {grain!r}; expected one of {', '.join(GRAINS)}")


def next_start(grain: str, start: dt.datetime) -> dt.datetime:
    if grain == "hour":
        return start + dt.timedelta(hours=1)
    if grain == "day":
        return start + dt.timedelta(days=1)
    if grain == "week":
        return start + dt.timedelta(days=7)
    if grain == "month":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown grain {grain!r}; expected one of {', '.join(GRAINS)}")


def to_utc(local: dt.datetime, tz: str) -> dt.datetime:
    """Naive local wall-clock time in `tz` to naive UTC."""
    return local.replace(tzinfo=zoneinfo.ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)


def make_period(grain: str, start: dt.datetime, tz: str) -> Period:
    end = next_start(grain, start)
    return Period(grain, start, end, to_utc(start, tz), to_utc(end, tz), tz)


def periods_between(grain: str, start: dt.datetime, end: dt.datetime, tz: str) -> list[Period]:
    """Every period of `grain` starting in [start, end); both bounds may be aware or local naive."""
    if start.tzinfo is not None:
        start = start.astimezone(zoneinfo.ZoneInfo(tz)).replace(tzinfo=None)
    if end.tzinfo is not None:
        end = end.astimezone(zoneinfo.ZoneInfo(tz)).replace(tzinfo=None)
    cursor = floor_to_grain(grain, start)
    if cursor < start:
        cursor = next_start(grain, cursor)
    periods = []
    while cursor < end:
        periods.append(make_period(grain, cursor, tz))
        cursor = next_start(grain, cursor)
    return periods


def period_containing(grain: str, local: dt.datetime, tz: str) -> Period:
    return make_period(grain, floor_to_grain(grain, local), tz)


def shifted(period: Period, steps: int) -> Period:
    """The period `steps` periods of the same grain after (positive) or before (negative) this one."""
    start = period.start
    for _ in range(abs(steps)):
        start = next_start(period.grain, start) if steps > 0 else floor_to_grain(
            period.grain, start - dt.timedelta(microseconds=1))
    return make_period(period.grain, start, period.tz)


def with_history(periods: list[Period], n: int) -> list[Period]:
    """The `n` periods of the same grain before `periods[0]`, followed by `periods`."""
    first = periods[0]
    return periods_between(first.grain, shifted(first, -n).start, first.start, first.tz) + list(periods)


def values_subquery(name: str, columns: list[str], rows: list[tuple[str, ...]]) -> sa.Subquery:
    """A relation of literal rows usable in FROM/JOIN on SQLite and PostgreSQL alike.

    Written as `SELECT column1 AS a, ... FROM (VALUES ...)`, the spelling both engines accept.
    Values are pre-rendered SQL literals produced by this module (never user input).
    """
    body = ", ".join("(" + ", ".join(r) + ")" for r in rows)
    select_list = ", ".join(f"column{i + 1} AS {c}" for i, c in enumerate(columns))
    text = sa.text(f"SELECT {select_list} FROM (VALUES {body}) AS v")
    return text.columns(*(sa.column(c) for c in columns)).subquery(name)


PERIOD_COLUMNS = ["period_start", "lo", "hi", "lo_next", "hi_next", "lo_date", "hi_date"]


def periods_subquery(
    periods: list[Period], dialect: str, name: str = "p", extra: dict[str, list[str]] | None = None
) -> sa.Subquery:
    """Relation (period_start, lo, hi, lo_next, hi_next, lo_date, hi_date) of period bounds.

    lo/hi are naive UTC instants: `ts >= lo AND ts < hi` is "in period"; `ts < hi_next` is
    `ts <= end` and `ts >= lo_next` is `ts > start`, spelled so on purpose (see sqltime).
    lo_date/hi_date are the local calendar dates, for DATE columns (a date is not an instant).
    `extra` adds columns of pre-rendered literals, one per period.
    """
    extra = extra or {}
    if not periods:
        raise ValueError("no periods to compute")
    rows = [
        (
            f"'{p.key}'",
            timestamp_literal(p.start_utc, dialect),
            timestamp_literal(p.end_utc, dialect),
            timestamp_literal(p.start_utc + MICROSECOND, dialect),
            timestamp_literal(p.end_utc + MICROSECOND, dialect),
            date_literal(p.start.date(), dialect),
            date_literal(p.end.date(), dialect),
            *(values[i] for values in extra.values()),
        )
        for i, p in enumerate(periods)
    ]
    return values_subquery(name, PERIOD_COLUMNS + list(extra), rows)


def last_closed(grain: str, instant: dt.datetime, tz: str) -> Period:
    """The newest period of `grain` that has ended by the aware `instant` (its local calendar in `tz`).

    Hours are real hours, found in UTC and labelled by local wall-clock time, so the hour skipped by
    a spring-forward DST change never appears.
    """
    zone = zoneinfo.ZoneInfo(tz)
    if grain == "hour":
        end_utc = instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
        start_utc = end_utc - dt.timedelta(hours=1)
        local = [t.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None) for t in (start_utc, end_utc)]
        return Period("hour", local[0], local[1], start_utc, end_utc, tz)
    current = floor_to_grain(grain, instant.astimezone(zone).replace(tzinfo=None))
    return make_period(grain, floor_to_grain(grain, current - dt.timedelta(microseconds=1)), tz)


def partition_key(period: Period) -> str:
    """The Dagster partition key of a period ('YYYY-MM-DD', or 'YYYY-MM-DD-HH:MM' for hours)."""
    return period.start.strftime("%Y-%m-%d-%H:%M") if period.grain == "hour" else period.key


def in_period(t: sa.Table, column: str, p: sa.Subquery) -> sa.ColumnElement:
    """`period_start <= ts < period_end` for a source table's time column (DATE columns by local date)."""
    table = t.element if isinstance(t, sa.Alias) else t
    if TABLES[table.name].column(column).kind == "date":
        return sa.and_(t.c[column] >= p.c.lo_date, t.c[column] < p.c.hi_date)
    return sa.and_(t.c[column] >= p.c.lo, t.c[column] < p.c.hi)
