"""The production instance config on a real PostgreSQL server, and the command line."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest

from metrics_pipeline import cli
from metrics_pipeline.runner import partition_keys_within, run_range
from metrics_pipeline_tests.s3_server import MotoS3Server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def s3():
    server = MotoS3Server().start()
    yield server
    server.stop()


def test_materialization_recorded_on_dagster_postgres_instance(sources, postgres_url_factory, s3, tmp_path,
                                                               monkeypatch):
    """deploy/dagster.yaml as shipped: runs and events stored by dagster-postgres, compute logs in S3,
    the run queue, pools, run monitoring and retries configured."""
    url = urlparse(postgres_url_factory("dagster").replace("postgresql+psycopg2", "postgresql"))
    bucket = s3.create_bucket()
    for var, value in {"DAGSTER_PG_HOST": url.hostname, "DAGSTER_PG_PORT": str(url.port),
                       "DAGSTER_PG_USER": url.username, "DAGSTER_PG_PASSWORD": "",
                       "DAGSTER_PG_DB": url.path.lstrip("/"), "METRICS_COMPUTE_LOG_S3_BUCKET": bucket,
                       "METRICS_COMPUTE_LOG_S3_PREFIX": "logs", "AWS_ENDPOINT_URL_S3": s3.endpoint_url}.items():
        monkeypatch.setenv(var, value)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    sources.insert("users", {"created_at": "2026-02-02 08:00:00"})
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        queue = instance.get_concurrency_config()
        assert queue.pool_config.default_pool_limit == 2 and queue.run_queue_config.max_concurrent_runs == 4
        assert instance.run_monitoring_enabled and instance.run_retries_enabled and instance.run_retries_max_retries
        run = run_range(sources.defs(), "day", ["2026-02-01", "2026-02-02", "2026-02-03"], instance)
        assert run.success
        stored = instance.get_run_by_id(run.run_id)
        assert stored.is_success and stored.tags["dagster/asset_partition_range_start"] == "2026-02-01"
        records = instance.fetch_materializations(dg.AssetKey("daily_activity_metrics"), limit=10).records
        assert sorted(r.partition_key for r in records) == ["2026-02-01", "2026-02-02", "2026-02-03"]
    logs = s3.client().list_objects_v2(Bucket=bucket, Prefix=f"logs/storage/{run.run_id}/").get("Contents", [])
    assert any(o["Key"].endswith(".err") and o["Size"] for o in logs), logs


def test_backfill_ranges_cover_whole_periods_only():
    start, end = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
    days = partition_keys_within("day", start, end)
    assert (len(days), days[0], days[-1]) == (90, "2026-01-01", "2026-03-31")
    weeks = partition_keys_within("week", start, end)  # Mondays whose whole week is inside
    assert (weeks[0], weeks[-1], len(weeks)) == ("2026-01-05", "2026-03-23", 12)
    assert partition_keys_within("month", start, end) == ["2026-01-01", "2026-02-01", "2026-03-01"]
    hours = partition_keys_within("hour", start, end)
    assert (len(hours), hours[0], hours[-1]) == (90 * 24, "2026-01-01-00:00", "2026-03-31-23:00")
    assert partition_keys_within("month", dt.date(2026, 1, 2), dt.date(2026, 1, 31)) == []


@pytest.mark.parametrize("argv, message", [
    (["backfill", "--start", "2026-01-01", "--end", "2026-13-01"], "is not a date"),
    (["backfill", "--start", "2026-01-01", "--end", "2026-01-02", "--grain", "day,year"], "unknown grain(s) 'year'"),
    (["query", "--metric", "mrr", "--grain", "quarter"], "invalid choice"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_backfill_end_before_start(capsys):
    assert cli.main(["backfill", "--start", "2026-02-01", "--end", "2026-01-01"]) == 2
    assert "--end 2026-01-01 is before --start 2026-02-01" in capsys.readouterr().err


def test_cli_unknown_metric(capsys):
    assert cli.main(["query", "--metric", "nope"]) == 2
    assert "unknown metric 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("sources", ["postgres"], indirect=True)
def test_cli_backfill_runs_grains_side_by_side_and_writes_what_one_at_a_time_writes(sources, postgres_url_factory,
                                                                                   tmp_path):
    """On PostgreSQL `backfill` runs grains at the same time (--jobs, default 2 there): hour, day, week
    and the month's metrics overlap in processes of their own, the monthly export starts when they are
    all done (it reads their rows), and the warehouse and the export end up exactly as with a
    one-grain-at-a-time backfill."""
    import os
    import subprocess
    import sys

    import yaml

    from metrics_pipeline.resources import Warehouse

    days = [f"2026-02-{d:02d}" for d in range(1, 29)]
    sources.insert("users", *({"created_at": f"{d} 0{i}:00:00", "platform": "ios"} for d in days for i in range(3)))
    sources.insert("user_sessions", *({"user_id": f"s{d}", "started_at": f"{d} 10:00:00",
                                       "ended_at": f"{d} 10:05:00"} for d in days))
    written, exported = {}, {}
    for jobs in ("default", "1"):
        home = tmp_path / f"dagster_{jobs}"
        home.mkdir()
        storage = {"custom": {"module": "metrics_pipeline.instance_storage", "class": "BatchedPostgresStorage",
                              "config": {"postgres_url": postgres_url_factory(f"dagster_{jobs}").replace(
                                  "postgresql+psycopg2", "postgresql")}}}
        (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}}))
        warehouse = postgres_url_factory(f"warehouse_{jobs}")
        env = {**os.environ, **{f"METRICS_{db.upper()}_DB_URL": url for db, url in sources.urls.items()},
               "METRICS_WAREHOUSE_URL": warehouse, "METRICS_EXPORT_URI": str(tmp_path / f"exports_{jobs}"),
               "METRICS_START_DATE": "2026-01-01", "METRICS_TIMEZONE": "UTC", "DAGSTER_HOME": str(home)}
        argv = ["backfill", "--start", days[0], "--end", days[-1]] + ([] if jobs == "default" else ["--jobs", jobs])
        done = subprocess.run([str(Path(sys.executable).parent / "metrics-pipeline"), *argv], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = {"export" if r.dagster_run.asset_selection == {dg.AssetKey("monthly_export")}
                    else r.dagster_run.tags["grain"]: r for r in instance.get_run_records()
                    if r.dagster_run.tags.get("trigger") == "cli_backfill"}
        written[jobs] = {(r["metric"], r["grain"], r["period_start"], r["dimension"], r["dimension_value"]):
                         r["value"] for r in Warehouse(url=warehouse).metric_rows()}
        exported[jobs] = {(m.parent.name, f["name"]): f["rows"] for m in (tmp_path / f"exports_{jobs}").rglob(
            "_manifest.json") for f in json.loads(m.read_text())["files"]}  # bytes differ: run ids, times
        if jobs == "default":
            assert "2 grains at a time" in done.stdout
            assert set(runs) == {"hour", "day", "week", "month", "export"}
            others = [runs[g] for g in ("hour", "day", "week", "month")]
            assert runs["hour"].start_time < runs["day"].end_time and runs["day"].start_time < runs["hour"].end_time
            assert runs["export"].start_time >= max(r.end_time for r in others)
            assert "[5/5] month export: 2026-02-01 .. 2026-02-01 (1 partitions) started" in done.stdout
        else:
            assert set(runs) == {"hour", "day", "week", "month"}
    assert exported["default"] == exported["1"] and len(exported["1"]) == 4  # 2 tables, csv and parquet
    assert written["default"] == written["1"] and {g for _, g, *_ in written["1"]} == {"hour", "day", "week", "month"}
