"""`weekly_retention_cohorts` and `daily_conversion_funnel`: cohort tables plus their summary rows."""

import dataclasses
import datetime as dt

import dagster as dg

from metrics_pipeline.defs import beta
from metrics_pipeline.defs.metric_assets import (
    OWNERS, materialization_metadata, record_partition_values, table_schema, window_periods,
)
from metrics_pipeline.defs.execution import retry_transient, source_pool
from metrics_pipeline.defs.source_access import open_source
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.defs.sources import source_key
from metrics_pipeline.metrics import cohorts, funnel
from metrics_pipeline.partitions import PARTITIONS
from metrics_pipeline.resources.warehouse import metric_replacement
from metrics_pipeline.warehouse_schema import conversion_funnel, retention_cohorts


@beta.asset(
    name="weekly_retention_cohorts",
    description="Weekly signup cohorts and the share of each that came back N = 0..12 weeks later "
                "(`retention_cohorts`), plus `retention_w1` and `retention_w4` in `metric_values`. Week P "
                "owns every cohort cell measured in P, so a week that has not closed writes nothing.",
    partitions_def=PARTITIONS["week"],
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[source_key("users"), source_key("user_sessions")],
    group_name="cohorts",
    kinds={"sql"},
    owners=OWNERS,
    tags={"grain": "week", "domain": "cohorts"},
    metadata={"dagster/column_schema": table_schema(retention_cohorts), "dagster/table_name": "retention_cohorts"},
    required_resource_keys={resource_key("app"), "warehouse"},
    pool=source_pool("app"),
)
@retry_transient
def weekly_retention_cohorts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    weeks = window_periods(context, "week")
    with open_source(context, "app", ["users", "user_sessions"], weeks) as conn:
        cells = cohorts.weekly_cohorts(conn, weeks)
    summary = cohorts.summary_rows(weeks, cells)
    run_id = context.run.run_id
    rc = retention_cohorts.c
    context.resources.warehouse.replace_together([
        (retention_cohorts, (rc.measured_week >= weeks[0].key) & (rc.measured_week < weeks[-1].end_key),
         [dataclasses.asdict(c) | {"retention_rate": c.retention_rate, "run_id": run_id} for c in cells]),
        metric_replacement(summary, grain="week", metrics=[m.name for m in cohorts.SUMMARY_METRICS],
                           periods=weeks, source="app", asset="weekly_retention_cohorts", run_id=run_id),
    ], lock="retention_cohorts")
    record_partition_values(context, summary, weeks)
    meta = materialization_metadata(summary, weeks) if summary else {}
    return dg.MaterializeResult(metadata={**meta, "cohort_cells": dg.MetadataValue.int(len(cells))})


@beta.asset(
    name="daily_conversion_funnel",
    description="The 8-step conversion funnel (app_open -> ... -> subscription_purchase) of each day's new "
                "actors within 14 days of their first app_open (`conversion_funnel`), plus "
                "`funnel_conversion` (last step / first step) in `metric_values`, dated by the cohort day. "
                "A cohort is provisional (is_final false) until 15 days after it, and recomputed until then.",
    partitions_def=PARTITIONS["day"],
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[source_key("events")],
    group_name="cohorts",
    kinds={"sql"},
    owners=OWNERS,
    tags={"grain": "day", "domain": "cohorts"},
    metadata={"dagster/column_schema": table_schema(conversion_funnel), "dagster/table_name": "conversion_funnel"},
    required_resource_keys={resource_key("interactions"), "warehouse"},
    pool=source_pool("interactions"),
)
@retry_transient
def daily_conversion_funnel(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    days = window_periods(context, "day")
    as_of = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with open_source(context, "interactions", ["events"], days) as conn:
        steps, summary = funnel.funnel(conn, days, as_of)
    run_id = context.run.run_id
    cf = conversion_funnel.c
    context.resources.warehouse.replace_together([
        (conversion_funnel, (cf.cohort_date >= days[0].key) & (cf.cohort_date < days[-1].end_key),
         [dataclasses.asdict(s) | {"run_id": run_id} for s in steps]),
        metric_replacement(summary, grain="day", metrics=[funnel.SUMMARY_METRIC.name], periods=days,
                           source="interactions", asset="daily_conversion_funnel", run_id=run_id),
    ], lock="conversion_funnel")
    record_partition_values(context, summary, days)
    return dg.MaterializeResult(metadata={
        **materialization_metadata(summary, days),
        "funnel_rows": dg.MetadataValue.int(len(steps)),
        "provisional_cohorts": dg.MetadataValue.int(len({s.cohort_date for s in steps if not s.is_final})),
    })


COHORT_ASSETS = {"week": [weekly_retention_cohorts], "day": [daily_conversion_funnel]}
