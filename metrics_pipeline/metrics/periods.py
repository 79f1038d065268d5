"""Metric periods: the calendar hours, days, ISO weeks and months of METRICS_TIMEZONE.

A period knows its local start and end (what `metric_values` stores) and the naive UTC instants
they correspond to (what source timestamps are compared with). `place` puts a source table's rows
in periods the way every metric query does: one range predicate over the whole window (served by
an index on the column when there is one, a single scan when not) and an equality between the
row's UTC hour (or 15-minute step, for zones with such offsets) and a small bucket -> period map
(on SQLite, consecutive UTC hours, days and months read the key off the timestamp's text instead),
never a range join of periods against rows, whose cost would be periods x rows without an index.
`periods_subquery` is the relation of period bounds (the grouped expectation rules use it).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from metrics_pipeline.contract import TABLES
from metrics_pipeline.metrics.sqltime import MICROSECOND, bucket_literal, date_literal, timestamp_literal, utc_bucket

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


def consecutive_runs(periods: list[Period]) -> list[list[Period]]:
    """`periods` split where one does not start at the previous one's end (balances carry across a run)."""
    runs: list[list[Period]] = []
    for p in periods:
        if runs and runs[-1][-1].end_utc == p.start_utc:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def _values(columns: list[str], rows: list[tuple[str, ...]]) -> sa.TextualSelect:
    """Literal rows as `SELECT column1 AS a, ... FROM (VALUES ...)`, the spelling SQLite and PostgreSQL
    both accept. Values are pre-rendered SQL literals produced by this module (never user input)."""
    body = ", ".join("(" + ", ".join(r) + ")" for r in rows)
    select_list = ", ".join(f"column{i + 1} AS {c}" for i, c in enumerate(columns))
    return sa.text(f"SELECT {select_list} FROM (VALUES {body}) AS v").columns(*(sa.column(c) for c in columns))


def values_subquery(name: str, columns: list[str], rows: list[tuple[str, ...]]) -> sa.Subquery:
    """A relation of literal rows usable in FROM/JOIN on SQLite and PostgreSQL alike."""
    return _values(columns, rows).subquery(name)


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


BUCKET_MINUTES = (60, 15, 1)
NEVER = dt.datetime(1900, 1, 1)  # a bucket no source row falls in


def bucket_minutes(periods: list[Period]) -> int:
    """The longest UTC step (an hour, 15 minutes, a minute) that every period bound falls on."""
    bounds = [t for p in periods for t in (p.start_utc, p.end_utc)]
    for minutes in BUCKET_MINUTES:
        if all(t.second == 0 and t.microsecond == 0 and t.minute % minutes == 0 for t in bounds):
            return minutes
    raise ValueError("period bounds that are not whole UTC minutes")


class TableFirstJoin(sa.sql.selectable.Join):
    """A join whose left side (the source table) SQLite must read first, once, looking each row's
    bucket up in the map: written `CROSS JOIN`, which SQLite takes as that order. Left to itself it
    may loop over the map and search the table through an automatic index on another equality
    (e.g. `event_name`), once per bucket: periods x rows again."""

    inherit_cache = True


@compiles(TableFirstJoin, "sqlite")
def _table_first_join_sqlite(join, compiler, **kw):
    sql = compiler.visit_join(join, **kw)
    i = sql.index(" JOIN ")  # the left side is a table or an alias: this is the join's own keyword
    return f"{sql[:i]} CROSS JOIN {sql[i + len(' JOIN '):]}"


@dataclass(frozen=True)
class Placement:
    """A source table's rows placed in periods: select `period_start` (the row's period key, named
    period_start) from `joined` where `window` (the periods' whole span, one range predicate).
    `joined` is the table joined by one equality to `map` (bucket, period_start, extra columns...),
    or on SQLite, for consecutive UTC hours, days or months without extra columns, the table alone,
    the key cut from the timestamp's text (`text_key`). A row in several periods (overlapping pairs)
    is joined once per period."""

    map: sa.CTE | None
    joined: sa.FromClause
    window: sa.ColumnElement
    period_start: sa.ColumnElement


# SQLite: a UTC period's key from the start of the timestamp's text: grain -> (prefix length, suffix)
TEXT_KEYS = {"hour": (13, ":00:00"), "day": (10, ""), "month": (8, "01")}


def text_key(periods: list[Period], dialect: str) -> tuple[int, str] | None:
    """How SQLite cuts `periods`' keys from a timestamp's text, when it can: consecutive hours, days
    or months of UTC. Each row's period is then read off its own text, where the bucket map costs a
    B-tree search per row (a year of events by day: 7.9 s -> 6.3 s); weeks and other zones use the map."""
    grain = periods[0].grain
    if dialect != "sqlite" or grain not in TEXT_KEYS or len(consecutive_runs(periods)) != 1:
        return None
    if any(p.start != p.start_utc or p.end != p.end_utc for p in periods):
        return None
    return TEXT_KEYS[grain]


def place(t: sa.Table | sa.Alias, column: str, periods: list[Period], dialect: str, name: str = "p",
          extra: dict[str, list[str]] | None = None) -> Placement:
    """Rows of `t` whose `column` is in one of `periods`: `period_start <= ts < period_end`, in UTC for
    timestamps, by local calendar date for DATE columns. `extra` adds columns of pre-rendered
    literals, one per period; `name` names the map (unique within a statement)."""
    if not periods:
        raise ValueError("no periods to compute")
    table = t.element if isinstance(t, sa.Alias) else t
    col = t.c[column]
    extra = extra or {}
    is_date = TABLES[table.name].column(column).kind == "date"
    if is_date:
        lo, hi = (date_literal(d, dialect) for d in (min(p.start for p in periods).date(),
                                                      max(p.end for p in periods).date()))
    else:
        lo, hi = (timestamp_literal(x, dialect) for x in (min(p.start_utc for p in periods),
                                                          max(p.end_utc for p in periods)))
    window = sa.and_(col >= sa.literal_column(lo), col < sa.literal_column(hi))
    cut = None if is_date or extra else text_key(periods, dialect)
    if cut is not None:
        key = sa.func.substr(col, sa.literal_column("1"), sa.literal_column(str(cut[0])), type_=sa.Text())
        key = key.concat(sa.literal_column(f"'{cut[1]}'")) if cut[1] else key
        return Placement(None, t, window, key.label("period_start"))
    rows: list[tuple[str, ...]] = []
    if is_date:
        for i, p in enumerate(periods):
            days = (p.end.date() - p.start.date()).days
            rows += [(date_literal(p.start.date() + dt.timedelta(days=d), dialect), f"'{p.key}'",
                      *(values[i] for values in extra.values())) for d in range(days)]
        key = col
    else:
        minutes = bucket_minutes(periods)
        step = dt.timedelta(minutes=minutes)
        for i, p in enumerate(periods):
            t0 = p.start_utc
            while t0 < p.end_utc:
                rows.append((bucket_literal(t0, minutes, dialect), f"'{p.key}'",
                             *(values[i] for values in extra.values())))
                t0 += step
        key = utc_bucket(col, minutes)
    if not rows:  # only empty periods (a local hour skipped by DST): a typed row that matches nothing
        rows.append((bucket_literal(NEVER, 60, dialect), f"'{periods[0].key}'",
                     *(values[0] for values in extra.values())))
    m = _values(["bucket", "period_start", *extra], rows).cte(name).prefix_with("MATERIALIZED")
    return Placement(m, TableFirstJoin(t, m, m.c.bucket == key), window, m.c.period_start)
