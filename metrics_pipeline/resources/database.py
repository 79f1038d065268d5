"""SourceDatabase: read-only access to one of the four operational databases."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.contract import ABSENT_COLUMNS, TABLES
from metrics_pipeline.resources.engines import engine_for, redacted, sqlite_path


class SourceUnavailableError(RuntimeError):
    """A source database cannot be reached, or lacks a table or a column a computation reads."""

    def __init__(self, message: str, table: str | None = None, column: str | None = None,
                 transient: bool = False):
        super().__init__(message)
        self.table, self.column, self.transient = table, column, transient


class SourceNotSeededError(SourceUnavailableError):
    """An embedded (SQLite) source database file does not exist yet: nothing was seeded or configured."""


# SQLSTATE classes and codes of errors that a later attempt can get past: connection exceptions
# (08...), serialization failure and deadlock, too many connections, server shutting down or starting.
_TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "53300", "57P01", "57P02", "57P03")


def is_transient(error: BaseException) -> bool:
    """Whether `error` is a database error worth retrying, as opposed to a bad query or a missing table.

    SQLAlchemy's per-dialect disconnect detection (`connection_invalidated`) recognises dropped
    connections; PostgreSQL names the rest by SQLSTATE; SQLite's only transient error is a busy file.
    """
    if isinstance(error, SourceUnavailableError):
        return error.transient
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "pgcode", None) or ""
    if code.startswith(_TRANSIENT_SQLSTATES):
        return True
    return isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error.orig)


class SourceDatabase(dg.ConfigurableResource):
    """A source database (`app`, `interactions`, `messaging` or `marketing`), opened read-only."""

    name: str
    url: str

    @property
    def where(self) -> str:
        return f"source database '{self.name}' ({redacted(self.url)})"

    @contextmanager
    def connect(self, tables: Sequence[str] = ()) -> Iterator[sa.Connection]:
        """A read-only connection; first verifies that `tables` exist.

        Contract columns a table lacks are left out of the queries built while the connection is
        open (contract.ABSENT_COLUMNS): a computation that reads one fails naming table and column.
        """
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            raise SourceNotSeededError(
                f"{self.where} not found: {path} does not exist "
                "(set its METRICS_*_DB_URL or run `metrics-pipeline seed`)")
        try:
            conn = engine_for(self.url, read_only=True).connect()
        except sa.exc.SQLAlchemyError as e:
            raise SourceUnavailableError(f"cannot connect to {self.where}: {_reason(e)}", transient=True) from None
        with conn:
            absent = self.verify(conn, tables)
            token = ABSENT_COLUMNS.set({**ABSENT_COLUMNS.get(), **absent})
            try:
                yield conn
            except KeyError as e:
                lacking = [t for t, cols in absent.items() if e.args and e.args[0] in cols]
                if not lacking:
                    raise
                raise SourceUnavailableError(
                    f"{self.where}: table '{lacking[0]}' lacks column {e.args[0]}, which these metrics read",
                    table=lacking[0], column=e.args[0]) from None
            finally:
                ABSENT_COLUMNS.reset(token)

    def verify(self, conn: sa.Connection, tables: Sequence[str]) -> dict[str, frozenset[str]]:
        """Raise SourceUnavailableError naming database and table if one is missing; return the
        contract columns each table lacks."""
        inspector = sa.inspect(conn)
        absent = {}
        for name in tables:
            if not inspector.has_table(name):
                raise SourceUnavailableError(f"{self.where} has no table '{name}'")
            have = {c["name"] for c in inspector.get_columns(name)}
            missing = frozenset(c for c in TABLES[name].column_names if c not in have)
            if missing:
                absent[name] = missing
        return absent


def _reason(e: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    return str(orig if orig is not None else e).strip().splitlines()[0]
