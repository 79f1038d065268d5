"""Operations helpers: status per asset, missing and failed partitions, spans, pace for ETAs."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from metrics_pipeline import operations
from metrics_pipeline.contract import TABLES
from metrics_pipeline.runner import run_range


def _keys(first, last):
    from metrics_pipeline.partitions import PARTITIONS

    return PARTITIONS["day"].get_partition_keys_in_range(dg.PartitionKeyRange(first, last))


def test_status_missing_and_failed_partitions(sources):
    sources.insert("user_sessions", {"user_id": "u", "started_at": "2026-01-05 10:00:00"})
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_range(sources.defs(), "day", _keys("2026-01-05", "2026-01-06"), instance).success
        now = dt.datetime(2026, 1, 10, 3, tzinfo=dt.timezone.utc)
        rows = {r["asset"]: r for r in operations.status(instance, [{"asset": "daily_activity_metrics",
                                                                      "check_name": "metric_anomalies"}], now)}
        activity = rows["daily_activity_metrics"]
        assert (activity["newest"], activity["materialized"], activity["expected"]) == ("2026-01-06", 2, 374)
        assert activity["missing_spans"] == ["2025-01-01..2026-01-04", "2026-01-07..2026-01-09"]
        assert activity["open_alerts"] == {"metric_anomalies": 1}
        assert rows["weekly_activity_metrics"]["newest"] is None
        assert operations.missing_keys(instance, "day", _keys("2026-01-04", "2026-01-07")) == [
            "2026-01-04", "2026-01-07"]

        ai = TABLES["ai_requests"].sa_table()
        sources.execute("app", "DROP TABLE ai_requests")
        assert not run_range(sources.defs(), "day", _keys("2026-01-07", "2026-01-08"), instance).success
        assert operations.failed_keys(instance, "day", _keys("2026-01-04", "2026-01-09")) == [
            "2026-01-07", "2026-01-08"]
        ai.create(sources.engines["app"])
        assert run_range(sources.defs(), "day", _keys("2026-01-07", "2026-01-07"), instance).success
        assert operations.failed_keys(instance, "day", _keys("2026-01-04", "2026-01-09")) == ["2026-01-08"]
        assert operations.seconds_per_partition(instance, "day") > 0
        assert operations.seconds_per_partition(instance, "month") is None


def test_spans_split_keys_into_consecutive_runs():
    assert operations.spans("day", ["2026-01-07", "2026-01-05", "2026-01-04", "2026-01-09"]) == [
        ["2026-01-04", "2026-01-05"], ["2026-01-07"], ["2026-01-09"]]
