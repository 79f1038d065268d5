"""How assets open a source database: schema changes are recorded before anything is computed.

Every asset that reads a source goes through `open_source`, so a column removed, added or retyped
is alerted (`schema_change`) by whichever run sees it first, however it was launched. A metric
that reads a removed column then fails naming database, table and column; the others go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.alerts import Alert
from metrics_pipeline.contract import TABLES
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.defs.sources import source_key
from metrics_pipeline.metrics.periods import Period, period_containing
from metrics_pipeline.quality.schema import changes, live_columns
from metrics_pipeline.resources.database import SourceUnavailableError

SCHEMA_CHECK = "source_schema"


def detection_day(periods: Sequence[Period]) -> Period:
    """The day a run's window ends in: where alerts about the source as a whole are filed."""
    last = periods[-1]
    return period_containing("day", last.end - dt.timedelta(microseconds=1), last.tz)


def record_schema_changes(context, database: str, conn: sa.Connection, tables: Sequence[str],
                          periods: Sequence[Period]) -> None:
    """Compare each table's live columns with its stored snapshot; alert changes, then snapshot."""
    warehouse = context.resources.warehouse
    day = detection_day(periods)
    for name in tables:
        live = live_columns(conn, name)
        if not live:
            continue  # a missing table fails the run with its own message
        previous = warehouse.schema_snapshot(database, name)
        found = changes(TABLES[name], previous, live)
        if found:
            warehouse.record_check_alerts(
                [Alert("schema_change", c.severity, c.message, day.key, period_start=day.key, period_end=day.end_key,
                       source_table=name, column_name=c.column, rule=c.kind) for c in found],
                asset=source_key(name).to_user_string(), check_name=SCHEMA_CHECK, partition_keys=[],
                run_id=context.run.run_id)
            context.log.warning("; ".join(c.message for c in found))
        if found or previous is None:
            warehouse.save_schema_snapshot(database, name, live)


@contextmanager
def open_source(context: dg.AssetExecutionContext, database: str, tables: Sequence[str],
                periods: Sequence[Period]) -> Iterator[sa.Connection]:
    """A read-only connection to `database` (see SourceDatabase.connect), schema changes alerted first."""
    source = getattr(context.resources, resource_key(database))
    try:
        with source.connect(tables) as conn:
            record_schema_changes(context, database, conn, tables, periods)
            yield conn
    except SourceUnavailableError as e:
        if e.column:  # a metric reads the removed column: its schema change is critical
            context.resources.warehouse.escalate_removed_column(
                e.table, e.column, f"{e.table}: column {e.column} was removed; metrics reading it cannot be "
                                   f"computed until it is restored ({context.asset_key.to_user_string()} failed).")
        raise
