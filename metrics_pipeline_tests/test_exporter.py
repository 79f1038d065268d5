"""The Prometheus exporter's series, read from a small deployment with planted problems
(monitored_pipeline.py), exactly; its cache and read timeout; its settings; and a warehouse and an
instance that cannot be reached: /metrics still answers 200, `up` is 0 with the reason, and the
series they feed are absent."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from metrics_pipeline import cli, settings
from metrics_pipeline.local_stack import free_port
from metrics_pipeline.monitoring import exporter
from metrics_pipeline.monitoring.collector import CachedRead, PipelineCollector
from metrics_pipeline.monitoring.instance_readings import InstanceReading
from metrics_pipeline.monitoring.warehouse_readings import WarehouseReading, read_warehouse
from metrics_pipeline_tests.monitored_pipeline import (
    NEWEST_SESSION_UPDATE,
    NEWEST_USER_UPDATE,
    dashboard_queries,
    utc_timestamp,
)

ROOT = Path(__file__).resolve().parents[1]
TABLES = 15


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """{series name: {label values in label-name order: value}} of a page in the Prometheus text format."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(value for _, value in sorted(sample.labels.items()))
            found.setdefault(sample.name.removeprefix("metrics_pipeline_"), {})[key] = sample.value
    return found


def scrape(collector: PipelineCollector) -> dict[str, dict[tuple, float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return parse(generate_latest(registry).decode())


def test_series_of_a_deployment_with_planted_problems(monitored_pipeline):
    now = time.time()  # partition ages are measured at this instant
    got = scrape(PipelineCollector(
        lambda: read_warehouse(monitored_pipeline.sources.warehouse_url, settings.DEFAULT_EXPORTER_KPIS, (), "UTC"),
        exporter.InstanceReader(monitored_pipeline.instance), cache_seconds=5, source_freshness_seconds=26 * 3600,
        clock=lambda: now))

    assert got["exporter_up"] == {("instance",): 1, ("warehouse",): 1}
    assert "exporter_read_error_info" not in got
    # labels in name order: (grain, metric); only the activity asset was materialized, 2026-01-06 newest
    assert got["kpi_value"] == {("day", "active_users"): 2, ("day", "new_users"): 2, ("day", "sessions"): 3}
    assert got["kpi_period_start_timestamp_seconds"] == dict.fromkeys(got["kpi_value"], utc_timestamp("2026-01-06"))
    assert "kpi_breakdown_value" not in got
    alerts = got["data_quality_alerts_open"]  # (alert_type, severity): the observation found every table stale
    assert len(alerts) == 8 * 4 and alerts[("freshness", "high")] == TABLES and sum(alerts.values()) == TABLES

    day = ("daily_activity_metrics", "day")
    assert got["asset_partition_age_seconds"] == {day: now - utc_timestamp("2026-01-07")}
    closed_days = (dt.datetime.now(dt.timezone.utc).date() - settings.start_date()).days
    missing = got["asset_missing_partitions"]
    assert (missing[day], missing[("daily_ai_metrics", "day")]) == (closed_days - 2, closed_days)
    windows = got["asset_freshness_fail_window_seconds"]
    assert (windows[day], windows[("hourly_activity_metrics", "hour")], windows[("weekly_ai_metrics", "week")],
            windows[("monthly_ai_metrics", "month")]) == (27 * 3600, 2 * 3600, (7 * 24 + 4) * 3600,
                                                          (31 * 24 + 6) * 3600)
    assert ("daily_kpi_summary", "day") not in windows and ("daily_kpi_summary", "day") in missing
    assert got["asset_materialization_success"] == {day: 1, ("daily_ai_metrics", "day"): 0}
    assert got["asset_check_passed"] == {(*day[:1], check, "day"): 1 for check in (
        "metric_anomalies", "metric_integrity", "source_expectations", "source_volume")}

    assert got["job_last_run_status"] == {
        ("daily_metrics_job", "canceled"): 0, ("daily_metrics_job", "failure"): 1, ("daily_metrics_job", "success"): 0,
        ("observe_sources_job", "canceled"): 0, ("observe_sources_job", "failure"): 0,
        ("observe_sources_job", "success"): 1}
    with monitored_pipeline.instance() as instance:
        last = {job: instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)[0]
                for job in ("daily_metrics_job", "observe_sources_job")}
    assert got["job_last_run_start_timestamp_seconds"] == {(job,): r.start_time for job, r in last.items()}
    assert got["job_last_run_duration_seconds"] == {(job,): r.end_time - r.start_time for job, r in last.items()}

    rows = got["source_rows"]
    assert len(rows) == TABLES and rows[("app", "users")] == 3 and rows[("app", "user_sessions")] == 4
    assert sum(rows.values()) == 7
    assert got["source_newest_update_timestamp_seconds"] == {
        ("app", "users"): utc_timestamp(NEWEST_USER_UPDATE),
        ("app", "user_sessions"): utc_timestamp(NEWEST_SESSION_UPDATE)}
    assert len(got["source_observed_timestamp_seconds"]) == TABLES
    assert all(0 < now - t < 3600 for t in got["source_observed_timestamp_seconds"].values())
    assert got["source_freshness_threshold_seconds"] == {(): 26 * 3600}


def test_breakdowns_are_opt_in(monitored_pipeline, monkeypatch):
    for var, value in monitored_pipeline.env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("METRICS_EXPORTER_BREAKDOWNS", "platform")
    monkeypatch.setenv("METRICS_EXPORTER_KPIS", "new_users,sessions")
    got = scrape(exporter.build_collector(monitored_pipeline.instance))
    assert got["kpi_value"] == {("day", "new_users"): 2, ("day", "sessions"): 3}
    # (dimension, dimension_value, grain, metric)
    assert got["kpi_breakdown_value"] == {("platform", "android", "day", "new_users"): 1,
                                          ("platform", "ios", "day", "new_users"): 1,
                                          ("platform", "ios", "day", "sessions"): 3}


def test_reads_are_cached_and_failures_give_their_reason():
    clock = [1000.0]
    reads = []

    def warehouse() -> WarehouseReading:
        reads.append(clock[0])
        return WarehouseReading([], {("freshness", "high"): len(reads)})

    def instance() -> InstanceReading:
        if len(reads) < 2:
            raise RuntimeError("instance database down\nsecond line")
        return InstanceReading([], [], [])

    collector = PipelineCollector(warehouse, instance, cache_seconds=5, source_freshness_seconds=60,
                                  clock=lambda: clock[0])
    first = scrape(collector)
    clock[0] += 4.9
    assert scrape(collector) == first and reads == [1000.0]
    assert first["exporter_up"] == {("instance",): 0, ("warehouse",): 1}
    assert first["exporter_read_error_info"] == {("instance", "RuntimeError: instance database down"): 1}
    assert first["data_quality_alerts_open"] == {("freshness", "high"): 1}
    assert "job_last_run_status" not in first and "source_rows" not in first
    clock[0] += 0.1
    second = scrape(collector)
    assert reads == [1000.0, 1005.0] and second["data_quality_alerts_open"] == {("freshness", "high"): 2}
    assert second["exporter_up"] == {("instance",): 1, ("warehouse",): 1} and "exporter_read_error_info" not in second
    assert second["exporter_read_timestamp_seconds"] == {("instance",): 1005.0, ("warehouse",): 1005.0}


def test_a_read_that_does_not_answer_counts_as_failed_until_it_does():
    answer = threading.Event()
    read = CachedRead("instance", lambda: answer.wait(10) and "reading", cache_seconds=0, timeout=0.2)
    late = read.get()
    assert (late.value, late.reason) == (None, "TimeoutError: no answer within 0.2 s")
    answer.set()
    time.sleep(0.1)
    assert (read.get().value, read.get().reason) == ("reading", "")


def test_unreachable_warehouse_and_instance_answer_200_with_up_0_and_the_reason(tmp_path, monkeypatch):
    """A warehouse on a closed port refuses at once; a PostgreSQL instance on a closed port is retried
    by Dagster for about 12 s, so its read times out first."""
    closed = free_port()
    monkeypatch.setenv("METRICS_WAREHOUSE_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{closed}/warehouse")
    (tmp_path / "dagster.yaml").write_text(
        "storage:\n  postgres:\n    postgres_db: {hostname: 127.0.0.1, port: %d, username: postgres, "
        "password: '', db_name: dagster}\ntelemetry: {enabled: false}\n" % closed)
    port = free_port()
    server = exporter.start("127.0.0.1", port, exporter.build_collector(
        lambda: dg.DagsterInstance.from_config(str(tmp_path))))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            status, got = response.status, parse(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200
    assert got["exporter_up"] == {("instance",): 0, ("warehouse",): 0}
    reasons = dict(got["exporter_read_error_info"].keys())  # {(component, reason): 1} -> {component: reason}
    assert reasons["instance"] == "TimeoutError: no answer within 4 s"
    assert reasons["warehouse"].startswith(
        f'OperationalError: connection to server at "127.0.0.1", port {closed} failed')
    assert not any(name.startswith(("kpi_", "asset_", "job_", "source_rows", "data_quality")) for name in got)
    assert got["source_freshness_threshold_seconds"] == {(): 26 * 3600}


@pytest.mark.parametrize("var, value, message", [
    ("METRICS_EXPORTER_CACHE_SECONDS", "-1", "METRICS_EXPORTER_CACHE_SECONDS='-1' must be a non-negative number"),
    ("METRICS_EXPORTER_CACHE_SECONDS", "soon", "METRICS_EXPORTER_CACHE_SECONDS='soon' must be a non-negative number"),
    ("METRICS_EXPORTER_KPIS", "mrr,bogus", "METRICS_EXPORTER_KPIS: unknown metric(s) 'bogus'"),
    ("METRICS_EXPORTER_BREAKDOWNS", "platform,colour", "METRICS_EXPORTER_BREAKDOWNS: unknown breakdown(s) 'colour'"),
])
def test_bad_exporter_settings_stop_the_command_naming_the_variable(var, value, message, monkeypatch, capsys):
    monkeypatch.setenv(var, value)
    assert cli.main(["exporter", "--port", str(free_port())]) == 2
    assert message in capsys.readouterr().err


def test_exporter_settings_defaults(monkeypatch):
    for var in ("METRICS_EXPORTER_CACHE_SECONDS", "METRICS_EXPORTER_KPIS", "METRICS_EXPORTER_BREAKDOWNS"):
        monkeypatch.delenv(var, raising=False)
    assert settings.exporter_cache_seconds() == 5
    assert settings.exporter_kpis() == (
        "active_users", "new_users", "sessions", "gross_revenue", "net_revenue", "mrr", "active_subscribers",
        "ai_requests", "ai_tokens", "ai_cost", "ai_success_rate", "messages_sent", "delivery_rate", "ad_spend")
    assert settings.exporter_breakdowns() == ()
    monkeypatch.setenv("METRICS_EXPORTER_KPIS", " mrr , ad_spend ")
    assert settings.exporter_kpis() == ("mrr", "ad_spend")


def test_dashboard_rules_and_readme_name_exactly_the_exported_series(monitored_pipeline, monkeypatch):
    for var, value in monitored_pipeline.env.items():
        monkeypatch.setenv(var, value)
    exported = {family.name for family in exporter.build_collector(monitored_pipeline.instance).collect()}
    named = re.compile(r"metrics_pipeline_[a-z_]+")
    assert set(named.findall(" ".join(dashboard_queries()))) <= exported
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "metrics_pipeline_rules.yml").read_text())
    assert set(named.findall(" ".join(r["expr"] for g in rules["groups"] for r in g["rules"]))) <= exported
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Series"):readme.index("### Alert rules")]
    assert set(re.findall(r"^\| `(metrics_pipeline_[a-z_]+)`", section, re.MULTILINE)) == exported
