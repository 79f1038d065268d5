"""Source tables as external assets, grouped by database: the roots of every metric's lineage."""

from __future__ import annotations

import dagster as dg

from metrics_pipeline.contract import TABLES, SourceTable

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
