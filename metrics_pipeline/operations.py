"""What the Dagster instance knows about the metric assets: newest and missing partitions, failed
runs to redo, and how long a backfill will take (from the job's previous runs).

Backs `metrics-pipeline status` and `metrics-pipeline backfill --missing-only / --from-failed`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from metrics_pipeline.defs.automation import assets_of, job_name
from metrics_pipeline.partitions import GRAINS, PARTITIONS

RECENT_RUNS = 200


def _materialized(instance: dg.DagsterInstance, grain: str) -> dict[dg.AssetKey, set[str]]:
    keys = [k for a in assets_of(grain) for k in a.keys]
    return {k: set(instance.get_materialized_partitions(k)) for k in keys}


def status(instance: dg.DagsterInstance, alerts: list[dict], now: dt.datetime | None = None) -> list[dict]:
    """Per asset: grain, newest materialized partition, closed partitions missing, open alerts by check."""
    now = now or dt.datetime.now(dt.timezone.utc)
    open_by_asset: dict[str, dict[str, int]] = {}
    for a in alerts:
        checks = open_by_asset.setdefault(a["asset"], {})
        checks[a["check_name"]] = checks.get(a["check_name"], 0) + 1
    rows = []
    for grain in GRAINS:
        expected = PARTITIONS[grain].get_partition_keys(current_time=now)
        order = {k: i for i, k in enumerate(expected)}
        for key, done in _materialized(instance, grain).items():
            present = [k for k in expected if k in done]
            missing = [k for k in expected if k not in done]
            rows.append({"asset": key.to_user_string(), "grain": grain, "newest": present[-1] if present else None,
                         "materialized": len(present), "expected": len(expected), "missing": len(missing),
                         "missing_spans": [f"{s[0]}..{s[-1]}" if len(s) > 1 else s[0]
                                           for s in spans(grain, missing, order)],
                         "open_alerts": open_by_asset.get(key.to_user_string(), {})})
    return rows


def spans(grain: str, keys: Iterable[str], order: dict[str, int] | None = None) -> list[list[str]]:
    """`keys` split into runs of consecutive partitions (a range run needs consecutive keys); `order`
    (key -> position among the grain's partitions) saves listing them again."""
    if order is None:
        order = {k: i for i, k in enumerate(PARTITIONS[grain].get_partition_keys())}
    out: list[list[str]] = []
    for key in sorted(keys, key=order.__getitem__):
        if out and order[key] == order[out[-1][-1]] + 1:
            out[-1].append(key)
        else:
            out.append([key])
    return out


def missing_keys(instance: dg.DagsterInstance, grain: str, keys: list[str]) -> list[str]:
    """Those of `keys` that some asset of `grain` has never materialized."""
    done = _materialized(instance, grain).values()
    return [k for k in keys if any(k not in d for d in done)]


def _run_keys(grain: str, run: dg.DagsterRun) -> list[str]:
    tags = run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if not first or not last:
        return []
    return PARTITIONS[grain].get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def failed_keys(instance: dg.DagsterInstance, grain: str, keys: list[str]) -> list[str]:
    """Those of `keys` whose latest run of the grain's job failed (no later run succeeded for them)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=job_name(grain)), limit=RECENT_RUNS)  # newest first
    settled: set[str] = set()
    failed: set[str] = set()
    for run in runs:
        if not run.is_finished:
            continue
        covered = set(_run_keys(grain, run)) - settled
        if run.status == dg.DagsterRunStatus.FAILURE:
            failed |= covered
        settled |= covered
    return [k for k in keys if k in failed]


def seconds_per_partition(instance: dg.DagsterInstance, grain: str) -> float | None:
    """From the latest successful run of the grain's job: its duration over its partitions."""
    for run in instance.get_runs(dg.RunsFilter(job_name=job_name(grain),
                                               statuses=[dg.DagsterRunStatus.SUCCESS]), limit=5):
        stats = instance.get_run_stats(run.run_id)
        count = len(_run_keys(grain, run))
        if count and stats.start_time and stats.end_time:
            return (stats.end_time - stats.start_time) / count
    return None
