"""Jobs per grain, the source observation job, and the schedules (nightly metrics, funnel refresh)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from metrics_pipeline.defs.cohort_assets import COHORT_ASSETS
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.export_assets import EXPORT_ASSETS
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.defs.sources import SOURCE_OBSERVERS
from metrics_pipeline.defs.summary_assets import SUMMARY_ASSETS
from metrics_pipeline.metrics.funnel import FINAL_AFTER_DAYS
from metrics_pipeline.partitions import GRAIN_ADJECTIVE, GRAINS, PARTITIONS


def job_name(grain: str) -> str:
    return f"{GRAIN_ADJECTIVE[grain]}_metrics_job"


def assets_of(grain: str) -> list[dg.AssetsDefinition]:
    """Every asset partitioned by `grain`, in dependency order for readers (Dagster orders runs itself)."""
    own = [a for (_, g), a in METRIC_ASSETS.items() if g == grain]
    derived = [DERIVED_ASSETS[grain]] if grain in DERIVED_ASSETS else []
    exports = EXPORT_ASSETS if grain == "month" else []
    return own + derived + COHORT_ASSETS.get(grain, []) + SUMMARY_ASSETS.get(grain, []) + exports


JOBS = {
    grain: dg.define_asset_job(
        job_name(grain),
        selection=dg.AssetSelection.assets(*assets_of(grain)),
        description=f"Every {GRAIN_ADJECTIVE[grain]} metric asset and its checks, for one or a range of partitions.",
        tags={"grain": grain},
    )
    for grain in GRAINS
}

observe_sources_job = dg.define_asset_job(
    "observe_sources_job",
    selection=dg.AssetSelection.assets(*(key for o in SOURCE_OBSERVERS for key in o.keys)),
    description="Observes every source table: row count and newest updated_at (the late-data watermark).",
)

nightly_schedule = dg.build_schedule_from_partitioned_job(
    JOBS["day"],
    name="nightly_daily_metrics",
    description="At 01:00 in METRICS_TIMEZONE, materializes yesterday's daily partition of every daily asset.",
    hour_of_day=1,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={"trigger": "schedule"},
)

funnel_refresh_job = dg.define_asset_job(
    "funnel_refresh_job",
    selection=dg.AssetSelection.assets(*COHORT_ASSETS["day"]),
    description="Recomputes the conversion funnel of the cohorts still inside their 14-day window.",
    tags={"grain": "day"},
)


def provisional_funnel_range(scheduled: dt.datetime) -> tuple[str, str] | None:
    """First and last daily partition whose funnel cohort is still provisional at `scheduled`."""
    daily = PARTITIONS["day"]
    last = scheduled.astimezone(zoneinfo.ZoneInfo(daily.timezone)).date() - dt.timedelta(days=1)  # yesterday
    first = max(last - dt.timedelta(days=FINAL_AFTER_DAYS - 1), daily.start.date())
    return (first.isoformat(), last.isoformat()) if first <= last else None


@dg.schedule(
    job=funnel_refresh_job,
    cron_schedule="30 1 * * *",
    execution_timezone=PARTITIONS["day"].timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 01:30, recomputes in one run the last 15 days of funnel cohorts, which are provisional "
                "until 15 days after their day (the funnel's 14-day window has to close first).",
)
def provisional_funnel_refresh(context: dg.ScheduleEvaluationContext):
    span = provisional_funnel_range(context.scheduled_execution_time)
    if span is None:
        return dg.SkipReason("no closed daily partition yet")
    first, last = span
    return dg.RunRequest(run_key=f"funnel:{first}..{last}", tags={
        ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last,
        "grain": "day", "trigger": "schedule"})


SCHEDULES = [nightly_schedule, provisional_funnel_refresh]
