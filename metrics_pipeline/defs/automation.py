"""Jobs per grain, the source observation job, the schedules (one per grain, funnel refresh) and the
automation sensors that keep assets computed from other assets in step with their upstreams."""

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
from metrics_pipeline.metrics.periods import last_closed, partition_key
from metrics_pipeline.partitions import GRAIN_ADJECTIVE, GRAINS, PARTITIONS
from metrics_pipeline.settings import CRON_ENV, DEFAULT_CRONS, schedule_cron


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
    description="Observes every source table: row count and newest updated_at (the late-data watermark), "
                "and checks that each received changes recently (`source_freshness`).",
)

observe_sources_schedule = dg.ScheduleDefinition(
    name="observe_sources_schedule", job=observe_sources_job, cron_schedule="15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING, tags={"trigger": "schedule"},
    description="Hourly at :15: source row counts, watermarks and freshness.")


def build_grain_schedule(grain: str) -> dg.ScheduleDefinition:
    """Runs every asset of `grain` for the newest closed period, once per period (run key)."""
    partitions = PARTITIONS[grain]
    adjective = GRAIN_ADJECTIVE[grain]

    @dg.schedule(
        name=f"{adjective}_metrics_schedule",
        job=JOBS[grain],
        cron_schedule=schedule_cron(grain),
        execution_timezone=partitions.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Materializes the last closed {grain} of every {adjective} asset "
                    f"({CRON_ENV[grain]}, default '{DEFAULT_CRONS[grain]}', in METRICS_TIMEZONE).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        period = last_closed(grain, context.scheduled_execution_time, partitions.timezone)
        if period.start < partitions.start.replace(tzinfo=None):
            return dg.SkipReason(f"{period.key} is before METRICS_START_DATE")
        key = partition_key(period)
        return dg.RunRequest(run_key=f"{grain}:{key}", partition_key=key,
                             tags={"grain": grain, "trigger": "schedule"})

    return _schedule


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


def build_automation_sensor(grain: str) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions (defs/execution.FOLLOW_UPSTREAM) of `grain`'s assets."""
    adjective = GRAIN_ADJECTIVE[grain]
    return dg.AutomationConditionSensorDefinition(
        f"{adjective}_automation_sensor",
        target=dg.AssetSelection.assets(*assets_of(grain)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        run_tags={"grain": grain, "trigger": "automation"},
        description=f"Re-materializes {adjective} assets computed from other assets (derived ratios, summaries, "
                    "exports) after their upstream partitions change, within the late-data look-back.",
    )


AUTOMATION_SENSORS = [build_automation_sensor(g) for g in GRAINS
                      if any(a.automation_conditions_by_key for a in assets_of(g))]

SCHEDULES = [*(build_grain_schedule(g) for g in GRAINS), provisional_funnel_refresh, observe_sources_schedule]
