"""Dagster's stock instance storage (SQLite, dagster-postgres) is a first-class home for the project:
a CLI backfill over data with a missing ad channel records every partition's check results there,
exits 0 (the gap raises a non-blocking alert, listed), fails with --fail-on-alerts, and `status` and
`--missing-only` read the stock instance. The CLI runs as a user runs it, in a process of its own."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.event_log.base import PartitionKeyFilter

from metrics_pipeline.contract import DATABASES
from metrics_pipeline.seed import seed_sources
from metrics_pipeline.seed.problems import parse, plant

DAYS = 10
CLI = str(Path(sys.executable).parent / "metrics-pipeline")
MARKETING = dg.AssetKey("daily_marketing_metrics")


@dataclass(frozen=True)
class Stock:
    env: dict[str, str]
    first: dt.date
    end: dt.date  # the last closed day when the test started: `status` expects nothing after it
    gap: dt.date  # meta_ads reports nothing that day; the 7 days before always did


@pytest.fixture(params=["sqlite", "postgres"])
def stock(request, tmp_path) -> Stock:
    """Seeded sources with a missing channel, a warehouse and a stock Dagster instance (its dates taken
    when the test starts, not when the module is collected: a run may cross midnight)."""
    end = dt.date.today() - dt.timedelta(days=1)
    first, gap = end - dt.timedelta(days=DAYS - 1), end - dt.timedelta(days=1)
    home = tmp_path / "dagster_home"
    home.mkdir()
    if request.param == "sqlite":
        urls = {db: f"sqlite:///{tmp_path}/{db}.db" for db in (*DATABASES, "warehouse")}
        storage = {"sqlite": {"base_dir": str(home)}}
    else:
        factory = request.getfixturevalue("postgres_url_factory")
        urls = {db: factory(db) for db in (*DATABASES, "warehouse")}
        storage = {"postgres": {"postgres_url": factory("dagster").replace("postgresql+psycopg2", "postgresql")}}
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}}))
    sources = {db: urls[db] for db in DATABASES}
    seed_sources(sources, days=DAYS, end=end, scale=0.2, seed=3, progress=lambda _: None)
    plant(sources, parse(f"channel:{gap}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "DAGSTER_"))}
    env.update({f"METRICS_{db.upper()}_DB_URL": url for db, url in sources.items()},
               METRICS_WAREHOUSE_URL=urls["warehouse"], METRICS_START_DATE=first.isoformat(), METRICS_TIMEZONE="UTC",
               METRICS_DATA_DIR=str(tmp_path), METRICS_EXPORT_URI=str(tmp_path / "exports"), DAGSTER_HOME=str(home))
    return Stock(env, first, end, gap)


def _cli(stock: Stock, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=stock.env, capture_output=True, text=True, timeout=600)


def test_a_backfill_on_the_stock_instance_records_partition_checks_and_exits_by_blocking_checks(stock):
    done = _cli(stock, "backfill", "--start", stock.first.isoformat(), "--end", stock.end.isoformat(), "--grain", "day")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed blocking check" not in done.stdout
    summary = next(line for line in done.stdout.splitlines() if line.startswith("data-quality alerts:"))
    assert "missing_data" in summary and "medium" in summary, done.stdout

    with dg.DagsterInstance.from_config(stock.env["DAGSTER_HOME"]) as instance:
        assert type(instance.event_log_storage).__module__.startswith(("dagster.", "dagster_postgres."))
        days = [(stock.first + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
        assert sorted(instance.get_materialized_partitions(MARKETING)) == days
        results = {}
        for check in ("source_volume", "metric_integrity"):
            key = dg.AssetCheckKey(MARKETING, check)
            results[check] = {d: instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [key], partition_filter=PartitionKeyFilter(key=d))[key].status.value for d in days}
        assert results["metric_integrity"] == dict.fromkeys(days, "SUCCEEDED")
        assert results["source_volume"] == {d: "FAILED" if d == stock.gap.isoformat() else "SUCCEEDED" for d in days}
        # what the UI shows: the run succeeded; only the non-blocking check's partition failed
        assert [r.status for r in instance.get_runs()] == [dg.DagsterRunStatus.SUCCESS]

    status = json.loads(_cli(stock, "status", "--grain", "day", "--format", "json").stdout)
    marketing = next(r for r in status if r["asset"] == "daily_marketing_metrics")
    assert (marketing["newest"], marketing["materialized"], marketing["missing"]) == (stock.end.isoformat(), DAYS, 0)
    assert marketing["open_alerts"] == {"source_volume": 1}

    again = _cli(stock, "backfill", "--start", stock.first.isoformat(), "--end", stock.end.isoformat(), "--grain", "day",
                 "--missing-only")
    assert again.returncode == 0 and "0 day partition(s)" in again.stdout, again.stdout + again.stderr

    strict = _cli(stock, "backfill", "--start", stock.gap.isoformat(), "--end", stock.gap.isoformat(), "--grain", "day",
                  "--fail-on-alerts", "medium")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "--fail-on-alerts medium: 1 alert(s) at or above medium" in strict.stdout


def test_a_range_past_the_last_closed_period_is_clipped_and_one_with_none_is_refused(stock):
    future = stock.end + dt.timedelta(days=20)
    done = _cli(stock, "backfill", "--start", (stock.first - dt.timedelta(days=3)).isoformat(), "--end", future.isoformat(),
                "--grain", "week,month")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith(
        f"range clipped to the partitions that exist: from METRICS_START_DATE {stock.first} to the last closed periods")
    assert "Traceback" not in done.stderr

    none = _cli(stock, "backfill", "--start", (stock.end + dt.timedelta(days=2)).isoformat(), "--end", future.isoformat())
    assert none.returncode == 2 and "Traceback" not in none.stderr
    assert none.stderr.startswith(f"metrics-pipeline: no closed period in {stock.end + dt.timedelta(days=2)} .. {future}")
    assert len(none.stderr.strip().splitlines()) == 1
