"""One partitioned asset per (domain, grain), e.g. `daily_revenue_metrics`, built from the catalogue.

Each asset reads exactly the source tables its metrics need (its deps, so lineage is true), computes
every partition of the run's window with set-based SQL on the source, and replaces those partitions'
rows of `metric_values` in one warehouse transaction. Backfills run as a single run per asset.
"""

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.defs import beta
from metrics_pipeline.metrics.catalog import DOMAINS
from metrics_pipeline.metrics.engine import compute_domain
from metrics_pipeline.metrics.periods import Period, periods_between
from metrics_pipeline.metrics.spec import Domain, MetricRow
from metrics_pipeline.partitions import FRESHNESS, GRAIN_ADJECTIVE, PARTITIONS
from metrics_pipeline.defs.execution import retry_transient, source_pool
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.defs.source_access import open_source
from metrics_pipeline.defs.source_scans import start_scans
from metrics_pipeline.defs.sources import source_key
from metrics_pipeline.settings import timezone_name
from metrics_pipeline.warehouse_schema import metric_values

OWNERS = ["team:analytics-engineering"]
PREVIEW_ROWS = 12


def asset_name(domain: Domain, grain: str) -> str:
    return f"{GRAIN_ADJECTIVE[grain]}_{domain.name}_metrics"


def window_periods(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, grain: str) -> list[Period]:
    """The periods of the partitions this run covers (one, or a whole backfill range)."""
    window = context.partition_time_window
    return periods_between(grain, window.start, window.end, timezone_name())


def _description(domain: Domain, grain: str) -> str:
    lines = [f"{GRAIN_ADJECTIVE[grain].capitalize()} {domain.name} metrics. {domain.description}", ""]
    for m in domain.metrics_for(grain):
        dims = f" (by {', '.join(m.dims)})" if m.dims else ""
        lines.append(f"- `{m.name}`{dims}: {m.description}")
    lines += ["", f"Rows land in `metric_values` with grain `{grain}` and source `{domain.database}`."]
    return "\n".join(lines)


def table_schema(table: sa.Table) -> dg.TableSchema:
    """`dagster/column_schema` of a warehouse table, from its SQLAlchemy definition and comments."""
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, str(c.type), description=c.comment or "") for c in table.columns
    ])


def _preview(rows: list[MetricRow]) -> str:
    header = "| metric | period | value |\n|---|---|---|"
    body = [f"| {r.metric} | {r.period_start} | {'NULL' if r.value is None else f'{r.value:,.4g}'} |"
            for r in rows[:PREVIEW_ROWS]]
    return "\n".join([header, *body])


def materialization_metadata(rows: list[MetricRow], periods: list[Period]) -> dict:
    """What an analyst reads at a glance on every partition's materialization (the run's summary)."""
    totals = sorted((r for r in rows if r.dimension == ""), key=lambda r: (r.period_start, r.metric))
    last = [r for r in totals if r.period_start == periods[-1].key]
    return {
        "rows_written": dg.MetadataValue.int(len(rows)),
        "periods": dg.MetadataValue.int(len(periods)),
        "first_period": periods[0].key,
        "last_period": periods[-1].key,
        "preview": dg.MetadataValue.md(_preview(last)),
    }


def record_partition_values(context: dg.AssetExecutionContext, rows: list[MetricRow], periods: list[Period]) -> None:
    """Each partition's headline values (totals) on that partition's own materialization, so the UI
    plots every metric over time, whether the partition came from a nightly run or a range backfill.

    Not for ranges of hours: each `add_asset_metadata` call copies and re-checks all the partitions
    given so far, so a range costs its length squared (a year of hours: ~45 s of a 75 s run, against
    ~1 s for three years of days). Hourly values are plotted from the hourly schedule's runs.
    """
    if len(periods) > 1 and periods[0].grain == "hour":
        return
    by_period: dict[str, dict] = {}
    for r in rows:
        if r.dimension == "" and r.value is not None:
            by_period.setdefault(r.period_start, {})[r.metric] = dg.MetadataValue.float(r.value)
    for key, period in zip(context.partition_keys, periods, strict=True):
        if by_period.get(period.key):
            context.add_asset_metadata(by_period[period.key], partition_key=key)


def build_metric_asset(domain: Domain, grain: str) -> dg.AssetsDefinition:
    name = asset_name(domain, grain)
    tables = domain.tables_for(grain)
    metrics = [m.name for m in domain.metrics_for(grain)]
    db_key = resource_key(domain.database)

    @beta.asset(
        name=name,
        description=_description(domain, grain),
        partitions_def=PARTITIONS[grain],
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=FRESHNESS[grain],
        deps=[source_key(t) for t in tables],
        group_name=domain.name,
        kinds={"sql"},
        owners=OWNERS,
        tags={"grain": grain, "domain": domain.name},
        metadata={"metrics": ", ".join(metrics), "dagster/column_schema": table_schema(metric_values),
                  "dagster/table_name": "metric_values"},
        required_resource_keys={db_key, "warehouse"},
        pool=source_pool(domain.database),
    )
    @retry_transient
    def _metric_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        periods = window_periods(context, grain)
        context.log.info(f"{name}: computing {len(metrics)} metrics for {len(periods)} period(s) "
                         f"{periods[0].key} .. {periods[-1].key}")
        if grain == "day":
            start_scans(context, domain, periods)
        with open_source(context, domain.database, tables, periods) as conn:
            rows = compute_domain(conn, domain, grain, periods)
        written = context.resources.warehouse.replace_metric_rows(
            rows, grain=grain, metrics=metrics, periods=periods, source=domain.database,
            asset=name, run_id=context.run.run_id)
        context.log.info(f"{name}: replaced {written} rows of metric_values")
        record_partition_values(context, rows, periods)
        return dg.MaterializeResult(metadata=materialization_metadata(rows, periods))

    return _metric_asset


METRIC_ASSETS: dict[tuple[str, str], dg.AssetsDefinition] = {
    (d.name, g): build_metric_asset(d, g) for d in DOMAINS for g in d.grains
}
