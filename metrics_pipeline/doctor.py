"""`metrics-pipeline doctor`: what a user's source databases lack for this pipeline, table by table.

For each contract table (SOURCES.md) it reports the contract columns that are present, missing or
of another type, the extra columns (ignored), the indexes the pipeline's queries would use and the
`CREATE INDEX` statement of each missing one in the database's own dialect, an estimate of rows,
and the timestamp types (e.g. `timestamp with time zone` where the contract says without: read
right, as source sessions run in UTC). A missing table or column, or a column of another type, is a
problem (the sources do not meet the contract); a missing index is a warning: results stay exact and
a backfill reads each window once, but a nightly run scans the table instead of a range of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable, tables_of
from metrics_pipeline.resources.engines import engine_for, redacted

SCANS = "each run reads the whole table rather than its window"


@dataclass(frozen=True)
class TableReport:
    """The findings on one source table."""

    database: str
    table: str
    exists: bool
    present: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    mistyped: tuple[tuple[str, str, str], ...] = ()  # (column, contract kind, actual type)
    extra: tuple[str, ...] = ()
    timestamp_types: dict[str, str] = field(default_factory=dict)  # contract timestamp column -> its type
    indexes_used: tuple[tuple[str, ...], ...] = ()
    missing_indexes: tuple[tuple[tuple[str, ...], str], ...] = ()  # (columns, CREATE INDEX statement)
    row_estimate: int | None = None

    @property
    def problems(self) -> list[str]:
        where = f"{self.database}.{self.table}"
        if not self.exists:
            return [f"{where}: table missing"]
        return ([f"{where}.{c}: column missing" for c in self.missing]
                + [f"{where}.{c}: {actual}, the contract says {kind}" for c, kind, actual in self.mistyped])

    @property
    def warnings(self) -> list[str]:
        return [f"no index on {self.table}({', '.join(cols)}): {SCANS}; {sql}" for cols, sql in self.missing_indexes]


@dataclass(frozen=True)
class SourceReport:
    database: str
    url: str  # password hidden
    server_time_zone: str | None = None
    tables: tuple[TableReport, ...] = ()
    error: str | None = None

    @property
    def problems(self) -> list[str]:
        if self.error:
            return [f"{self.database}: {self.error}"]
        return [p for t in self.tables for p in t.problems]


def _type_name(column: dict, dialect: sa.Dialect) -> str:
    try:
        return column["type"].compile(dialect=dialect).lower()
    except sa.exc.CompileError:
        return str(column["type"]).lower()


def _accepts(kind: str, column_type: sa.types.TypeEngine, dialect: str) -> bool:
    """Whether a live column type holds the contract's kind (SQLite keeps timestamps and dates as text)."""
    if kind in ("ts", "date") and dialect == "sqlite" and isinstance(column_type, sa.String):
        return True
    if kind == "ts":
        return isinstance(column_type, sa.DateTime)
    if kind == "date":
        return isinstance(column_type, sa.Date)
    if kind == "int":
        return isinstance(column_type, sa.Integer)
    return isinstance(column_type, (sa.String, sa.Uuid))


def _row_estimate(conn: sa.Connection, table: str) -> int | None:
    """The planner's row count on PostgreSQL (pg_class.reltuples), the largest rowid on SQLite."""
    if conn.dialect.name == "postgresql":
        n = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}).scalar()
        return None if n is None or n < 0 else int(n)
    if conn.dialect.name == "sqlite":
        try:
            return int(conn.exec_driver_sql(f'SELECT coalesce(max(rowid), 0) FROM "{table}"').scalar())
        except sa.exc.DBAPIError:  # a WITHOUT ROWID table
            return None
    return None


def diagnose_table(conn: sa.Connection, table: SourceTable) -> TableReport:
    """What `table` of the open source connection has and lacks, by the contract."""
    inspector = sa.inspect(conn)
    if not inspector.has_table(table.name):
        return TableReport(table.database, table.name, exists=False)
    dialect = conn.dialect
    live = {c["name"]: c for c in inspector.get_columns(table.name)}
    contract = {c.name: c for c in table.columns}
    mistyped = tuple((name, c.kind, _type_name(live[name], dialect)) for name, c in contract.items()
                     if name in live and not _accepts(c.kind, live[name]["type"], dialect.name))
    timestamp_types = {name: _type_name(live[name], dialect) for name, c in contract.items()
                       if c.kind == "ts" and name in live}
    have = [tuple(i["column_names"]) for i in inspector.get_indexes(table.name)]
    have.append(tuple(inspector.get_pk_constraint(table.name).get("constrained_columns") or ()))
    used, missing = [], []
    sa_table = table.sa_table(sa.MetaData())
    for cols, index in zip(table.indexes, table.sa_indexes(sa_table), strict=True):
        if any(h[:len(cols)] == cols for h in have):
            used.append(cols)
        elif all(c in live for c in cols):
            missing.append((cols, str(sa.schema.CreateIndex(index).compile(dialect=dialect)).strip() + ";"))
    return TableReport(
        table.database, table.name, exists=True,
        present=tuple(c for c in contract if c in live), missing=tuple(c for c in contract if c not in live),
        mistyped=mistyped, extra=tuple(c for c in live if c not in contract), timestamp_types=timestamp_types,
        indexes_used=tuple(used), missing_indexes=tuple(missing), row_estimate=_row_estimate(conn, table.name),
    )


def server_time_zone(url: str) -> str | None:
    """The server's own `TimeZone` (PostgreSQL; source sessions override it with UTC), None elsewhere."""
    if sa.engine.make_url(url).get_backend_name() != "postgresql":
        return None
    engine = sa.create_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SHOW TimeZone").scalar()
    finally:
        engine.dispose()


def diagnose(database: str, url: str) -> SourceReport:
    """Every contract table of one source database, through a read-only connection."""
    where = redacted(url)
    try:
        with engine_for(url, read_only=True).connect() as conn:
            tables = tuple(diagnose_table(conn, t) for t in tables_of(database))
        return SourceReport(database, where, server_time_zone(url), tables)
    except sa.exc.SQLAlchemyError as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        return SourceReport(database, where, error=f"cannot read {where}: {reason}")


def render(reports: list[SourceReport]) -> str:
    """The reports as the text `metrics-pipeline doctor` prints."""
    lines = []
    for r in reports:
        zone = f", server TimeZone {r.server_time_zone} (sessions run in UTC)" if r.server_time_zone else ""
        lines.append(f"{r.database}: {r.url}{zone}")
        if r.error:
            lines.append(f"  ERROR {r.error}")
            continue
        for t in r.tables:
            if not t.exists:
                lines.append(f"  {t.table}: ERROR table missing")
                continue
            rows = "?" if t.row_estimate is None else f"~{t.row_estimate:,}"
            types = sorted(set(t.timestamp_types.values()))
            lines.append(f"  {t.table}: {rows} rows, {len(t.present)}/{len(t.present) + len(t.missing)} contract "
                         f"columns, timestamps {', '.join(types) or '-'}"
                         + (f", extra columns ignored: {', '.join(t.extra)}" if t.extra else ""))
            lines += [f"    ERROR {p}" for p in t.problems]
            lines += [f"    WARN  {w}" for w in t.warnings]
    problems = [p for r in reports for p in r.problems]
    warnings = sum(len(t.missing_indexes) for r in reports for t in r.tables)
    lines.append(f"{len(problems)} problem(s): the sources do not meet the contract" if problems
                 else f"sources meet the contract ({warnings} missing index warning(s))")
    return "\n".join(lines)


def metadata(report: TableReport) -> dict[str, str]:
    """The findings on one table as source-asset metadata (the observe job shows them in the UI)."""
    if not report.exists:
        return {"doctor": "table missing"}
    return {
        "doctor": "; ".join(report.problems) or "meets the contract",
        "timestamp_types": ", ".join(f"{c}: {t}" for c, t in report.timestamp_types.items()) or "-",
        "missing_indexes": "\n".join(report.warnings) or "none",
    }
