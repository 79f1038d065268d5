"""The test suite's throwaway PostgreSQL 15 server: `local_stack.PostgresServer` (what `make prod` runs)
in a temporary folder, without fsync, removed by `stop()`.

Its `TimeZone` is deliberately not UTC (as on many real servers), so any query that lets an aware
timestamp or `now()` go through the session time zone shows up as a wrong number.
"""

from __future__ import annotations

from metrics_pipeline import local_stack

SERVER_TIMEZONE = "America/Los_Angeles"


class PostgresServer(local_stack.PostgresServer):
    """Start with `start()`, stop with `stop()`; `url(db)`, `create_database(prefix)` give SQLAlchemy URLs."""

    def __init__(self) -> None:
        super().__init__(timezone=SERVER_TIMEZONE, durable=False)
