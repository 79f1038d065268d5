"""SourceDatabase: read-only access to one of the four operational databases."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.contract import TABLES
from metrics_pipeline.resources.engines import engine_for, redacted, sqlite_path


class SourceUnavailableError(RuntimeError):
    """A source database cannot be reached, or lacks a table or column of the contract."""


class SourceDatabase(dg.ConfigurableResource):
    """A source database (`app`, `interactions`, `messaging` or `marketing`), opened read-only."""

    name: str
    url: str

    @property
    def where(self) -> str:
        return f"source database '{self.name}' ({redacted(self.url)})"

    @contextmanager
    def connect(self, tables: Sequence[str] = ()) -> Iterator[sa.Connection]:
        """A read-only connection; first verifies that `tables` exist with the contract's columns."""
        path = sqlite_path(self.url)
        if path is not None and not path.exists():
            raise SourceUnavailableError(
                f"{self.where} not found: {path} does not exist "
                "(set its METRICS_*_DB_URL or run `metrics-pipeline seed`)")
        try:
            conn = engine_for(self.url, read_only=True).connect()
        except sa.exc.SQLAlchemyError as e:
            raise SourceUnavailableError(f"cannot connect to {self.where}: {_reason(e)}") from None
        with conn:
            self.verify(conn, tables)
            yield conn

    def verify(self, conn: sa.Connection, tables: Sequence[str]) -> None:
        """Raise SourceUnavailableError naming the database and table if one lacks the contract's columns."""
        inspector = sa.inspect(conn)
        for name in tables:
            if not inspector.has_table(name):
                raise SourceUnavailableError(f"{self.where} has no table '{name}'")
            have = {c["name"] for c in inspector.get_columns(name)}
            missing = [c for c in TABLES[name].column_names if c not in have]
            if missing:
                raise SourceUnavailableError(
                    f"{self.where}: table '{name}' lacks column(s) {', '.join(missing)}")


def _reason(e: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    return str(orig if orig is not None else e).strip().splitlines()[0]
