"""The alert rules and the scrape config under Debian's `promtool`, and a real Prometheus server
(Debian's `prometheus`, which `.ci/run` installs) scraping `metrics-pipeline exporter` on a small
deployment with planted problems (monitored_pipeline.py): a KPI read back through Prometheus's HTTP
API equals the warehouse's value, and the rules fire on exactly the planted problems."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from metrics_pipeline.local_stack import BackgroundProcess, free_port
from metrics_pipeline_tests.monitored_pipeline import dashboard_queries

ROOT = Path(__file__).resolve().parents[1]
RULES_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
BIN = Path(sys.executable).parent


def require(binary: Path) -> None:
    """Skip without Debian's prometheus package, except in CI, which must run these tests."""
    if not binary.exists():
        reason = f"{binary} is missing: apt-get install -y prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def promtool(*args: str) -> str:
    require(PROMTOOL)
    done = subprocess.run([str(PROMTOOL), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_rules_and_scrape_config_pass_promtool():
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", "metrics_pipeline_rules.yml")
    assert "SUCCESS" in promtool("test", "rules", "tests/metrics_pipeline_rules_test.yml")
    assert "is valid prometheus config file syntax" in promtool("check", "config", "prometheus.yml")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_for(what: str, probe, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def start_serving(process: BackgroundProcess, cmd: list[str], env: dict, ready_url: str) -> None:
    """Start `process` and wait until `ready_url` answers 200."""
    process.start(cmd, env, process.log.parent)

    def ready() -> bool:
        if not process.alive():
            pytest.fail(f"{process.name} exited:\n{process.log.read_text()}")
        with urllib.request.urlopen(ready_url, timeout=10) as response:
            return response.status == 200

    wait_for(f"{process.name} at {ready_url}", ready)


# What names each rule's alert: the label(s) of the series it fired on.
ALERT_SUBJECT = {"MetricsPipelinePartitionStale": "{asset}", "MetricsPipelineRunFailed": "{job_name}",
                 "MetricsPipelineDataQualityAlertOpen": "{alert_type}/{severity}",
                 "MetricsPipelineSourceStale": "{database}.{table}", "MetricsPipelinePartitionsMissing": "{asset}"}


def alerts(api: str, state: str) -> set[tuple[str, str]]:
    """(alert name, subject) of Prometheus's alerts in `state` (firing or pending)."""
    return {(a["labels"]["alertname"], ALERT_SUBJECT[a["labels"]["alertname"]].format(**a["labels"]))
            for a in get_json(f"{api}/alerts")["data"]["alerts"] if a["state"] == state}


def test_prometheus_scrapes_the_exporter_and_the_rules_fire(monitored_pipeline, tmp_path):
    require(PROMETHEUS)
    exporter, prometheus = BackgroundProcess("exporter", tmp_path), BackgroundProcess("prometheus", tmp_path)
    exporter_port, prometheus_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{RULES_DIR / 'metrics_pipeline_rules.yml'}"]
scrape_configs:
  - job_name: metrics_pipeline
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
""")
    api = f"http://127.0.0.1:{prometheus_port}/api/v1"
    try:
        start_serving(exporter, [str(BIN / "metrics-pipeline"), "exporter", "--port", str(exporter_port)],
                      {**os.environ, **monitored_pipeline.env, "METRICS_EXPORTER_CACHE_SECONDS": "1"},
                      f"http://127.0.0.1:{exporter_port}/metrics")
        start_serving(prometheus, [str(PROMETHEUS), f"--config.file={config}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                   f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                      dict(os.environ), f"http://127.0.0.1:{prometheus_port}/-/ready")

        query = urllib.parse.quote('metrics_pipeline_kpi_value{metric="new_users",grain="day"}')
        (kpi,) = wait_for("a scraped KPI", lambda: get_json(f"{api}/query?query={query}")["data"]["result"])
        (newest,) = monitored_pipeline.sources.warehouse().metric_rows(["new_users"], "day", "2026-01-06", dimension="")
        assert float(kpi["value"][1]) == newest["value"] == 2
        assert kpi["metric"]["job"] == "metrics_pipeline"  # the scrape job's label, not one of the exporter's

        planted = {
            ("MetricsPipelinePartitionStale", "daily_activity_metrics"),  # newest day 2026-01-06, policy 27 h
            ("MetricsPipelineRunFailed", "daily_metrics_job"),  # the daily_ai_metrics run
            ("MetricsPipelineDataQualityAlertOpen", "freshness/high"),  # 15 stale tables
            ("MetricsPipelineSourceStale", "app.users"), ("MetricsPipelineSourceStale", "app.user_sessions"),
        }
        assert wait_for("the rules to fire", lambda: (found := alerts(api, "firing")) >= planted and found) == planted
        # every metric asset has closed partitions missing since METRICS_START_DATE: pending for 6 h first
        pending = alerts(api, "pending")
        assert {name for name, _ in pending} == {"MetricsPipelinePartitionsMissing"}
        assert ("MetricsPipelinePartitionsMissing", "daily_activity_metrics") in pending

        # every query of the Grafana dashboard is valid PromQL; those of the planted problems find them
        answers = {expr: get_json(f"{api}/query?query={urllib.parse.quote(expr.replace('$grain', 'day'))}")
                   for expr in dashboard_queries()}
        assert all(a["status"] == "success" for a in answers.values())
        values = {expr: [float(r["value"][1]) for r in a["data"]["result"]] for expr, a in answers.items()}
        assert values['metrics_pipeline_kpi_value{metric="sessions", grain="$grain"}'] == [3]
        assert values['count(metrics_pipeline_job_last_run_status{status="failure"} == 1) or vector(0)'] == [1]
        assert values["metrics_pipeline_exporter_up"] == [1, 1]
    finally:
        prometheus.stop()
        exporter.stop()
    assert not prometheus.alive() and not exporter.alive()
