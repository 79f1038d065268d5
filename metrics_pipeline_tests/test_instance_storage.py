"""The batched instance storage (metrics_pipeline/instance_storage.py) records exactly what Dagster's
stock storage records, on SQLite and on PostgreSQL, while writing a range's events in batches."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.storage.event_log.base import PartitionKeyFilter

from metrics_pipeline.partitions import PARTITIONS
from metrics_pipeline.runner import run_range

DAYS = ["2026-03-09", "2026-03-10", "2026-03-11", "2026-03-12"]
BATCHED = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
           dg.DagsterEventType.ASSET_CHECK_EVALUATION)


@pytest.fixture(autouse=True)
def _event_batches(monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # what the batched storage turns on


def _kind(sources) -> str:
    return "sqlite" if sources.warehouse_url.startswith("sqlite") else "postgres"


def _instance(kind: str, batched: bool, tmp_path, postgres_url_factory, name: str) -> dg.DagsterInstance:
    home = tmp_path / name
    home.mkdir()
    if kind == "sqlite":
        config = {"base_dir": str(home)}
        storage = {"custom": {"module": "metrics_pipeline.instance_storage", "class": "BatchedSqliteStorage",
                              "config": config}} if batched else {"sqlite": config}
    else:
        config = {"postgres_url": postgres_url_factory(name).replace("postgresql+psycopg2", "postgresql")}
        storage = {"custom": {"module": "metrics_pipeline.instance_storage", "class": "BatchedPostgresStorage",
                              "config": config}} if batched else {"postgres": config}
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": storage, "telemetry": {"enabled": False}}))
    return dg.DagsterInstance.from_config(str(home))


def _recorded(instance: dg.DagsterInstance, run_id: str) -> dict:
    """What the UI and the daemon read back: events by type/asset/partition, partition statuses,
    check results per partition, each partition's plotted value."""
    events = Counter((e.dagster_event_type.value, e.dagster_event.asset_key.to_user_string()
                      if e.dagster_event.asset_key else e.dagster_event.event_specific_data.asset_key.to_user_string(),
                      e.dagster_event.partition) for e in instance.all_logs(run_id, of_type=set(BATCHED)))
    asset = dg.AssetKey("daily_activity_metrics")
    storage = instance.event_log_storage
    checks = {}
    for name in ("source_expectations", "metric_integrity"):
        key = dg.AssetCheckKey(asset, name)
        checks[name] = {d: storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=d))[key].status.value for d in DAYS}
    plotted = {r.partition_key: r.asset_materialization.metadata["new_users"].value
               for r in instance.fetch_materializations(asset, limit=10).records}
    return {"events": events, "checks": checks, "plotted": plotted,
            "materialized": sorted(instance.get_materialized_partitions(asset)),
            "latest": instance.get_latest_materialization_event(asset).asset_materialization.partition,
            "status": instance.get_status_by_partition(asset, DAYS, PARTITIONS["day"])}


def test_batched_storage_records_what_dagster_records(sources, tmp_path, postgres_url_factory, monkeypatch):
    sources.insert("users", *({"id": f"u{i}", "created_at": f"{d} 09:00:00",
                               "platform": "fridge" if d == DAYS[1] else "ios"} for i, d in enumerate(DAYS)))
    recorded, single_writes = {}, {}
    for batched in (False, True):
        instance = _instance(_kind(sources), batched, tmp_path, postgres_url_factory, f"dagster_{batched}")
        writes = Counter()
        store_event = instance.event_log_storage.store_event

        def counting(event, store_event=store_event, writes=writes):
            data = event.dagster_event.event_specific_data if event.dagster_event else None
            if event.dagster_event and (event.dagster_event.partition or getattr(data, "partition", None)):
                writes[event.dagster_event_type] += 1  # one event per partition
            store_event(event)

        update = instance.event_log_storage._update_asset_check_evaluation

        def counting_updates(event, event_id, update=update, writes=writes):
            if event.dagster_event.event_specific_data.partition:
                writes["a partition's check execution updated alone"] += 1
            update(event, event_id)

        monkeypatch.setattr(instance.event_log_storage, "store_event", counting)
        monkeypatch.setattr(instance.event_log_storage, "_update_asset_check_evaluation", counting_updates)
        run = run_range(sources.defs(), "day", DAYS, instance)
        assert run.success  # source_expectations fails one day with a warning; nothing blocks
        recorded[batched] = _recorded(instance, run.run_id)
        single_writes[batched] = sum(writes[t] for t in BATCHED) + writes["a partition's check execution updated alone"]
        instance.dispose()

    stock, mine = recorded[False], recorded[True]
    assert mine == stock
    assert mine["checks"]["source_expectations"] == {d: "FAILED" if d == DAYS[1] else "SUCCEEDED" for d in DAYS}
    assert mine["plotted"] == {d: 0.0 if d == DAYS[1] else 1.0 for d in DAYS} and mine["latest"] == DAYS[-1]
    assert mine["events"][("ASSET_MATERIALIZATION", "daily_activity_metrics", DAYS[0])] == 1
    # per-partition events (10 assets planned + materialized, 17 checks' results, 4 days) written one by
    # one by the stock storage (some of them: dagster-postgres batches materializations), none by ours,
    # whose check execution rows are updated by one executemany per batch
    assert single_writes[False] >= 17 * len(DAYS) and single_writes[True] == 0, single_writes


def test_failed_range_run_marks_each_partition_failed(sources, tmp_path, postgres_url_factory):
    """Planned events stay per partition, so a failed range shows its partitions as failed, not missing."""
    sources.insert("users", {"created_at": f"{DAYS[0]} 09:00:00"})
    with sources.engines["app"].begin() as conn:
        conn.execute(sa.text("DROP TABLE user_sessions"))
    instance = _instance(_kind(sources), True, tmp_path, postgres_url_factory, "dagster_failed")
    run = run_range(sources.defs(), "day", DAYS, instance)
    assert not run.success and any("user_sessions" in e for e in run.errors), run.errors
    status = instance.get_status_by_partition(dg.AssetKey("daily_activity_metrics"), DAYS, PARTITIONS["day"])
    assert {d: s.value for d, s in status.items()} == {d: "FAILED" for d in DAYS}


@pytest.mark.parametrize("sources", ["sqlite"], indirect=True)
def test_on_an_untested_dagster_version_the_batched_storage_falls_back_to_the_stock_one(
        sources, tmp_path, postgres_url_factory, monkeypatch):
    """Upgrade safety: with a Dagster version the batching was not tested with, the configured batched
    storage warns once, keeps Dagster's stock event log and stores what the stock storage stores."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from metrics_pipeline import instance_storage

    sources.insert("users", *({"id": f"u{i}", "created_at": f"{d} 09:00:00"} for i, d in enumerate(DAYS)))
    monkeypatch.setattr(instance_storage, "TESTED_DAGSTER_VERSIONS", frozenset({"0.0.1"}))
    instance_storage.batching_available.cache_clear()
    try:
        with pytest.warns(instance_storage.StockStorageFallbackWarning) as warned:
            fallback = _instance("sqlite", True, tmp_path, postgres_url_factory, "fallback")
            second = _instance("sqlite", True, tmp_path, postgres_url_factory, "fallback_again")
        assert len(warned) == 1, [str(w.message) for w in warned]
        assert f"Dagster {dg.__version__} is not a version it was tested with (0.0.1)" in str(warned[0].message)
        assert type(fallback.event_log_storage) is SqliteEventLogStorage
        assert not instance_storage.writes_batches(fallback)
        recorded = {}
        for name, instance in (("fallback", fallback), ("stock", _instance("sqlite", False, tmp_path,
                                                                          postgres_url_factory, "stock"))):
            run = run_range(sources.defs(), "day", DAYS, instance)
            assert run.success, run.errors
            recorded[name] = _recorded(instance, run.run_id)
            instance.dispose()
        second.dispose()
    finally:
        instance_storage.batching_available.cache_clear()
    assert recorded["fallback"] == recorded["stock"]
    assert recorded["fallback"]["checks"]["metric_integrity"] == dict.fromkeys(DAYS, "SUCCEEDED")
