"""Jobs per grain and the nightly schedule."""

from __future__ import annotations

import dagster as dg

from metrics_pipeline.defs.cohort_assets import COHORT_ASSETS
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.export_assets import EXPORT_ASSETS
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.defs.sources import SOURCE_OBSERVERS
from metrics_pipeline.defs.summary_assets import SUMMARY_ASSETS
from metrics_pipeline.partitions import GRAIN_ADJECTIVE, GRAINS


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

SCHEDULES = [nightly_schedule]
