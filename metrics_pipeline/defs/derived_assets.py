"""`<grain>_derived_metrics`: cross-source ratios, downstream of the assets whose totals they divide."""

import dagster as dg

from metrics_pipeline.defs import beta
from metrics_pipeline.defs.metric_assets import (
    METRIC_ASSETS, OWNERS, materialization_metadata, record_partition_values, table_schema, window_periods,
)
from metrics_pipeline.defs.execution import FOLLOW_UPSTREAM, retry_transient
from metrics_pipeline.metrics.catalog import domain_of
from metrics_pipeline.metrics.derived import DERIVED, derived_rows, inputs
from metrics_pipeline.partitions import FRESHNESS, GRAIN_ADJECTIVE, PARTITIONS
from metrics_pipeline.warehouse_schema import metric_values


def build_derived_asset(grain: str) -> dg.AssetsDefinition:
    name = f"{GRAIN_ADJECTIVE[grain]}_derived_metrics"
    metrics = [d for d in DERIVED if grain in d.grains]
    upstream = sorted({METRIC_ASSETS[(domain_of(i).name, grain)].key for i in inputs(grain)}, key=str)

    @beta.asset(
        name=name,
        description="\n".join([
            f"{GRAIN_ADJECTIVE[grain].capitalize()} cross-source metrics, divided from totals of other assets:", "",
            *(f"- `{d.name}` = `{d.numerator}` / `{d.denominator}`: {d.description}" for d in metrics), "",
            f"Rows land in `metric_values` with grain `{grain}` and source `derived`."]),
        partitions_def=PARTITIONS[grain],
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=FRESHNESS[grain],
        deps=upstream,
        group_name="derived",
        kinds={"sql"},
        owners=OWNERS,
        tags={"grain": grain, "domain": "derived"},
        metadata={"metrics": ", ".join(d.name for d in metrics), "dagster/column_schema": table_schema(metric_values),
                  "dagster/table_name": "metric_values"},
        required_resource_keys={"warehouse"},
        automation_condition=FOLLOW_UPSTREAM,
    )
    @retry_transient
    def _derived(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        periods = window_periods(context, grain)
        warehouse = context.resources.warehouse
        rows = derived_rows(grain, periods, warehouse.totals(inputs(grain), grain, periods[0].key, periods[-1].end_key))
        warehouse.replace_metric_rows(rows, grain=grain, metrics=[d.name for d in metrics], periods=periods,
                                      source="derived", asset=name, run_id=context.run.run_id)
        record_partition_values(context, rows, periods)
        return dg.MaterializeResult(metadata=materialization_metadata(rows, periods))

    return _derived


DERIVED_ASSETS = {grain: build_derived_asset(grain) for grain in ("day", "week", "month")}
