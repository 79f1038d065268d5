"""Known data problems planted into already-seeded sources, so the data-quality checks can be seen
(and tested) finding them. Each is a token, e.g. `drop:2026-03-01`:

| token | what it does |
|---|---|
| `drop:DAY` | deletes 70% of the day's `user_sessions` and `events` (lowest ids first) |
| `spike:DAY` | adds two copies of each of the day's `user_sessions` and `events` (x3) |
| `nulls:TABLE.COLUMN:DAY[:N]` | sets a required column to NULL on N rows of the day (default 5) |
| `enum:TABLE.COLUMN:DAY[:N]` | sets an enumerated column to 'unknown_value' on N rows (default 3) |
| `currency:DAY[:N]` | makes N succeeded payments of the day EUR (default 1) |
| `channel:DAY[:CHANNEL]` | deletes the day's `ad_spend_daily` rows of one channel (default meta_ads) |
| `drop_column:TABLE.COLUMN` | drops a column (and its indexes) from a source table |

Days are calendar days of METRICS_TIMEZONE. Changed and inserted rows get `updated_at` = now, as a
real late change would. Rows are picked in id order, so a plant is deterministic. A day without
rows to change, or a column the table no longer has, is an error that changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import TABLES, SourceTable
from metrics_pipeline.metrics.periods import make_period
from metrics_pipeline.metrics.sqltime import bound_text
from metrics_pipeline.resources.engines import sqlite_path
from metrics_pipeline.settings import timezone_name

DROP_SHARE = 0.7
SPIKE_COPIES = 2
VOLUME_TABLES = ("user_sessions", "events")
BAD_VALUES = {"nulls": None, "enum": "unknown_value", "currency": "EUR"}
SAMPLE_IDS = 5


@dataclass(frozen=True)
class Problem:
    kind: str
    day: dt.date | None = None
    table: str | None = None
    column: str | None = None
    count: int | None = None
    value: str | None = None

    @property
    def token(self) -> str:
        """The token with its defaults filled in (it parses back into this problem)."""
        column = f"{self.table}.{self.column}" if self.kind in ("nulls", "enum", "drop_column") else None
        value = self.value if self.kind == "channel" else self.count
        return ":".join(str(p) for p in (self.kind, column, self.day, value) if p is not None)


@dataclass(frozen=True)
class TableChange:
    """One table's share of a plant: how many rows were deleted, inserted or updated, and the first of
    them in id order (campaign ids for `ad_spend_daily`; the new copies' ids for a spike)."""

    database: str
    table: str
    rows: int
    sample_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Planted:
    """What planting one problem did to the sources."""

    problem: Problem
    changes: tuple[TableChange, ...]

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.changes)

    def __str__(self) -> str:
        if self.problem.kind == "drop_column":
            (c,) = self.changes
            return f"{self.problem.token}: column {self.problem.column} dropped from {c.database}.{c.table}"
        verb = {"drop": "deleted", "channel": "deleted", "spike": "inserted"}.get(self.problem.kind, "updated")
        return f"{self.problem.token}: " + ", ".join(
            f"{c.database}.{c.table} {c.rows:,} row(s) {verb}" for c in self.changes)


def _day(text: str, token: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{token!r}: {text!r} is not a day (YYYY-MM-DD)") from None


def _column(text: str, token: str) -> tuple[str, str]:
    table, _, column = text.partition(".")
    if table not in TABLES:
        raise ValueError(f"{token!r}: unknown table {table!r}")
    if column not in TABLES[table].column_names:
        raise ValueError(f"{token!r}: table {table} has no contract column {column!r}")
    return table, column


def _count(parts: list[str], i: int, default: int, token: str) -> int:
    if len(parts) <= i:
        return default
    if not parts[i].isdigit() or int(parts[i]) < 1:
        raise ValueError(f"{token!r}: {parts[i]!r} is not a positive row count")
    return int(parts[i])


def parse(token: str) -> Problem:
    """A Problem from its token; ValueError naming the bad part otherwise."""
    kind, *parts = token.split(":")
    arity = {"drop": (1, 1), "spike": (1, 1), "nulls": (2, 3), "enum": (2, 3), "currency": (1, 2),
             "channel": (1, 2), "drop_column": (1, 1)}
    if kind not in arity:
        raise ValueError(f"{token!r}: unknown problem {kind!r}; choose from {', '.join(arity)}")
    low, high = arity[kind]
    if not low <= len(parts) <= high:
        raise ValueError(f"{token!r}: {kind} takes {low}..{high} ':'-separated argument(s)")
    if kind in ("drop", "spike"):
        return Problem(kind, _day(parts[0], token))
    if kind in ("nulls", "enum"):
        table, column = _column(parts[0], token)
        c = TABLES[table].column(column)
        if kind == "nulls" and (c.nullable or column in TABLES[table].key):
            raise ValueError(f"{token!r}: {table}.{column} is not a required non-key column")
        if kind == "enum" and not c.allowed:
            raise ValueError(f"{token!r}: {table}.{column} is not an enumerated column")
        return Problem(kind, _day(parts[1], token), table, column, _count(parts, 2, 5 if kind == "nulls" else 3, token))
    if kind == "currency":
        return Problem(kind, _day(parts[0], token), "payments", "currency", _count(parts, 1, 1, token))
    if kind == "channel":
        channel = parts[1] if len(parts) > 1 else "meta_ads"
        if channel not in TABLES["ad_spend_daily"].column("channel").allowed:
            raise ValueError(f"{token!r}: unknown channel {channel!r}")
        return Problem(kind, _day(parts[0], token), "ad_spend_daily", "channel", value=channel)
    table, column = _column(parts[0], token)
    if column in TABLES[table].key:
        raise ValueError(f"{token!r}: {table}.{column} is part of the table's key")
    return Problem(kind, table=table, column=column)


def _live(conn: sa.Connection, table: SourceTable, problem: Problem, *columns: str) -> sa.Table:
    """The table as the source holds it now (reflected: a column dropped since seeding is gone)."""
    try:
        t = sa.Table(table.name, sa.MetaData(), autoload_with=conn)
    except sa.exc.NoSuchTableError:
        raise ValueError(f"{problem.token}: source database '{table.database}' has no table {table.name}: "
                         "run `metrics-pipeline seed` first") from None
    for column in columns:
        if column not in t.c:
            raise ValueError(f"{problem.token}: {table.database}.{table.name} has no column {column!r} (dropped?)")
    return t


def _in_day(table: SourceTable, t: sa.Table, day: dt.date) -> sa.ColumnElement:
    """The table's rows whose time column falls on `day` of METRICS_TIMEZONE ([start, end) in naive UTC)."""
    col = t.c[table.time_column]
    if table.column(table.time_column).kind == "date":
        return col == day.isoformat()
    period = make_period("day", dt.datetime.combine(day, dt.time()), timezone_name())
    return sa.and_(col >= bound_text(period.start_utc), col < bound_text(period.end_utc))


def _ids(conn: sa.Connection, column: sa.Column, where: sa.ColumnElement, limit: int | None = None) -> list[str]:
    return list(conn.execute(sa.select(column).where(where).order_by(column).limit(limit)).scalars())


def _none_on(problem: Problem, table: SourceTable) -> ValueError:
    return ValueError(f"{problem.token}: {table.database}.{table.name} has no rows to change on {problem.day}")


def _allow_null(conn: sa.Connection, table: SourceTable, column: str) -> None:
    """Let a required column hold NULL, as a looser source schema would (declared types unchanged)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ALTER COLUMN {column} DROP NOT NULL")
        return
    had = sa.inspect(conn).get_indexes(table.name)  # SQLite drops them with the table: made again below
    loose = table.sa_table(sa.MetaData())
    loose.name = f"{table.name}_loose"
    loose.c[column].nullable = True
    loose.create(conn)
    conn.exec_driver_sql(f"INSERT INTO {loose.name} SELECT {', '.join(table.column_names)} FROM {table.name}")
    conn.exec_driver_sql(f"DROP TABLE {table.name}")
    conn.exec_driver_sql(f"ALTER TABLE {loose.name} RENAME TO {table.name}")
    kept = table.sa_table(sa.MetaData())
    for index in had:
        sa.Index(index["name"], *(kept.c[c] for c in index["column_names"]), unique=index["unique"]).create(conn)


def _drop(conn: sa.Connection, table: SourceTable, p: Problem, now: dt.datetime) -> TableChange:
    """A volume drop: the first DROP_SHARE of the day's rows in id order are deleted."""
    t = _live(conn, table, p, table.time_column)
    where = _in_day(table, t, p.day)
    ids = _ids(conn, t.c.id, where)
    if not ids:
        raise _none_on(p, table)
    gone = ids[:round(len(ids) * DROP_SHARE)]
    conn.execute(t.delete().where(where, t.c.id <= gone[-1]))
    return TableChange(table.database, table.name, len(gone), tuple(gone[:SAMPLE_IDS]))


def _spike(conn: sa.Connection, table: SourceTable, p: Problem, now: dt.datetime) -> TableChange:
    """A volume spike: SPIKE_COPIES copies of each of the day's rows (ids `<id>_copyK`, inserted now)."""
    t = _live(conn, table, p, table.time_column)
    rows = [dict(r._mapping) for r in conn.execute(sa.select(t).where(_in_day(table, t, p.day)).order_by(t.c.id))]
    if not rows:
        raise _none_on(p, table)
    if any("_copy" in r["id"] for r in rows):
        raise ValueError(f"{p.token}: {table.database}.{table.name} is already spiked on {p.day}")
    copies = [r | {"id": f"{r['id']}_copy{k}", "updated_at": now} for r in rows for k in range(1, SPIKE_COPIES + 1)]
    conn.execute(t.insert(), copies)
    return TableChange(table.database, table.name, len(copies), tuple(c["id"] for c in copies[:SAMPLE_IDS]))


def _channel(conn: sa.Connection, table: SourceTable, p: Problem, now: dt.datetime) -> TableChange:
    """A channel missing from the day's ad spend report: all its campaigns' rows deleted."""
    t = _live(conn, table, p, "channel")
    where = sa.and_(_in_day(table, t, p.day), t.c.channel == p.value)
    campaigns = _ids(conn, t.c.campaign_id, where)
    if not campaigns:
        raise ValueError(f"{p.token}: {table.database}.{table.name} has no {p.value} rows on {p.day}")
    conn.execute(t.delete().where(where))
    return TableChange(table.database, table.name, len(campaigns), tuple(campaigns[:SAMPLE_IDS]))


def _drop_column(conn: sa.Connection, table: SourceTable, p: Problem, now: dt.datetime) -> TableChange:
    """A schema change: the column and every index on it are dropped (SQLite needs 3.35 or later)."""
    _live(conn, table, p, p.column)
    if conn.dialect.name == "sqlite" and conn.dialect.server_version_info < (3, 35):
        raise ValueError(f"{p.token}: SQLite {conn.dialect.server_version_info} cannot drop a column (needs 3.35+)")
    for index in sa.inspect(conn).get_indexes(table.name):
        if p.column in index["column_names"]:
            conn.exec_driver_sql(f'DROP INDEX "{index["name"]}"')
    conn.exec_driver_sql(f'ALTER TABLE "{table.name}" DROP COLUMN "{p.column}"')
    return TableChange(table.database, table.name, 0)


def _bad_value(conn: sa.Connection, table: SourceTable, p: Problem, now: dt.datetime) -> TableChange:
    """Invalid rows: the first N of the day (succeeded ones for `currency`) get the bad value."""
    t = _live(conn, table, p, table.time_column, p.column)
    where = _in_day(table, t, p.day)
    if p.kind == "currency":
        where = sa.and_(where, t.c.status == "succeeded")
    ids = _ids(conn, t.c.id, where, p.count)
    if not ids:
        raise _none_on(p, table)
    if p.kind == "nulls" and not t.c[p.column].nullable:  # after the check: SQLite commits DDL at once
        _allow_null(conn, table, p.column)
    conn.execute(t.update().where(t.c.id.in_(ids)).values({p.column: BAD_VALUES[p.kind], "updated_at": now}))
    return TableChange(table.database, table.name, len(ids), tuple(ids[:SAMPLE_IDS]))


PLANTERS: dict[str, Callable[..., TableChange]] = {
    "drop": _drop, "spike": _spike, "channel": _channel, "drop_column": _drop_column,
    "nulls": _bad_value, "enum": _bad_value, "currency": _bad_value,
}


def plant(urls: dict[str, str], problem: Problem) -> Planted:
    """Plant `problem` into the sources at `urls`, all or nothing (one transaction per URL); what it changed."""
    tables = [TABLES[n] for n in (VOLUME_TABLES if problem.table is None else (problem.table,))]
    for table in tables:
        path = sqlite_path(urls[table.database])
        if path is not None and not path.exists():
            raise ValueError(f"source database '{table.database}' not found at {path}: "
                             "run `metrics-pipeline seed` first")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with ExitStack() as stack:
        conns: dict[str, sa.Connection] = {}
        for url in dict.fromkeys(urls[t.database] for t in tables):
            engine = sa.create_engine(url)
            stack.callback(engine.dispose)
            conns[url] = stack.enter_context(engine.begin())
        changes = tuple(PLANTERS[problem.kind](conns[urls[t.database]], t, problem, now) for t in tables)
    return Planted(problem, changes)


def demo_problems(end: dt.date) -> list[Problem]:
    """What `make demo` plants in its last two weeks, one problem a day, so the UI shows each check failing."""
    def day(back: int) -> str:
        return (end - dt.timedelta(days=back)).isoformat()

    return [parse(t) for t in (f"drop:{day(12)}", f"channel:{day(9)}", f"spike:{day(6)}",
                               f"nulls:user_sessions.user_id:{day(3)}", f"enum:payments.status:{day(2)}",
                               f"currency:{day(1)}")]
