"""One SQLAlchemy engine per URL and process, with engine-specific connection settings."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa


def redacted(url: str) -> str:
    """The URL as safe to print: password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def sqlite_path(url: str) -> Path | None:
    """Path of a file-backed SQLite URL, None for other engines and in-memory databases."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


UTC_SESSION = "-c TimeZone=UTC"  # PostgreSQL session option: see utc_session_args

_ENGINES: dict[tuple[str, bool], sa.Engine] = {}


def engine_for(url: str, read_only: bool) -> sa.Engine:
    """The process's engine for `url` (sources read-only, the warehouse read-write)."""
    key = (url, read_only)
    if key not in _ENGINES:
        _ENGINES[key] = _create(url, read_only)
    return _ENGINES[key]


def dispose_engines() -> None:
    """Close every pooled connection (tests and long-lived processes that drop databases)."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def _create(url: str, read_only: bool) -> sa.Engine:
    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        # check_same_thread off: a pooled connection may be reused by another thread (sensor and
        # in-process threads), never by two at once
        engine = sa.create_engine(u, connect_args={"timeout": 60, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 60000")
            cur.execute("PRAGMA query_only = ON" if read_only else "PRAGMA journal_mode = WAL")
            cur.close()

        return engine
    connect_args, options = {}, {}
    if read_only and u.get_backend_name() == "postgresql":
        # Rows stream from a server-side cursor: psycopg2 otherwise holds a whole result (a period's
        # per-user rows) in memory at once, so a run's memory grew with the source (benchmarks/results/fixes.md).
        # A cursor's query is planned for its first 10% of rows (cursor_tuple_fraction 0.1): nested loops
        # that took a year of monthly MRR from 1 s to 90 s. Every row is read, so plan for all of them.
        connect_args["options"] = (f"{UTC_SESSION} -c default_transaction_read_only=on"
                                   " -c cursor_tuple_fraction=1.0")
        options["stream_results"] = True
    return sa.create_engine(u, pool_pre_ping=True, connect_args=connect_args, execution_options=options)


def utc_session_args(url: str) -> dict:
    """DBAPI connect arguments that run a source session in UTC (also given to Great Expectations' engine).

    On PostgreSQL the session's `TimeZone` is UTC whatever the server's: a `timestamp with time zone`
    column then compares with the naive UTC bounds, truncates to hours and reads back in UTC, so it
    gives the same numbers as `timestamp without time zone` (SOURCES.md). Other engines: nothing.
    """
    if sa.engine.make_url(url).get_backend_name() != "postgresql":
        return {}
    return {"options": UTC_SESSION}
