"""Timestamp expressions that mean the same on SQLite and PostgreSQL.

Sources store UTC timestamps: PostgreSQL as `timestamp without time zone`, SQLite as ISO text
with or without a six-digit fraction ('2026-01-05 00:00:00' and '2026-01-05 00:00:00.000000' are
the same instant). On SQLite a raw column compared with a bound written *without* a fraction is
exact for `>=` and `<` (a value with a fraction sorts after its prefix), which keeps index range
scans. So every comparison against a period bound in this project is written as `>=` or `<`; `<= t`
is spelled `< t + 1µs` and `> t` as `>= t + 1µs` (see `periods.Period`). Column-against-column
comparisons and durations go through `ts_norm` and `epoch_micros`, which normalise the text first.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

MICROSECOND = dt.timedelta(microseconds=1)


def bound_text(instant: dt.datetime) -> str:
    """A naive UTC instant as SQLite text: no fraction when it is zero (see module docstring)."""
    text = instant.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{instant.microsecond:06d}" if instant.microsecond else text


def timestamp_literal(instant: dt.datetime, dialect: str) -> str:
    """SQL literal for a naive UTC instant, typed on PostgreSQL (never converted by TimeZone)."""
    if dialect == "postgresql":
        return f"TIMESTAMP '{instant.isoformat(sep=' ')}'"
    return f"'{bound_text(instant)}'"


def naive_utc(value: dt.datetime | str) -> dt.datetime:
    """A timestamp read back from a source, as a naive UTC datetime: the one place they are normalised.

    SQLite gives text, PostgreSQL a naive datetime for `timestamp without time zone` and an aware one
    for `timestamp with time zone` (in UTC, as source sessions run in UTC; converted anyway).
    """
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo is not None else value


def date_literal(day: dt.date, dialect: str) -> str:
    return f"DATE '{day.isoformat()}'" if dialect == "postgresql" else f"'{day.isoformat()}'"


class epoch_micros(FunctionElement):
    """Integer microseconds since the Unix epoch of a timestamp column, exact on both engines."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_micros)
def _epoch_micros_pg(element, compiler, **kw):
    (col,) = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM {compiler.process(col, **kw)}) * 1000000)"


UNIXEPOCH_SINCE = (3, 38)  # SQLite's unixepoch(): integer seconds, 1.6x faster than strftime('%s')


@compiles(epoch_micros, "sqlite")
def _epoch_micros_sqlite(element, compiler, **kw):
    (col,) = list(element.clauses)
    c = compiler.process(col, **kw)
    # whole seconds of the text without its fraction (both functions would round .9995 up), then the
    # fraction padded to six digits ('' -> 000000, '5' -> 500000); strftime where SQLite is older
    dbapi = getattr(compiler.dialect, "dbapi", None)
    if dbapi is not None and dbapi.sqlite_version_info >= UNIXEPOCH_SINCE:
        seconds = f"unixepoch(substr({c}, 1, 19))"
    else:
        seconds = f"CAST(strftime('%s', substr({c}, 1, 19)) AS INTEGER)"
    return f"({seconds} * 1000000 + CAST(substr(substr({c}, 21) || '000000', 1, 6) AS INTEGER))"


class ts_norm(FunctionElement):
    """A timestamp in a form where column-to-column comparison is exact (SQLite: fixed-width text)."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(ts_norm, "sqlite")
def _ts_norm_sqlite(element, compiler, **kw):
    (col,) = list(element.clauses)
    c = compiler.process(col, **kw)
    return f"(substr({c}, 1, 19) || '.' || substr(substr({c}, 21) || '000000', 1, 6))"


class scanned(FunctionElement):
    """A timestamp column, compared as itself but never through an index on it (SQLite: unary `+`).

    For a bound that keeps nearly all of a table ("everything before the run's start": balances at
    a run's start, the funnel's earlier `app_open`s), SQLite would otherwise walk an index on the
    column over all of history and fetch each row by its rowid; reading the table in order is 3-4x
    faster (3 years of events: 4.6 s -> 1.4 s). Other indexes (on `ended_at`, or the funnel's
    `(event_name, actor_id, event_time)`) still serve the statement. PostgreSQL estimates such a
    range from its statistics and scans the table by itself: unchanged there.
    """

    type = sa.DateTime()
    inherit_cache = True


@compiles(ts_norm)
@compiles(scanned)
def _the_column_itself(element, compiler, **kw):
    """PostgreSQL compares timestamps exactly and picks its scans from statistics: nothing to add."""
    (col,) = list(element.clauses)
    return compiler.process(col, **kw)


@compiles(scanned, "sqlite")
def _scanned_sqlite(element, compiler, **kw):
    (col,) = list(element.clauses)
    return f"+{compiler.process(col, **kw)}"  # a no-op on the value that disqualifies the index


def duration_micros(end: ColumnElement, start: ColumnElement) -> ColumnElement:
    """Exact microseconds between two timestamp columns."""
    return epoch_micros(end) - epoch_micros(start)


class utc_bucket(FunctionElement):
    """The start of the UTC `minutes`-long step (60, 15 or 1) holding a timestamp, as a key that
    `bucket_literal` spells alike: SQLite text 'YYYY-MM-DD HH[:MM]', PostgreSQL a timestamp.

    Exact for both SQLite spellings (the fraction is never read) and, on PostgreSQL, for
    `timestamp with time zone` columns in a UTC session (resources.engines).
    """

    type = sa.Text()
    inherit_cache = True

    def __init__(self, column, minutes: int):
        super().__init__(column, sa.literal_column(str(int(minutes))))  # a clause: part of the cache key


def _bucket_parts(element, compiler, **kw) -> tuple[str, int]:
    col, minutes = list(element.clauses)
    return compiler.process(col, **kw), int(minutes.name)


@compiles(utc_bucket)
def _utc_bucket_pg(element, compiler, **kw):
    c, m = _bucket_parts(element, compiler, **kw)
    if m == 60:
        return f"date_trunc('hour', {c})"
    return f"date_bin(INTERVAL '{m} minutes', {c}, TIMESTAMP '2000-01-01')"


@compiles(utc_bucket, "sqlite")
def _utc_bucket_sqlite(element, compiler, **kw):
    c, m = _bucket_parts(element, compiler, **kw)
    if m == 60:
        return f"substr({c}, 1, 13)"
    return f"(substr({c}, 1, 14) || printf('%02d', CAST(substr({c}, 15, 2) AS INTEGER) / {m} * {m}))"


def bucket_literal(instant: dt.datetime, minutes: int, dialect: str) -> str:
    """SQL literal of the `utc_bucket` key of a naive UTC instant that starts a step."""
    if dialect == "postgresql":
        return timestamp_literal(instant, dialect)
    return f"'{instant:%Y-%m-%d %H}'" if minutes == 60 else f"'{instant:%Y-%m-%d %H:%M}'"
