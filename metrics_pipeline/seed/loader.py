"""Load the synthetic source data (generator.py) into the four source databases.

Each database is reached by its SQLAlchemy URL (SQLite or PostgreSQL; databases may share a URL).
Its contract tables are dropped and recreated, filled in one transaction per URL by the engine's
fastest bulk path (SQLite: executemany of large batches with journal_mode=WAL and synchronous=OFF;
PostgreSQL: COPY FROM STDIN in CSV), and indexed after loading. The generator works day by day, so
memory stays bounded whatever the volume.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from metrics_pipeline.contract import DATABASES, TABLES, SourceTable, tables_of
from metrics_pipeline.seed.generator import US, Frame, generate

BATCH_ROWS = 50_000
PROGRESS_STEPS = 10  # progress lines over the simulated days


def seed_sources(urls: dict[str, str], *, days: int = 120, end: dt.date | None = None,
                 scale: float = 1.0, seed: int = 42, indexes: str = "contract",
                 progress: Callable[[str], None] = print) -> dict[str, int]:
    """Fill the four source databases (keys of urls: 'app','interactions','messaging','marketing',
    SQLAlchemy URLs) with `days` days of data ending on `end` (inclusive; default yesterday UTC).
    Drops and recreates the contract tables first, then creates the secondary indexes of the set
    `indexes` (SourceTable.index_set: `contract`, `time` or `none`, as a user's database may have).
    Returns row counts per table name."""
    missing = set(DATABASES) - set(urls)
    if missing:
        raise ValueError(f"no URL for source database(s): {', '.join(sorted(missing))}")
    end = end or dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    by_url = {url: [db for db in DATABASES if urls[db] == url] for url in dict.fromkeys(urls.values())}
    targets = [_target(url, dbs) for url, dbs in by_url.items() if dbs]  # one connection per URL
    target_of = {db: t for t in targets for db in t.databases}
    counts = dict.fromkeys(TABLES, 0)
    try:
        for target in targets:
            target.recreate()
        for d, (day, frames) in enumerate(generate(days, end, scale, seed), start=1):
            for name, frame in frames:
                counts[name] += target_of[TABLES[name].database].write(TABLES[name], frame)
            if d % max(days // PROGRESS_STEPS, 1) == 0 or d == days:
                progress(f"seed: {day} ({d}/{days} days), {sum(counts.values()):,} rows")
        for target in targets:
            target.commit()
        progress("seed: indexing")
        with ThreadPoolExecutor(len(targets)) as pool:  # index builds run in SQL, outside the GIL
            list(pool.map(lambda target: target.index(indexes), targets))
    finally:
        for target in targets:
            target.close()
    for name, n in counts.items():
        progress(f"{TABLES[name].database}.{name}: {n:,} rows")
    return counts


def _target(url: str, databases: list[str]) -> _Target:
    backend = sa.engine.make_url(url).get_backend_name()
    if backend == "sqlite":
        return _SqliteTarget(url, databases)
    if backend == "postgresql":
        return _PostgresTarget(url, databases)
    raise ValueError(f"unsupported source database backend: {backend}")


class _Target:
    """The source database(s) behind one URL, being (re)loaded: DDL through SQLAlchemy, rows through
    the raw DBAPI connection in a single transaction, indexes once the rows are in."""

    def __init__(self, url: str, databases: list[str]):
        self.engine = sa.create_engine(url)
        self.databases = databases
        self.tables = [t for db in databases for t in tables_of(db)]
        self.raw = None

    def recreate(self) -> None:
        """Drop and create the contract tables (without their secondary indexes)."""
        metadata = sa.MetaData()
        sa_tables = [t.sa_table(metadata) for t in self.tables]
        with self.engine.begin() as conn:
            metadata.drop_all(conn, tables=sa_tables)
            metadata.create_all(conn, tables=sa_tables)

    def write(self, table: SourceTable, frame: Frame) -> int:
        """Insert a frame's rows (in the open load transaction); return how many."""
        if self.raw is None:
            self.raw = self.engine.raw_connection()
        n = len(frame[table.columns[0].name])
        cursor = self.raw.cursor()
        for first in range(0, n, BATCH_ROWS):
            columns = [_python_values(frame[c.name][first:first + BATCH_ROWS], c.kind) for c in table.columns]
            self.insert(cursor, table, columns)
        cursor.close()
        return n

    def commit(self) -> None:
        if self.raw is not None:
            self.raw.commit()
            self.raw.close()
            self.raw = None

    def index(self, kind: str) -> None:
        """Create the indexes of the set `kind` and refresh the planner statistics."""
        with self.engine.begin() as conn:
            metadata = sa.MetaData()
            for t in self.tables:
                for index in t.sa_indexes(t.sa_table(metadata), kind):
                    index.create(conn)
                conn.exec_driver_sql(f'ANALYZE "{t.name}"')

    def close(self) -> None:
        if self.raw is not None:
            self.raw.rollback()
            self.raw.close()
        self.engine.dispose()

    def insert(self, cursor, table: SourceTable, columns: list[list]) -> None:
        raise NotImplementedError


class _SqliteTarget(_Target):
    def __init__(self, url: str, databases: list[str]):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(url, databases)
        sa.event.listen(self.engine, "connect", _sqlite_load_settings)

    def index(self, kind: str) -> None:
        super().index(kind)
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # give the load's WAL space back

    def insert(self, cursor, table: SourceTable, columns: list[list]) -> None:
        names = ", ".join(f'"{c}"' for c in table.column_names)
        marks = ", ".join("?" * len(columns))
        cursor.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', zip(*columns))


class _PostgresTarget(_Target):
    def insert(self, cursor, table: SourceTable, columns: list[list]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(zip(*columns))
        buffer.seek(0)
        names = ", ".join(f'"{c}"' for c in table.column_names)
        cursor.copy_expert(f'COPY "{table.name}" ({names}) FROM STDIN WITH (FORMAT csv)', buffer)


def _sqlite_load_settings(dbapi_connection, _record) -> None:
    """WAL (readers keep working during the load), no fsync, sampled statistics for ANALYZE."""
    for pragma in ("journal_mode=WAL", "synchronous=OFF", "analysis_limit=1000"):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _python_values(values: np.ndarray, kind: str) -> list:
    """A frame column as Python values for the DBAPI (None for NULL)."""
    if kind == "ts":
        return _timestamp_text(values)
    if kind == "date":
        return np.datetime_as_string(values, unit="D").tolist()
    if values.dtype.kind == "f":  # a nullable integer column: NaN is NULL
        out = np.nan_to_num(values).astype(np.int64).astype(object)
        out[np.isnan(values)] = None
        return out.tolist()
    return values.tolist()


def _timestamp_text(values: np.ndarray) -> list:
    """'YYYY-MM-DD HH:MM:SS.ffffff'; whole-second values mostly without the fraction (those whose
    second // 2 is a multiple of 4 keep '.000000'), so every column mixes the formats the contract
    allows. PostgreSQL parses either."""
    text = np.datetime_as_string(values, unit="us")  # 'YYYY-MM-DDTHH:MM:SS.ffffff'
    chars = text.view(np.uint32).reshape(-1, text.dtype.itemsize // 4)  # UCS-4 code points
    chars[:, 10] = ord(" ")
    us = values.view(np.int64)
    chars[(us % US == 0) & (us // US // 2 % 4 != 0), 19:] = 0  # numpy drops trailing NULs
    out = text.astype(object)
    out[np.isnat(values)] = None
    return out.tolist()
