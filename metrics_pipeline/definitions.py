"""The code location: every asset, check, job, schedule and resource of metrics_pipeline."""

from __future__ import annotations

import dagster as dg

from metrics_pipeline.defs.alert_sensors import ALERT_SENSORS
from metrics_pipeline.defs.automation import AUTOMATION_SENSORS, JOBS, SCHEDULES, assets_of, funnel_refresh_job, observe_sources_job
from metrics_pipeline.defs.checks import ASSET_CHECKS
from metrics_pipeline.defs.late_data import late_data_sensor
from metrics_pipeline.defs.resources import build_resources
from metrics_pipeline.defs.sources import FRESHNESS_CHECKS, SOURCE_OBSERVERS
from metrics_pipeline.instance_storage import enable_event_batches
from metrics_pipeline.partitions import GRAINS

# Range runs hand their per-partition events to the instance storage in batches, whichever storage:
# the process that runs the steps (a run worker, the CLI) loads these definitions first.
enable_event_batches()


def build_defs(resources: dict | None = None) -> dg.Definitions:
    """The Definitions, with resources from the environment unless given (tests pass their own)."""
    return dg.Definitions(
        assets=[*SOURCE_OBSERVERS, *(a for grain in GRAINS for a in assets_of(grain))],
        asset_checks=[*ASSET_CHECKS, *FRESHNESS_CHECKS],
        jobs=[*JOBS.values(), observe_sources_job, funnel_refresh_job],
        schedules=SCHEDULES,
        sensors=[*ALERT_SENSORS, late_data_sensor, *AUTOMATION_SENSORS],
        resources=resources if resources is not None else build_resources(),
    )


defs = build_defs()
