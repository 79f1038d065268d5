"""Data-quality rules on hand-built data: anomaly scoring, missing data, schema changes, integrity."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from metrics_pipeline.contract import TABLES
from metrics_pipeline_tests.conftest import values
from metrics_pipeline.metrics.periods import periods_between
from metrics_pipeline.quality import anomaly
from metrics_pipeline.quality.anomaly import Observation, score
from metrics_pipeline.quality.schema import changes
from metrics_pipeline.quality.volume import find_gaps
from metrics_pipeline.warehouse_schema import metric_values


def _weeks(values_by_weekday: list[float], weeks: int) -> list[Observation]:
    return [Observation(values_by_weekday[d % 7] * (1 + 0.01 * (d % 3)), is_count=True) for d in range(weeks * 7)]


STEADY = [1000, 1100, 1050, 1000, 1200, 600, 500]  # weekday seasonality: weekends are quiet


def test_a_drop_and_a_spike_against_same_weekdays_are_found_with_their_numbers():
    series = _weeks(STEADY, 12)
    rule = anomaly.rule_for("sessions", "day")
    last = len(series) - 1  # a Sunday: normally ~500
    series[last] = Observation(150, is_count=True)
    drop = score(series, last, rule, "day")
    assert drop.kind == "data_drop" and drop.value == 150 and drop.history == 8
    assert 500 <= drop.expected <= 510 and drop.low < drop.expected < drop.high and drop.z < -3
    assert drop.change == pytest.approx(150 / drop.expected - 1)
    text = anomaly.sentence("sessions", "day", "2026-03-08", drop)
    assert text.startswith("sessions dropped to 150 on day 2026-03-08: expected 50") and "z-score -" in text
    assert "8 prior same-weekday days" in text and "change -7" in text
    series[last] = Observation(1500, is_count=True)  # a weekday-sized value on a Sunday is a spike
    assert score(series, last, rule, "day").kind == "data_spike"


def test_normal_values_short_history_and_watched_direction_raise_nothing():
    series = _weeks(STEADY, 12)
    rule = anomaly.rule_for("sessions", "day")
    assert all(score(series, i, rule, "day") is None for i in range(len(series)))
    short = _weeks(STEADY, 3)
    short[-1] = Observation(10, is_count=True)
    assert score(short, len(short) - 1, rule, "day") is None  # 3 same-weekday points < min_history 4
    series[-1] = Observation(5000, is_count=True)
    assert score(series, len(series) - 1, anomaly.rule_for("post_views", "day"), "day") is None  # drops only


def test_a_rate_of_a_few_events_falling_to_none_is_chance_a_rate_of_many_is_a_drop():
    """Day-30 retention over cohorts of 330 (the demo's false alarm): the day's weekday had 10 returns
    every week, other days swing between 2 and 12, so 0 is within the metric's habits once counted as
    events (log(11/1) = 2.4); a rate whose counts are steady at 40 falling to 0 is still a drop."""
    rule = anomaly.rule_for("retention_d30", "day")
    weeks = 12
    swinging = [Observation((10 if d % 7 == 6 else (2, 12, 3, 11)[(d // 7) % 4]) / 330, 330) for d in range(weeks * 7)]
    swinging[-1] = Observation(0.0, 330)
    assert score(swinging, len(swinging) - 1, rule, "day") is None
    steady = [Observation((40 + d % 3) / 330, 330) for d in range(weeks * 7)]
    steady[-1] = Observation(0.0, 330)
    drop = score(steady, len(steady) - 1, rule, "day")
    assert drop.kind == "data_drop" and drop.change == -1
    assert anomaly.observed_change(Observation(0.0, 330), 10 / 330) == pytest.approx(math.log(11))


def test_a_metric_that_often_jumps_needs_a_bigger_jump():
    bursty = _weeks(STEADY, 12)
    for d in range(4, len(bursty), 5):  # a campaign every 5 days doubles the value
        bursty[d] = Observation(bursty[d].value * 2, is_count=True)
    rule = anomaly.rule_for("messages_total", "day")
    last = len(bursty) - 1
    assert bursty[last].value < 600
    bursty[last] = Observation(bursty[last].value * 2.5, is_count=True)
    assert score(bursty, last, rule, "day") is None  # 2.5x is within its habits
    bursty[last] = Observation(bursty[last].value * 20, is_count=True)
    assert score(bursty, last, rule, "day").kind == "data_spike"


def test_anomaly_rules_can_be_overridden_per_metric(monkeypatch, tmp_path):
    monkeypatch.setenv("METRICS_ANOMALY_RULES", '{"sessions": {"sensitivity": 6, "direction": "spike"}}')
    assert anomaly.rule_for("sessions", "day").sensitivity == 6
    assert anomaly.rule_for("events", "day").sensitivity == 3
    path = tmp_path / "rules.json"
    path.write_text('{"events": {"min_history": 5}}')
    monkeypatch.setenv("METRICS_ANOMALY_RULES", str(path))
    assert anomaly.rule_for("events", "week").min_history == 5
    monkeypatch.setenv("METRICS_ANOMALY_RULES", '{"events": {"sensitivty": 2}}')
    with pytest.raises(ValueError, match="METRICS_ANOMALY_RULES: 'events' must map to an object with keys among"):
        anomaly.rule_for("events", "day")


def test_log_change_treats_halving_like_doubling():
    assert anomaly.log_change(50, 100) == pytest.approx(anomaly.log_change(200, 100))
    assert anomaly.log_change(0, 100) == math.inf


def _ad_rows(day: dt.date, channels: list[str]) -> list[dict]:
    return [{"date": day.isoformat(), "channel": c, "campaign_id": f"c_{c}"} for c in channels]


def test_a_missing_day_and_a_vanished_channel_are_missing_data(sources):
    channels = ["apple_search_ads", "meta_ads", "google_ads"]
    first = dt.date(2026, 2, 1)
    days = [first + dt.timedelta(days=i) for i in range(17)]
    for i, day in enumerate(days):
        if i != 8:  # the whole table is silent on 2026-02-09; google_ads is on 2026-02-17
            sources.insert("ad_spend_daily", *_ad_rows(day, channels if i != 16 else channels[:2]))
        if i != 16:  # 12 events a day, all on ios, none on 2026-02-17
            sources.insert("events", *({"event_time": f"{day} 0{h % 10}:00:00", "platform": "ios"} for h in range(12)))
    periods = periods_between("day", dt.datetime(2026, 2, 8), dt.datetime(2026, 2, 18), "UTC")
    with sources.engines["marketing"].connect() as conn:
        gaps = find_gaps(conn, TABLES["ad_spend_daily"], ["channel"], periods)
    assert [(g.period, g.column, g.value) for g in gaps] == [("2026-02-09", None, None),
                                                              ("2026-02-17", "channel", "google_ads")]
    with sources.engines["interactions"].connect() as conn:
        gaps = find_gaps(conn, TABLES["events"], ["platform"], periods)
    assert [(g.period, g.column, g.expected) for g in gaps] == [("2026-02-17", None, 12)]


def test_schema_changes_have_severity_by_kind():
    table = TABLES["user_sessions"]
    live = {c: "TEXT" for c in table.column_names}
    assert changes(table, None, live) == []  # the contract is the first baseline
    assert [(c.column, c.severity) for c in changes(table, None, {**live, "extra": "TEXT"})] == []
    gone = {k: v for k, v in live.items() if k != "platform"}
    (removed,) = changes(table, None, gone)
    assert (removed.kind, removed.severity, removed.message) == (
        "removed", "high", "user_sessions: column platform (contract) was removed.")
    previous = {**live, "legacy": "TEXT"}
    found = {(c.column, c.kind, c.severity) for c in changes(table, previous, {**gone, "screens_viewed": "BIGINT",
                                                                            "referrer": "TEXT"})}
    assert found == {("platform", "removed", "high"), ("legacy", "removed", "medium"),
                     ("screens_viewed", "type_changed", "high"), ("referrer", "added", "low")}


def test_a_dropped_column_a_metric_reads_is_critical_and_fails_only_its_assets(sources, materialize):
    sources.insert("ai_requests", {"user_id": "u", "created_at": "2026-02-09 10:00:00"})
    sources.insert("events", {"event_time": "2026-02-10 10:00:00"})
    assert materialize(sources, "day", "2026-02-09").success
    sources.execute("app", "ALTER TABLE ai_requests DROP COLUMN feature")  # ai_cost is split by feature
    sources.execute("interactions", "ALTER TABLE events DROP COLUMN properties")  # no metric reads it
    sources.execute("app", "ALTER TABLE ai_requests ADD COLUMN region TEXT")
    run = materialize(sources, "day", "2026-02-10")
    assert not run.success
    assert any("table 'ai_requests' lacks column feature, which these metrics read" in e for e in run.errors)
    alerts = {(a["source_table"], a["column_name"]): a for a in sources.warehouse().alerts()
              if a["alert_type"] == "schema_change"}
    assert {k: a["severity"] for k, a in alerts.items()} == {
        ("ai_requests", "feature"): "critical", ("ai_requests", "region"): "low", ("events", "properties"): "high"}
    assert alerts[("ai_requests", "feature")]["partition_key"] == "2026-02-10"
    assert "daily_ai_metrics failed" in alerts[("ai_requests", "feature")]["message"]
    assert values(sources, "events", "day", first="2026-02-10") == {"2026-02-10": 1}  # the others went on
    materialize(sources, "day", "2026-02-11")  # seen once: not alerted again
    assert len([a for a in sources.warehouse().alerts() if a["alert_type"] == "schema_change"]) == 3


def test_integrity_finds_negative_counts_rates_above_one_and_weeks_off_their_days(sources, materialize):
    sources.insert("user_sessions", *({"user_id": f"u{d}", "started_at": f"2026-01-{d:02d} 10:00:00"}
                                      for d in range(5, 12)))
    assert materialize(sources, "day", "2026-01-05", "2026-01-11").success
    assert materialize(sources, "week", "2026-01-05").success
    mv = metric_values.c
    with sources.warehouse().begin() as conn:
        conn.execute(metric_values.update().where(mv.metric == "sessions", mv.grain == "week", mv.dimension == "")
                     .values(value=8))
        conn.execute(metric_values.update().where(mv.metric == "new_users", mv.grain == "day",
                                                  mv.period_start == "2026-01-06", mv.dimension == "")
                     .values(value=-1))
    from metrics_pipeline.metrics.catalog import DOMAINS
    from metrics_pipeline.quality.integrity import violations

    activity = next(d for d in DOMAINS if d.name == "activity")
    with sources.warehouse().engine.connect() as conn:
        week = violations(conn, activity.metrics_for("week"), "week",
                          periods_between("week", dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12), "UTC"))
        days = violations(conn, activity.metrics_for("day"), "day",
                          periods_between("day", dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 12), "UTC"))
    assert [(v.rule, v.metric, v.actual, v.expected) for v in week] == [
        ("sum_of_days", "new_users", 0, -1), ("sum_of_days", "sessions", 8, 7)]
    assert [(v.rule, v.period, v.metric) for v in days] == [("non_negative", "2026-01-06", "new_users")]


def test_integrity_check_stores_a_critical_alert(sources, materialize):
    from metrics_pipeline_tests.test_pipeline import check_only

    sources.insert("user_sessions", {"user_id": "u", "started_at": "2026-01-05 10:00:00"})
    assert materialize(sources, "day", "2026-01-05").success
    mv = metric_values.c
    with sources.warehouse().begin() as conn:  # a rate above one only comes from a broken computation
        conn.execute(metric_values.update().where(mv.metric == "retention_d1", mv.period_start == "2026-01-05",
                                                  mv.dimension == "").values(value=1.5))
    assert not check_only(sources, "daily_activity_metrics", "metric_integrity", "2026-01-05").passed
    (alert,) = [a for a in sources.warehouse().alerts(open_only=True) if a["alert_type"] == "invariant_violation"]
    assert (alert["severity"], alert["metric"], alert["partition_key"]) == ("critical", "retention_d1", "2026-01-05")
    assert "retention_d1 total is 1.5, above 1" in alert["message"]


def test_a_failed_integrity_check_stops_downstream_assets_in_the_same_run(sources, materialize, monkeypatch):
    from metrics_pipeline.quality import integrity
    from metrics_pipeline.quality.integrity import Violation

    real = integrity.violations

    def broken_sessions(conn, metrics, grain, periods):
        found = real(conn, metrics, grain, periods)
        if any(m.name == "sessions" for m in metrics):
            found.append(Violation("non_negative", periods[0].key, "sessions", None, -3, 0, "sessions is negative"))
        return found

    monkeypatch.setattr(integrity, "violations", broken_sessions)
    sources.insert("user_sessions", {"user_id": "u", "started_at": "2026-01-05 10:00:00"})
    run = materialize(sources, "day", "2026-01-05")
    assert not run.success and "daily_activity_metrics:metric_integrity" in " ".join(run.failed_checks)
    written = {r["asset"] for r in sources.warehouse().metric_rows(grain="day")}
    assert "daily_activity_metrics" in written and "daily_interactions_metrics" in written
    assert "daily_derived_metrics" not in written  # downstream of the failed check: never ran


def test_a_value_vanishing_on_a_day_that_lost_most_rows_is_a_drop_not_missing_data(sources):
    first = dt.date(2026, 2, 1)
    for i in range(9):  # 40 ios + 12 web events a day; day 9 keeps 5 ios and no web (a drop day)
        day = first + dt.timedelta(days=i)
        ios, web = (40, 12) if i < 8 else (5, 0)
        sources.insert("events", *({"event_time": f"{day} 10:00:00", "platform": "ios"} for _ in range(ios)),
                       *({"event_time": f"{day} 11:00:00", "platform": "web"} for _ in range(web)))
    periods = periods_between("day", dt.datetime(2026, 2, 9), dt.datetime(2026, 2, 10), "UTC")
    with sources.engines["interactions"].connect() as conn:
        assert find_gaps(conn, TABLES["events"], ["platform"], periods) == []


def test_a_range_run_gives_each_partition_its_own_check_result(tmp_path):
    """A single-run range runs each check once; every partition still gets passed or failed (not
    'skipped' in the UI): here the day of a signup on an unknown platform fails `source_expectations`."""
    import dagster as dg
    from dagster._core.storage.event_log.base import PartitionKeyFilter

    from metrics_pipeline.contract import DATABASES
    from metrics_pipeline.runner import run_range
    from metrics_pipeline_tests.sources import Sources

    sources = Sources({db: f"sqlite:///{tmp_path}/{db}.db" for db in DATABASES},
                      f"sqlite:///{tmp_path}/warehouse.db", str(tmp_path / "exports"))
    days = ["2026-03-09", "2026-03-10", "2026-03-11"]
    sources.insert("users", *({"id": f"u{i}", "created_at": f"{d} 09:00:00",
                               "platform": "fridge" if d == days[1] else "ios"} for i, d in enumerate(days)))
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    run_range(sources.defs(), "day", days, instance)
    storage = instance.event_log_storage
    for name, failing in (("source_expectations", {days[1]}), ("metric_integrity", set())):
        key = dg.AssetCheckKey(dg.AssetKey("daily_activity_metrics"), name)
        status = {d: storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=d))[key].status.value for d in days}
        assert status == {d: "FAILED" if d in failing else "SUCCEEDED" for d in days}, name


def test_a_range_run_scans_the_checks_sources_in_the_background_once_and_finds_what_checks_find(
        tmp_path, monkeypatch):
    """The CLI's day ranges start each domain's check scans (GX, volume gaps) in a background thread
    while the assets compute: once per run, one scan per domain, and a scan that failed there is run
    again by its check. The alerts equal those of a run whose checks scan for themselves."""
    import threading

    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from metrics_pipeline.contract import DATABASES
    from metrics_pipeline.defs import source_scans
    from metrics_pipeline.metrics.catalog import DOMAINS
    from metrics_pipeline.runner import run_range
    from metrics_pipeline_tests.sources import Sources

    sources = Sources({db: f"sqlite:///{tmp_path}/{db}.db" for db in DATABASES},
                      f"sqlite:///{tmp_path}/warehouse.db", str(tmp_path / "exports"))
    days = ["2026-03-09", "2026-03-10", "2026-03-11"]
    sources.insert("users", *({"id": f"u{i}", "created_at": f"{d} 09:00:00",
                               "platform": "fridge" if d == days[1] else "ios"} for i, d in enumerate(days)))
    sources.insert("payments", {"id": "p1", "user_id": "u0", "amount_cents": 700, "currency": "EUR",
                                "created_at": f"{days[2]} 10:00:00"})
    calls = []

    def recording(scan, compute):
        def _scan(source, domain, periods):
            background = threading.current_thread().name.startswith("source-scans")
            calls.append((scan, domain.name, background))
            if background and (scan, domain.name) == (source_scans.EXPECTATIONS, "revenue"):
                raise ConnectionError("the scan failed in the background")
            return compute(source, domain, periods)
        return _scan

    for scan, compute in list(source_scans.SCANS.items()):
        monkeypatch.setitem(source_scans.SCANS, scan, recording(scan, compute))

    def found():
        return sorted((a["alert_type"], a["check_name"], a["partition_key"], a["message"])
                      for a in sources.warehouse().alerts(open_only=True))

    instance = dg.DagsterInstance.ephemeral()
    assert run_range(sources.defs(), "day", days, instance).success
    daily = {d.name for d in DOMAINS if "day" in d.grains}
    assert sorted(c for c in calls if c[2]) == sorted((s, d, True) for s in source_scans.SCANS for d in daily)
    assert [c for c in calls if not c[2]] == [(source_scans.EXPECTATIONS, "revenue", False)]
    in_background = found()
    assert {(a[0], a[2]) for a in in_background} == {("invalid_data", days[1]), ("invalid_data", days[2])}

    calls.clear()  # the same window run outside the CLI's runner: each check scans when it runs
    job = sources.defs().resolve_job_def("daily_metrics_job")
    assert job.execute_in_process(instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: days[0],
                                                           ASSET_PARTITION_RANGE_END_TAG: days[-1]}).success
    assert sorted(calls) == sorted((s, d, False) for s in source_scans.SCANS for d in daily)
    assert found() == in_background


def test_the_background_scans_start_after_sqlalchemy_orm_is_imported_whole():
    """The scans' first import (Great Expectations) loads sqlalchemy.orm, whose inspection hooks
    the main thread's queries call; a half-imported sqlalchemy.orm failed a CI run ("partially
    initialized module 'sqlalchemy.orm.exc'"). In a fresh interpreter, where nothing has loaded it,
    it is loaded before the scan thread exists."""
    import subprocess
    import sys

    probe = """
import sys, threading
from metrics_pipeline.defs import source_scans
assert "sqlalchemy.orm" not in sys.modules, "loaded already: the probe proves nothing"
started = threading.Thread.start
def start(thread):
    assert "sqlalchemy.orm" in sys.modules, thread.name
    print("started", thread.name, flush=True)
    started(thread)
threading.Thread.start = start
with source_scans.background_source_scans():
    source_scans._pool.submit(print, "scanned").result()
"""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["started source-scans_0", "scanned"]
