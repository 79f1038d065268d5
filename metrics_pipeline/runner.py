"""Run a grain's job over a range of partitions as ONE Dagster run (single-run backfill)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from metrics_pipeline.defs.automation import job_name
from metrics_pipeline.defs.source_scans import background_source_scans
from metrics_pipeline.partitions import GRAINS, PARTITIONS


@dataclass(frozen=True)
class RangeRun:
    grain: str
    first: str
    last: str
    count: int
    success: bool
    run_id: str
    failed_checks: list[str]  # blocking checks that failed (a non-blocking one only raises alerts)
    errors: list[str]


def partition_keys_within(grain: str, start: dt.date, end: dt.date) -> list[str]:
    """Keys of the partitions of `grain` whose whole period lies in the dates [start, end] (inclusive)
    and that exist: closed periods since METRICS_START_DATE."""
    partitions = PARTITIONS[grain]
    tz = zoneinfo.ZoneInfo(partitions.timezone)
    last = partitions.get_last_partition_window()
    if last is None:
        return []
    lo = max(dt.datetime.combine(start, dt.time(), tzinfo=tz), partitions.start)
    hi = min(dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=tz), last.end)
    if lo >= hi:
        return []
    keys = partitions.get_partition_keys_in_time_window(dg.TimeWindow(lo, hi))
    return [k for k in keys if partitions.time_window_for_partition_key(k).end <= hi]


def run_range(
    defs: dg.Definitions, grain: str, keys: list[str], instance: dg.DagsterInstance, tags: dict | None = None,
    run_config: dict | None = None, assets: Sequence[dg.AssetKey] | None = None,
) -> RangeRun:
    """Materialize every asset of `grain` (or only `assets` of it, with their checks) for `keys`
    (consecutive) in one run recorded in `instance`."""
    if grain not in GRAINS:
        raise ValueError(f"unknown grain {grain!r}; expected one of {', '.join(GRAINS)}")
    job = defs.resolve_job_def(job_name(grain))
    with background_source_scans():  # the daily checks' source scans overlap the assets' queries
        result = job.execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1],
                  "grain": grain, **(tags or {})},
            run_config=run_config,
            asset_selection=assets,
            raise_on_error=False,
        )
    failed = sorted({f"{e.asset_key.to_user_string()}:{e.asset_check_key.name}"
                     for e in result.get_asset_check_evaluations() if not e.passed and e.blocking})
    errors = [f"{e.step_key}: {_root_message(e.step_failure_data.error)}"
              for e in result.all_events if e.is_step_failure and e.step_failure_data.error]
    return RangeRun(grain, keys[0], keys[-1], len(keys), result.success and not failed, result.run_id, failed,
                    errors)


def _root_message(error) -> str:
    """The innermost cause of a Dagster step error: the message our code raised."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
