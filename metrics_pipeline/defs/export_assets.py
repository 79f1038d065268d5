"""`monthly_export`: the month's `metric_values` and KPI summary as CSV and Parquet, on S3 or in a folder.

The writing itself (layout, atomicity, manifests, stale files) is `metrics_pipeline.exports`; this
module only wires it to the warehouse and the `exporter` resource.
"""

import dagster as dg

from metrics_pipeline.defs import beta
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.execution import FOLLOW_UPSTREAM, retry_transient
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS, OWNERS, window_periods
from metrics_pipeline.exports import EXPORT_TABLES, MANIFEST, MonthExport, export_month
from metrics_pipeline.settings import EXPORT_URI_ENV
from metrics_pipeline.partitions import PARTITIONS

EXPORT_RESOURCE_KEY = "exporter"
# The daily KPI summary table's asset (built elsewhere): the export reads its table, so lineage needs it.
KPI_SUMMARY_KEY = dg.AssetKey("daily_kpi_summary")
MAX_LISTED_FILES = 40


def export_upstream(kpi_summary_key: dg.AssetKey | None = KPI_SUMMARY_KEY) -> list[dg.AssetKey]:
    """Every monthly metric asset, the monthly derived asset, and the KPI summary: all tables read."""
    keys = [a.key for (_, grain), a in METRIC_ASSETS.items() if grain == "month"] + [DERIVED_ASSETS["month"].key]
    return sorted(keys, key=str) + ([kpi_summary_key] if kpi_summary_key is not None else [])


def _files_table(exports: list[MonthExport]) -> str:
    files = [f for e in exports for f in e.files]
    lines = ["| file | rows | bytes | sha256 |", "|---|---|---|---|"]
    lines += [f"| {f.uri} | {'' if f.rows < 0 else f'{f.rows:,}'} | {f.bytes:,} | `{f.sha256[:12]}` |"
              for f in files[:MAX_LISTED_FILES]]
    if len(files) > MAX_LISTED_FILES:
        lines.append(f"| ... and {len(files) - MAX_LISTED_FILES} more (see each month's {MANIFEST}) | | | |")
    return "\n".join(lines)


def export_metadata(root: str, exports: list[MonthExport]) -> dict:
    files = [f for e in exports for f in e.files]
    meta = {
        "export_root": dg.MetadataValue.text(root),
        "months": dg.MetadataValue.int(len(exports)),
        "first_month": exports[0].month,
        "last_month": exports[-1].month,
        **{f"{spec.name}_rows": dg.MetadataValue.int(sum(e.rows(spec.name) for e in exports))
           for spec in EXPORT_TABLES},
        "files_written": dg.MetadataValue.int(len(files)),
        "bytes_written": dg.MetadataValue.int(sum(f.bytes for f in files)),
        "stale_files_removed": dg.MetadataValue.int(sum(len(e.removed) for e in exports)),
        "files": dg.MetadataValue.md(_files_table(exports)),
        "file_uris": dg.MetadataValue.json([f.uri for f in files]),
    }
    if len(exports) == 1:
        meta["manifests"] = dg.MetadataValue.json([f.uri for f in files if f.key.endswith(MANIFEST)])
    return meta


def build_export_asset(kpi_summary_key: dg.AssetKey | None = KPI_SUMMARY_KEY) -> dg.AssetsDefinition:
    layout = "\n".join(f"- `{spec.name}/month=YYYY-MM/{spec.name}.csv`, `.parquet`, `{MANIFEST}`"
                       for spec in EXPORT_TABLES)

    @beta.asset(
        name="monthly_export",
        description="\n".join([
            "The month's `metric_values` (every grain, rows whose `period_start` is in the month; a week "
            "belongs to the month it starts in) and `daily_kpi_summary` (rows whose `date` is in the month), "
            f"as CSV and Parquet under `{EXPORT_URI_ENV}` (`s3://bucket/prefix` or a local folder, "
            "default `./data/exports`):", "", layout, "",
            "Each file is written atomically (temp file + rename locally, one PutObject on S3); the manifest, "
            "written last, lists every file with its rows, bytes and sha256. Re-exporting a month replaces "
            "its files and removes stale ones; identical data gives byte-identical files."]),
        partitions_def=PARTITIONS["month"],
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=export_upstream(kpi_summary_key),
        group_name="exports",
        kinds={"csv", "parquet", "s3"},
        owners=OWNERS,
        tags={"grain": "month", "domain": "exports"},
        metadata={"tables": ", ".join(spec.name for spec in EXPORT_TABLES), "formats": "csv, parquet",
                  "layout": dg.MetadataValue.md(layout)},
        required_resource_keys={"warehouse", EXPORT_RESOURCE_KEY},
        automation_condition=FOLLOW_UPSTREAM,
    )
    @retry_transient
    def monthly_export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        # the `exporter` resource is metrics_pipeline.resources.exporter.ExportResource
        target = getattr(context.resources, EXPORT_RESOURCE_KEY).target()
        target.check()
        months = [p.key for p in window_periods(context, "month")]
        engine = context.resources.warehouse.engine
        exports = []
        for month in months:
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":  # both tables read from one snapshot
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    done = export_month(conn, target, month)
            exports.append(done)
            counts = ", ".join(f"{done.rows(s.name)} {s.name} rows" for s in EXPORT_TABLES)
            context.log.info(f"exported {done.month} to {target.uri}: {counts}, {done.bytes:,} bytes"
                             + (f"; removed stale {', '.join(done.removed)}" if done.removed else ""))
            if done.rows("metric_values") == 0:
                context.log.warning(f"{done.month}: no metric_values rows in the warehouse; exported empty files")
        return dg.MaterializeResult(metadata=export_metadata(target.uri, exports))

    return monthly_export


monthly_export = build_export_asset()
EXPORT_ASSETS = [monthly_export]

__all__ = ["EXPORT_ASSETS", "EXPORT_RESOURCE_KEY", "KPI_SUMMARY_KEY", "build_export_asset", "export_upstream",
           "monthly_export"]
