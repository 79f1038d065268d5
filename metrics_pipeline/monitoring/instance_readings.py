"""What the Dagster instance says to monitoring: per metric asset, how far its partitions have got
and whether its latest materialization and checks passed; per job, its last finished run; per
source table, its latest observation (rows, newest `updated_at`). Read-only, through the instance's
public API; partitions as `metrics-pipeline status` counts them (`operations.status`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from metrics_pipeline import operations
from metrics_pipeline.defs.automation import JOBS, assets_of, funnel_refresh_job, observe_sources_job
from metrics_pipeline.defs.checks import ASSET_CHECKS
from metrics_pipeline.defs.sources import SOURCE_ASSETS
from metrics_pipeline.partitions import GRAINS, PARTITIONS

JOB_NAMES = (*(job.name for job in JOBS.values()), observe_sources_job.name, funnel_refresh_job.name)
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dataclass(frozen=True)
class AssetHealth:
    asset: str
    grain: str
    newest_partition_end: float | None  # Unix time the newest materialized partition's period ended
    missing_partitions: int  # closed partitions since METRICS_START_DATE never materialized
    fail_window: float | None  # seconds: the freshness policy's fail window, if the asset has one
    last_materialization_ok: bool | None  # False when its latest attempt failed; None if never tried
    checks: dict[str, bool]  # check name -> whether its latest evaluation passed


@dataclass(frozen=True)
class JobRun:
    job: str
    status: str  # success, failure or canceled
    start: float
    duration: float


@dataclass(frozen=True)
class SourceObservation:
    database: str
    table: str
    rows: int
    newest_update: float | None  # Unix time of the newest `updated_at`; None for an empty table
    observed_at: float


@dataclass(frozen=True)
class InstanceReading:
    assets: list[AssetHealth]
    jobs: list[JobRun]
    sources: list[SourceObservation]


def read_instance(instance: dg.DagsterInstance, now: dt.datetime | None = None) -> InstanceReading:
    """Everything monitoring reads from the instance; raises when it cannot be read."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return InstanceReading(asset_health(instance, now), last_runs(instance), source_observations(instance))


def _fail_windows() -> dict[str, float]:
    windows = {}
    for grain in GRAINS:
        for asset in assets_of(grain):
            for spec in asset.specs:
                fail_window = getattr(spec.freshness_policy, "fail_window", None)  # time-window policies only
                if fail_window is not None:
                    windows[spec.key.to_user_string()] = fail_window.to_timedelta().total_seconds()
    return windows


def _checks_by_asset() -> dict[str, list[dg.AssetCheckKey]]:
    found: dict[str, list[dg.AssetCheckKey]] = {}
    for checks in ASSET_CHECKS:
        for key in checks.check_keys:
            found.setdefault(key.asset_key.to_user_string(), []).append(key)
    return found


def asset_health(instance: dg.DagsterInstance, now: dt.datetime) -> list[AssetHealth]:
    """Per metric asset: newest partition's end, missing partitions, latest materialization and checks."""
    progress = operations.status(instance, [], now)
    keys = [dg.AssetKey.from_user_string(row["asset"]) for row in progress]
    materialized = latest_attempts(instance, keys)
    checks = _checks_by_asset()
    latest_checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key for found in checks.values() for key in found])
    windows = _fail_windows()
    health = []
    for row, key in zip(progress, keys, strict=True):
        newest = row["newest"]
        end = PARTITIONS[row["grain"]].time_window_for_partition_key(newest).end.timestamp() if newest else None
        health.append(AssetHealth(
            row["asset"], row["grain"], end, row["missing"], windows.get(row["asset"]),
            materialized.get(key),
            _checks_passed(checks.get(row["asset"], []), latest_checks)))
    return health


def _checks_passed(checks: list[dg.AssetCheckKey], latest: dict) -> dict[str, bool]:
    """Check name -> whether its latest evaluation passed (a range run's is its overall result,
    recorded after the per-partition ones). Checks not evaluated yet, or still running, are left out."""
    passed = {}
    for check in checks:
        record = latest.get(check)
        evaluation = record.event.asset_check_evaluation if record is not None and record.event else None
        if evaluation is not None:
            passed[check.name] = evaluation.passed
    return passed


def latest_attempts(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, bool]:
    """Per asset, whether its latest materialization attempt succeeded: the latest run that planned it
    materialized it, or did not fail. A run in progress leaves the previous verdict; never tried: absent."""
    entries = [record.asset_entry for record in instance.get_asset_records(keys)]
    undone = [e.last_run_id for e in entries if e.last_run_id is not None and not _materialized_in_last_run(e)]
    failed = {run.run_id for run in instance.get_runs(dg.RunsFilter(run_ids=undone))
              if run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)} if undone else set()
    verdicts = {}
    for entry in entries:
        if entry.last_run_id in failed:
            verdicts[entry.asset_key] = False
        elif entry.last_materialization_record is not None:
            verdicts[entry.asset_key] = True
    return verdicts


def _materialized_in_last_run(entry) -> bool:
    done = entry.last_materialization_record
    return done is not None and done.event_log_entry.run_id == entry.last_run_id


def last_runs(instance: dg.DagsterInstance) -> list[JobRun]:
    """The last finished run of each job of the code location (schedules, CLI backfills and the UI alike)."""
    runs = []
    for job in JOB_NAMES:
        for record in instance.get_run_records(dg.RunsFilter(job_name=job, statuses=FINISHED), limit=1):
            if record.start_time is not None:
                end = record.end_time or record.start_time
                runs.append(JobRun(job, record.dagster_run.status.value.lower(), record.start_time,
                                   end - record.start_time))
    return runs


def source_observations(instance: dg.DagsterInstance) -> list[SourceObservation]:
    """The latest observation of each source table by `observe_sources_job`."""
    seen = []
    for spec in SOURCE_ASSETS:
        records = instance.fetch_observations(spec.key, limit=1).records
        if not records:
            continue
        entry = records[0].event_log_entry
        metadata = entry.asset_observation.metadata
        newest = metadata["newest_updated_at"].value
        seen.append(SourceObservation(
            spec.key.path[0], spec.key.path[1], int(metadata["row_count"].value),
            None if newest == "none" else dt.datetime.fromisoformat(newest).replace(tzinfo=dt.timezone.utc).timestamp(),
            entry.timestamp))
    return seen
