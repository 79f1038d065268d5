"""End to end against the production deployment, started for real in a temporary folder.

`LocalStack` (what `make prod` runs) starts a PostgreSQL 15 server (Dagster instance, warehouse and
four seeded source databases), a moto S3 server for the compute logs, and `dagster-daemon run`,
`dagster-webserver` and the metrics exporter as subprocesses on deploy/dagster.yaml and
deploy/workspace.yaml. Everything is driven through the webserver's GraphQL API (dagster-graphql
client), and checked in the instance, the warehouse and the bucket. One stack serves the whole
module, in this order:

1. a partition backfill of every asset over 30+ days at every grain (hour, day, week, month), its
   newest day's KPI also scraped from the exporter;
2. each grain's schedule evaluated at chosen times;
3. late rows inserted into a source after the late-data sensor's first tick recorded its watermarks:
   the daemon's next tick (it runs every 5 minutes) requests exactly their partitions, and those
   runs update the metrics;
4. the daemon killed (SIGKILL of its process group) in the middle of a run and restarted: run
   monitoring fails the orphaned run and a run retry leaves the warehouse as a clean run would.

Runs the test launches itself use the in-process executor (one process per run instead of one per
step: ~10 s saved per step on two busy cores); the sensor's runs use the default multiprocess one.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
    PARENT_RUN_ID_TAG,
)
from prometheus_client.parser import text_string_to_metric_families

from metrics_pipeline.contract import DATABASES
from metrics_pipeline.definitions import build_defs
from metrics_pipeline.defs.automation import assets_of
from metrics_pipeline.local_stack import LOCAL_BUCKET, LocalStack, Seed, free_port
from metrics_pipeline.metrics.periods import last_closed, partition_key, period_containing
from metrics_pipeline.partitions import GRAIN_ADJECTIVE, GRAINS
from metrics_pipeline.resources import SourceDatabase, Warehouse
from metrics_pipeline.resources.exporter import ExportResource
from metrics_pipeline.runner import partition_keys_within, run_range
from metrics_pipeline.warehouse_schema import metric_values

TODAY = dt.datetime.now(dt.timezone.utc).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
MONTH = (TODAY.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # the last closed month
FIRST = min(MONTH, YESTERDAY - dt.timedelta(days=29))  # >= 30 days, including that whole month
KEYS = {g: partition_keys_within(g, FIRST, YESTERDAY) for g in GRAINS}
LATE_DAY = TODAY.replace(day=1) - dt.timedelta(days=3)  # in MONTH, within the 35-day look-back
LATE_USERS = 4
CRASH_KEYS = KEYS["day"][:14]  # disjoint from LATE_DAY
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
REPOSITORY = {"repositoryLocationName": "metrics_pipeline", "repositoryName": "__repository__"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { status } ... on Error { message } }
}"""
SCHEDULE_DRY_RUN = """
mutation DryRun($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick { evaluationResult {
        skipReason error { message } runRequests { runKey tags { key value } } } }
    ... on Error { message }
  }
}"""
SCHEDULE_STATE = """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename ... on Schedule { executionTimezone scheduleState { status } } ... on Error { message }
  }
}"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { minIntervalSeconds sensorState { ticks(limit: 20) { status timestamp runIds cursor } } }
    ... on Error { message }
  }
}"""


def wait_for(what: str, probe, timeout: float, interval: float = 2.0):
    """Poll `probe()` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def stack():
    """The production stack on seeded sources FIRST .. YESTERDAY (partitions start at FIRST, UTC)."""
    root = Path(tempfile.mkdtemp(prefix="metrics_e2e_"))
    root.chmod(0o755)  # the PostgreSQL server's account must reach its folder
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METRICS_TIMEZONE", "UTC")
        mp.setenv("METRICS_LATE_DATA_INTERVAL_SECONDS", "30")  # the daemon's sensor ticks every 30 s, not 5 min
        for var in ("METRICS_START_DATE", "METRICS_LATE_DATA_LOOKBACK_DAYS", "METRICS_COMPUTE_LOG_S3_BUCKET"):
            mp.delenv(var, raising=False)
        made = LocalStack(root, web_port=free_port(), durable=False)
        try:
            made.start(Seed(days=(YESTERDAY - FIRST).days + 1, scale=0.1, end=YESTERDAY), log=lambda _: None,
                       timeout=240)
            for var, value in made.stack_env().items():  # the test process reads the same instance and databases
                mp.setenv(var, value)
            yield made
        finally:
            made.stop(log=lambda _: None)
            left = [part for part, up in made.status().items() if up]
            shutil.rmtree(root, ignore_errors=True)
            assert not left, f"still running after stop: {left}"


@pytest.fixture(scope="module")
def instance(stack):
    with stack.instance() as opened:
        yield opened


@pytest.fixture(scope="module")
def client(stack):
    return stack.graphql()


def query(client, document: str, **variables) -> dict:
    data = client._execute(document, variables)
    (result,) = data.values()
    assert result.get("__typename") not in ("PythonError", "UnauthorizedError") and "message" not in result, result
    return result


def run_of(instance, run_id: str) -> dg.DagsterRun:
    return instance.get_run_by_id(run_id)


def wait_finished(instance, run_ids, timeout: float) -> list[dg.DagsterRun]:
    def finished():
        runs = [run_of(instance, r) for r in run_ids]
        return runs if all(r.status.value in FINISHED for r in runs) else None

    return wait_for(f"runs {', '.join(r[:8] for r in run_ids)} to finish", finished, timeout)


def assert_succeeded(instance, runs: list[dg.DagsterRun]) -> list[dg.DagsterRun]:
    """The runs, after asserting they succeeded (else: each failed run's first error)."""
    failed = {r.run_id[:8]: r.status.value for r in runs if r.status != dg.DagsterRunStatus.SUCCESS}
    for run in runs:
        if run.run_id[:8] in failed:
            errors = [e.message for e in instance.all_logs(run.run_id)
                      if e.dagster_event and e.dagster_event.event_type_value in ("STEP_FAILURE", "PIPELINE_FAILURE")]
            failed[run.run_id[:8]] += f": {errors[:1]}"
    assert not failed, failed
    return runs


def new_users(stack, grain: str) -> dict[str, float]:
    """{period_start: value} of the `new_users` total at `grain`, from the warehouse."""
    mv = metric_values.c
    engine = sa.create_engine(stack.postgres.url("warehouse"))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(mv.period_start, mv.value).where(
            mv.metric == "new_users", mv.grain == grain, mv.dimension == "")).all()
    engine.dispose()
    return dict(rows)


def day_rows(url: str, keys: list[str]) -> dict[tuple, tuple]:
    """Daily metric_values rows of the days `keys`: {(metric, day, dimension, dimension value): (value,
    numerator, denominator, run_id)}."""
    mv = metric_values.c
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(mv.metric, mv.period_start, mv.dimension, mv.dimension_value, mv.value,
                                      mv.numerator, mv.denominator, mv.run_id)
                            .where(mv.grain == "day", mv.period_start.in_(keys))).all()
    engine.dispose()
    return {tuple(r[:4]): (*(None if v is None else round(v, 9) for v in r[4:7]), r[7]) for r in rows}


def source_counts(stack, width: int) -> dict[str, int]:
    """Users created per day (width 10) or hour (13) in the app source, keyed like period_start."""
    with psycopg2.connect(host="127.0.0.1", port=stack.postgres.port, user="postgres", dbname="app") as conn, \
            conn.cursor() as cur:
        cur.execute(f"SELECT substr(CAST(created_at AS TEXT), 1, {width}), count(*) FROM users GROUP BY 1")
        counts = dict(cur.fetchall())
    return {(k + ":00:00" if width == 13 else k): n for k, n in counts.items()}


# ---- 1. backfill ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def backfill(stack, client, instance) -> tuple[str, list[dg.DagsterRun]]:
    """Every asset of every grain over FIRST .. YESTERDAY, launched like the UI's "Launch backfill"."""
    params = {
        "partitionsByAssets": [{"assetKey": {"path": key.path},
                                "partitions": {"range": {"start": KEYS[g][0], "end": KEYS[g][-1]}}}
                               for g in GRAINS for a in assets_of(g) for key in a.keys],
        "tags": [{"key": "trigger", "value": "backfill"}],
        "title": f"e2e {FIRST}..{YESTERDAY}",
        "runConfigData": IN_PROCESS,
    }
    backfill_id = query(client, LAUNCH_BACKFILL, params=params)["backfillId"]

    def done():
        status = query(client, BACKFILL_STATUS, id=backfill_id)["status"]
        return status if status not in ("REQUESTED", "CANCELING", "FAILING") else None

    status = wait_for(f"backfill {backfill_id}", done, timeout=420, interval=5)
    runs = assert_succeeded(instance, instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})))
    assert status == "COMPLETED_SUCCESS", status
    return backfill_id, runs


def test_backfill_through_graphql_materializes_every_grain(stack, instance, backfill):
    backfill_id, runs = backfill
    # one run per grain's range (single-run backfill policy), plus the export once the KPI days exist
    assert all(r.tags["trigger"] == "backfill" and r.tags[BACKFILL_ID_TAG] == backfill_id for r in runs)
    assert {(r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG]) for r in runs} == {
        (KEYS[g][0], KEYS[g][-1]) for g in GRAINS}
    assert len(runs) <= len(GRAINS) + 1, [r.tags[ASSET_PARTITION_RANGE_START_TAG] for r in runs]
    for grain in GRAINS:  # (today's partitions may come from the schedules meanwhile)
        for asset in assets_of(grain):
            for key in asset.keys:
                done = {k for k in instance.get_materialized_partitions(key) if k < str(TODAY)}
                assert done == set(KEYS[grain]), key.to_user_string()

    # the warehouse: every period of every grain, new_users exactly the users created in it
    days, hours = source_counts(stack, 10), source_counts(stack, 13)
    assert len(KEYS["day"]) >= 30 and len(KEYS["hour"]) == 24 * len(KEYS["day"]) and KEYS["month"]
    expected = {
        "hour": {f"{k[:10]} {k[11:]}:00": hours.get(f"{k[:10]} {k[11:]}:00", 0) for k in KEYS["hour"]},
        "day": {k: days.get(k, 0) for k in KEYS["day"]},
    }
    for grain in ("week", "month"):
        expected[grain] = {}
        for k in KEYS[grain]:
            start = dt.date.fromisoformat(k)
            end = start + dt.timedelta(days=7) if grain == "week" else (start + dt.timedelta(days=32)).replace(day=1)
            expected[grain][k] = sum(n for d, n in days.items() if start.isoformat() <= d < end.isoformat())
    for grain in GRAINS:
        stored = new_users(stack, grain)
        assert {k: stored.get(k) for k in expected[grain]} == expected[grain], grain
    assert sum(expected["day"].values()) > 100  # the comparison is not vacuous

    # the metrics exporter the stack runs: both reads work, the newest day's new_users is the warehouse's
    with urllib.request.urlopen(stack.exporter_url, timeout=30) as response:
        scraped = {f.name: {tuple(v for _, v in sorted(s.labels.items())): s.value for s in f.samples}
                   for f in text_string_to_metric_families(response.read().decode())}
    assert scraped["metrics_pipeline_exporter_up"] == {("instance",): 1, ("warehouse",): 1}
    assert scraped["metrics_pipeline_kpi_value"][("day", "new_users")] == expected["day"][KEYS["day"][-1]]

    # every run's compute logs (stdout/stderr) are in the bucket
    s3 = stack.moto.client()
    for run in runs:
        objects = s3.list_objects_v2(Bucket=LOCAL_BUCKET, Prefix=f"dagster/compute-logs/storage/{run.run_id}/")
        logs = [o for o in objects.get("Contents", []) if o["Key"].endswith(".err")]
        assert logs and all(o["Size"] > 0 for o in logs), (run.run_id, objects.get("Contents"))


# ---- 2. schedules ----------------------------------------------------------------------------------

def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


SCHEDULE_TICKS = {  # grain: (a tick of its schedule, UTC; the partition that tick must request)
    "hour": (dt.datetime.combine(YESTERDAY, dt.time(13, 5)), f"{YESTERDAY}-12:00"),
    "day": (dt.datetime.combine(YESTERDAY, dt.time(1)), str(YESTERDAY - dt.timedelta(days=1))),
    "week": (dt.datetime.combine(_monday(YESTERDAY), dt.time(2)), str(_monday(YESTERDAY) - dt.timedelta(days=7))),
    "month": (dt.datetime.combine(TODAY.replace(day=1), dt.time(4)), str(MONTH)),
}


@pytest.mark.parametrize("grain", SCHEDULE_TICKS)
def test_each_schedule_requests_its_last_closed_period(client, grain):
    tick, key = SCHEDULE_TICKS[grain]
    selector = {**REPOSITORY, "scheduleName": f"{GRAIN_ADJECTIVE[grain]}_metrics_schedule"}
    schedule = query(client, SCHEDULE_STATE, selector=selector)
    assert schedule["scheduleState"]["status"] == "RUNNING" and schedule["executionTimezone"] == "UTC"
    result = query(client, SCHEDULE_DRY_RUN, selector=selector,
                   timestamp=tick.replace(tzinfo=dt.timezone.utc).timestamp())["evaluationResult"]
    assert result["error"] is None and result["skipReason"] is None
    (request,) = result["runRequests"]
    tags = {t["key"]: t["value"] for t in request["tags"]}
    assert request["runKey"] == f"{grain}:{key}"
    assert (tags["dagster/partition"], tags["grain"], tags["trigger"]) == (key, grain, "schedule")


# ---- 3. late data ---------------------------------------------------------------------------------

def sensor(client, name: str) -> dict:
    """The sensor's minimum interval and latest ticks (newest first)."""
    return query(client, SENSOR_TICKS, selector={**REPOSITORY, "sensorName": name})


def late_partitions() -> set[tuple[str, str]]:
    """(grain, key) of the closed day, week and month containing LATE_DAY."""
    now = dt.datetime.now(dt.timezone.utc)
    found = set()
    for grain in ("day", "week", "month"):
        period = period_containing(grain, dt.datetime.combine(LATE_DAY, dt.time()), "UTC")
        if period.start <= last_closed(grain, now, "UTC").start:
            found.add((grain, partition_key(period)))
    return found


def test_late_rows_trigger_exactly_their_partitions_and_update_the_metrics(stack, client, instance, backfill):
    def ticks():
        return sensor(client, "late_data_sensor")["sensorState"]["ticks"]

    first = wait_for("the late-data sensor's first tick", ticks, 120)[-1]
    assert first["status"] == "SKIPPED" and not first["runIds"] and "users" in first["cursor"]  # watermarks
    before = {(g, k): new_users(stack, g)[k] for g, k in late_partitions()}
    inserted_at = time.time()
    with psycopg2.connect(host="127.0.0.1", port=stack.postgres.port, user="postgres", dbname="app") as conn, \
            conn.cursor() as cur:  # sign-ups of LATE_DAY that reach the source only now
        cur.executemany(
            "INSERT INTO users (id, email, created_at, country, platform, acquisition_channel, deleted_at, updated_at)"
            " VALUES (%s, %s, %s, 'US', 'ios', 'organic', NULL, %s)",
            [(f"late-{i}", f"late{i}@example.com", dt.datetime.combine(LATE_DAY, dt.time(10, i)),
              dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)) for i in range(LATE_USERS)])

    def requested():  # the daemon ticks the sensor on its own, every minIntervalSeconds
        return next((t for t in ticks() if t["timestamp"] > inserted_at and t["status"] != "STARTED"), None)

    interval = sensor(client, "late_data_sensor")["minIntervalSeconds"]
    tick = wait_for("the late-data sensor's next tick", requested, interval + 60, interval=5)
    assert tick["status"] == "SUCCESS", tick
    runs = [run_of(instance, r) for r in tick["runIds"]]
    assert {(r.tags["grain"], r.tags["dagster/partition"]) for r in runs} == late_partitions()
    assert all(r.tags["trigger"] == "late_data" and r.tags["late_tables"] == "users" for r in runs)
    daily = next(r for r in runs if r.tags["grain"] == "day")
    assert dg.AssetKey("daily_activity_metrics") in daily.asset_selection
    assert not {dg.AssetKey("daily_messaging_metrics"), dg.AssetKey("daily_marketing_metrics")} & daily.asset_selection

    assert_succeeded(instance, wait_finished(instance, tick["runIds"], 300))
    after = {(g, k): new_users(stack, g)[k] for g, k in late_partitions()}
    assert after == {p: v + LATE_USERS for p, v in before.items()}


# ---- 4. a crash in the middle of a run -------------------------------------------------------------

def test_daemon_killed_mid_run_is_failed_by_monitoring_and_retried_correctly(stack, client, instance, tmp_path):
    in_progress = dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                                          dg.DagsterRunStatus.STARTED])
    wait_for("earlier runs to finish", lambda: not instance.get_runs(in_progress), 300)  # the crash hits one run
    run_id = client.submit_job_execution("daily_metrics_job", run_config=IN_PROCESS, tags={
        ASSET_PARTITION_RANGE_START_TAG: CRASH_KEYS[0], ASSET_PARTITION_RANGE_END_TAG: CRASH_KEYS[-1],
        "trigger": "e2e", "dagster/max_runtime": "60"})  # a dead worker is failed after 60 s (6 h by default)

    def materializing():
        run = run_of(instance, run_id)
        assert run.status.value not in FINISHED, f"the run ended before the crash: {run.status}"
        return run.status == dg.DagsterRunStatus.STARTED and instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1).records

    wait_for("the run to write its first partitions", materializing, 180, interval=0.5)
    stack.daemon.kill()  # the daemon, its code server and the run worker, at once
    assert run_of(instance, run_id).status == dg.DagsterRunStatus.STARTED  # nobody left to report the crash
    stack.start_daemon()
    stack.wait_ready(180)

    failed = wait_finished(instance, [run_id], 240)[0]
    assert failed.status == dg.DagsterRunStatus.FAILURE
    messages = [e.message for e in instance.all_logs(run_id)]
    assert any("maximum runtime" in m for m in messages), messages[-5:]

    def retried():
        return instance.get_runs(dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run_id}))

    (retry,) = wait_for("the automatic retry", retried, 120)
    (retry,) = assert_succeeded(instance, wait_finished(instance, [retry.run_id], 300))
    assert (retry.tags["dagster/retry_number"], retry.tags[ASSET_PARTITION_RANGE_START_TAG]) == ("1", CRASH_KEYS[0])

    # the warehouse equals a clean computation of the same days: no duplicate, no half-written partition,
    # every row written since the crashed run began (by its steps done before the crash, by its retry, or
    # by the automation sensor following the upstreams the crashed run updated)
    clean_url = stack.postgres.create_database("clean")
    resources = {**{f"{db}_db": SourceDatabase(name=db, url=stack.postgres.url(db)) for db in DATABASES},
                 "warehouse": Warehouse(url=clean_url), "exporter": ExportResource(uri=str(tmp_path))}
    assert run_range(build_defs(resources), "day", CRASH_KEYS, dg.DagsterInstance.ephemeral()).success
    stored, clean = day_rows(stack.postgres.url("warehouse"), CRASH_KEYS), day_rows(clean_url, CRASH_KEYS)
    assert len(clean) > 500 and {k: v[:3] for k, v in stored.items()} == {k: v[:3] for k, v in clean.items()}
    writers = {w: instance.get_run_record_by_id(w) for w in {v[3] for v in stored.values()}}
    started = instance.get_run_record_by_id(run_id).create_timestamp
    assert retry.run_id in writers, writers
    assert all(r.create_timestamp >= started for r in writers.values()), {
        w: (r.dagster_run.job_name, r.dagster_run.tags.get("trigger"), r.create_timestamp) for w, r in writers.items()}
