"""The late-data sensor requests exactly the closed partitions whose source rows changed."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from metrics_pipeline.defs.late_data import late_data_sensor
from metrics_pipeline.metrics.periods import last_closed, partition_key, period_containing


def _tick(sources, cursor=None):
    defs = sources.defs()
    context = dg.build_sensor_context(cursor=cursor, resources=sources.resources(), definitions=defs,
                                      instance=dg.DagsterInstance.ephemeral())
    result = late_data_sensor.evaluate_tick(context)
    return result.run_requests or [], result.cursor, result.skip_message


def test_late_rows_request_their_days_weeks_and_months_for_the_assets_reading_them(sources):
    today = dt.datetime.now(dt.timezone.utc).date()
    day = today - dt.timedelta(days=10)
    sources.insert("payments", {"id": "early", "amount_cents": 100, "created_at": f"{day} 08:00:00",
                                "updated_at": f"{day} 08:00:00"})
    requests, cursor, skipped = _tick(sources)
    assert requests == [] and "no source rows changed" in skipped
    assert json.loads(cursor)["payments"].startswith(str(day))
    assert _tick(sources, cursor)[0] == []  # nothing changed, nothing requested

    # a payment of the day before, inserted now, refunded on `day`
    sources.insert("payments", {"id": "late", "amount_cents": 500, "status": "refunded",
                                "created_at": f"{day - dt.timedelta(days=1)} 23:00:00",
                                "refunded_at": f"{day} 09:00:00", "updated_at": f"{today} 00:00:01"})
    requests, cursor, _ = _tick(sources, cursor)
    now = dt.datetime.now(dt.timezone.utc)
    expected = {("day", str(day - dt.timedelta(days=1))), ("day", str(day))}
    for grain in ("week", "month"):
        for d in (day - dt.timedelta(days=1), day):
            period = period_containing(grain, dt.datetime.combine(d, dt.time()), "UTC")
            if period.start <= last_closed(grain, now, "UTC").start:
                expected.add((grain, partition_key(period)))
    assert {(r.tags["grain"], r.partition_key) for r in requests} == expected
    daily = next(r for r in requests if r.partition_key == str(day))
    assert {k.to_user_string() for k in daily.asset_selection} == {
        "daily_revenue_metrics", "daily_derived_metrics", "daily_kpi_summary", "daily_analytics_snapshots"}
    assert daily.tags["trigger"] == "late_data" and daily.tags["late_tables"] == "payments"
    assert _tick(sources, cursor)[0] == []  # the watermark moved on


def test_changes_older_than_the_look_back_are_left_alone(sources, monkeypatch):
    monkeypatch.setenv("METRICS_LATE_DATA_LOOKBACK_DAYS", "5")
    today = dt.datetime.now(dt.timezone.utc).date()
    sources.insert("events", {"event_time": f"{today - dt.timedelta(days=3)} 10:00:00",
                              "updated_at": f"{today - dt.timedelta(days=3)} 10:00:00"})
    _, cursor, _ = _tick(sources)
    sources.insert("events", {"event_time": f"{today - dt.timedelta(days=20)} 10:00:00",
                              "updated_at": f"{today} 00:00:01"})
    assert _tick(sources, cursor)[0] == []
