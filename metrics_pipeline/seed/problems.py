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
| `drop_column:TABLE.COLUMN` | drops a column from a source table |

Days are calendar days of METRICS_TIMEZONE. Changed rows get `updated_at` = now, as a real late
change would. Rows are picked in id order, so a plant is deterministic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import TABLES, SourceTable
from metrics_pipeline.metrics.periods import make_period
from metrics_pipeline.metrics.sqltime import bound_text
from metrics_pipeline.resources.engines import sqlite_path
from metrics_pipeline.settings import timezone_name

KEEP_ON_DROP = 0.3
SPIKE_COPIES = 2
VOLUME_TABLES = ("user_sessions", "events")


@dataclass(frozen=True)
class Problem:
    kind: str
    day: dt.date | None = None
    table: str | None = None
    column: str | None = None
    count: int | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else (self.table or "")
        return " ".join(str(p) for p in (self.kind, where, self.day, self.value) if p)


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


def _in_day(table: SourceTable, t: sa.Table, day: dt.date) -> sa.ColumnElement:
    col = t.c[table.time_column]
    if table.column(table.time_column).kind == "date":
        return col == day.isoformat()
    period = make_period("day", dt.datetime.combine(day, dt.time()), timezone_name())
    return sa.and_(col >= bound_text(period.start_utc), col < bound_text(period.end_utc))


def _ids(conn: sa.Connection, t: sa.Table, where: sa.ColumnElement, limit: int | None = None) -> list[str]:
    return list(conn.execute(sa.select(t.c.id).where(where).order_by(t.c.id).limit(limit)).scalars())


def _allow_null(conn: sa.Connection, table: SourceTable, column: str) -> None:
    """Let a required column hold NULL, as a looser source schema would (declared types unchanged)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ALTER COLUMN {column} DROP NOT NULL")
        return
    loose = table.sa_table(sa.MetaData())
    loose.name = f"{table.name}_loose"
    loose.c[column].nullable = True
    loose.create(conn)
    conn.exec_driver_sql(f"INSERT INTO {loose.name} SELECT {', '.join(table.column_names)} FROM {table.name}")
    conn.exec_driver_sql(f"DROP TABLE {table.name}")
    conn.exec_driver_sql(f"ALTER TABLE {loose.name} RENAME TO {table.name}")
    for index in table.sa_indexes(table.sa_table(sa.MetaData())):  # SQLite drops them with the table
        index.create(conn)


def _volume(conn_of: Callable, p: Problem) -> int:
    changed = 0
    for name in VOLUME_TABLES:
        table = TABLES[name]
        t = table.sa_table()
        with conn_of(table.database) as conn:
            where = _in_day(table, t, p.day)
            if p.kind == "drop":
                ids = _ids(conn, t, where)
                gone = ids[: round(len(ids) * (1 - KEEP_ON_DROP))]
                conn.execute(t.delete().where(t.c.id.in_(gone)))
                changed += len(gone)
            else:
                now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                rows = [dict(r._mapping) for r in conn.execute(sa.select(t).where(where))]
                copies = [r | {"id": f"{r['id']}_copy{k}", "updated_at": now}
                          for k in range(1, SPIKE_COPIES + 1) for r in rows]
                if copies:
                    conn.execute(t.insert(), copies)
                changed += len(copies)
    return changed


def apply(urls: dict[str, str], problem: Problem) -> int:
    """Plant `problem` into the sources at `urls` (one transaction per database); rows affected."""
    engines: dict[str, sa.Engine] = {}

    def conn_of(database: str):
        path = sqlite_path(urls[database])
        if path is not None and not path.exists():
            raise ValueError(f"source database '{database}' not found at {path}: run `metrics-pipeline seed` first")
        engines.setdefault(database, sa.create_engine(urls[database]))
        return engines[database].begin()

    try:
        if problem.kind in ("drop", "spike"):
            return _volume(conn_of, problem)
        table = TABLES[problem.table]
        t = table.sa_table()
        with conn_of(table.database) as conn:
            if problem.kind == "drop_column":
                conn.exec_driver_sql(f"ALTER TABLE {table.name} DROP COLUMN {problem.column}")
                return 0
            if problem.kind == "channel":
                return conn.execute(t.delete().where(_in_day(table, t, problem.day),
                                                     t.c.channel == problem.value)).rowcount
            if problem.kind == "nulls":
                _allow_null(conn, table, problem.column)
            where = _in_day(table, t, problem.day)
            bad = {"nulls": None, "enum": "unknown_value", "currency": "EUR"}[problem.kind]
            if problem.kind == "currency":
                where = sa.and_(where, t.c.status == "succeeded")
            ids = _ids(conn, t, where, problem.count)
            if not ids:
                raise ValueError(f"{problem}: {table.name} has no rows on {problem.day}")
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            conn.execute(t.update().where(t.c.id.in_(ids)).values({problem.column: bad, "updated_at": now}))
            return len(ids)
    finally:
        for engine in engines.values():
            engine.dispose()


def demo_problems(end: dt.date) -> list[Problem]:
    """What `make demo` plants in its last two weeks, one problem a day, so the UI shows each check failing."""
    def day(back: int) -> str:
        return (end - dt.timedelta(days=back)).isoformat()

    return [parse(t) for t in (f"drop:{day(12)}", f"channel:{day(9)}", f"spike:{day(6)}",
                               f"nulls:user_sessions.user_id:{day(3)}", f"enum:payments.status:{day(2)}",
                               f"currency:{day(1)}")]
