"""Source tables as external assets, grouped by database: the roots of every metric's lineage.

They are observed (row count, newest updated_at, the `doctor`'s findings) and checked for freshness
by `observe_sources_job`.
"""

import datetime as dt

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.defs import beta
from metrics_pipeline.alerts import Alert
from metrics_pipeline.contract import DATABASES, TABLES, SourceTable
from metrics_pipeline.defs.execution import retry_transient
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.doctor import diagnose_table
from metrics_pipeline.doctor import metadata as doctor_metadata
from metrics_pipeline.metrics.sqltime import naive_utc
from metrics_pipeline.settings import FRESHNESS_ENV, source_freshness_hours

_SQL_TYPES = {"text": "TEXT", "ts": "TIMESTAMP", "int": "INTEGER", "date": "DATE"}


def source_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([TABLES[table].database, table])


def column_schema(table: SourceTable) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, _SQL_TYPES[c.kind],
                       description=", ".join(filter(None, [
                           "nullable" if c.nullable else "required",
                           f"one of {', '.join(c.allowed)}" if c.allowed else "",
                           ">= 0" if c.non_negative else "",
                           "'USD' only" if c.usd else "",
                       ])))
        for c in table.columns
    ])


SOURCE_ASSETS = [
    dg.AssetSpec(
        key=source_key(t.name),
        description=f"`{t.database}.{t.name}`: {t.description} Read-only source (SOURCES.md).",
        group_name=f"{t.database}_source",
        kinds={"sql"},
        tags={"domain": "source", "database": t.database},
        metadata={"dagster/column_schema": column_schema(t), "dagster/table_name": f"{t.database}.{t.name}"},
    )
    for t in TABLES.values()
]


def observe_table(conn: sa.Connection, table: SourceTable) -> dict:
    """Row count and newest `updated_at` of a source table (the late-data watermark)."""
    t = table.sa_table()
    count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(t.c.updated_at))).one()
    return {"row_count": int(count), "newest_updated_at": None if newest is None else str(naive_utc(newest))}


def _build_observer(database: str) -> dg.AssetsDefinition:
    specs = [s for s in SOURCE_ASSETS if s.key.path[0] == database]

    @beta.multi_observable_source_asset(
        specs=specs, name=f"observe_{database}_sources", required_resource_keys={resource_key(database)},
        description=f"Observes the `{database}` source tables: row count, newest updated_at, and what "
                    "`metrics-pipeline doctor` finds (contract columns, timestamp types, missing indexes).",
    )  # no pool: Dagster's observable source assets take none (one count and max per table, hourly)
    @retry_transient
    def _observe(context):
        tables = [TABLES[s.key.path[-1]] for s in specs]
        with getattr(context.resources, resource_key(database)).connect([t.name for t in tables]) as conn:
            for table in tables:
                seen = observe_table(conn, table)
                yield dg.ObserveResult(
                    asset_key=source_key(table.name),
                    metadata={"row_count": dg.MetadataValue.int(seen["row_count"]),
                              "newest_updated_at": seen["newest_updated_at"] or "none",
                              **doctor_metadata(diagnose_table(conn, table))},
                    data_version=dg.DataVersion(f"{seen['row_count']}@{seen['newest_updated_at']}"),
                )

    return _observe


SOURCE_OBSERVERS = [_build_observer(db) for db in DATABASES]


def build_freshness_check(table: SourceTable) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=source_key(table.name), name="source_freshness",
        required_resource_keys={resource_key(table.database), "warehouse"},
        description=f"`{table.database}.{table.name}` received a change (newest updated_at) within "
                    f"{FRESHNESS_ENV} hours (default 26): a stalled export or replication raises `freshness`.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        limit = source_freshness_hours()
        with getattr(context.resources, resource_key(table.database)).connect([table.name]) as conn:
            seen = observe_table(conn, table)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        newest = naive_utc(seen["newest_updated_at"]) if seen["newest_updated_at"] else None
        lag = None if newest is None else (now - newest).total_seconds() / 3600
        today = now.date().isoformat()
        stale = lag is None or lag > limit
        message = (f"{table.database}.{table.name} has no rows" if lag is None else
                   f"{table.database}.{table.name}: newest change {newest:%Y-%m-%d %H:%M} UTC is {lag:,.1f} h old "
                   f"(limit {limit:g} h)")
        alerts = [Alert("freshness", "high", message, today, source_table=table.name, column_name="updated_at",
                        actual_value=lag, threshold=limit)] if stale else []
        context.resources.warehouse.record_check_alerts(
            alerts, asset=source_key(table.name).to_user_string(), check_name="source_freshness",
            partition_keys=[today], run_id=context.run.run_id)
        return dg.AssetCheckResult(passed=not stale, severity=dg.AssetCheckSeverity.ERROR, description=message,
                                   metadata={"severity": "high", "lag_hours": lag, "limit_hours": limit,
                                             "newest_updated_at": seen["newest_updated_at"] or "none"})

    return _check


FRESHNESS_CHECKS = [build_freshness_check(t) for t in TABLES.values()]
