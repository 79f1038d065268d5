"""Alert delivery against a real local HTTP server (up, failing, down) and run-failure alerts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from metrics_pipeline import settings
from metrics_pipeline.alerts import Alert
from metrics_pipeline.defs import alert_sensors
from metrics_pipeline.defs.alert_sensors import alert_delivery_sensor, pipeline_failure_sensor
from metrics_pipeline.delivery import DeliveryError, slack_payload
from metrics_pipeline.resources import Warehouse


class Webhook:
    """A local webhook receiver recording JSON posts; `status` sets its answer."""

    def __init__(self):
        self.posts: list[dict] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hook.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch):
    hook = Webhook()
    monkeypatch.setenv("METRICS_ALERT_WEBHOOK_URL", hook.url)
    monkeypatch.setattr(alert_sensors, "BACKOFF_SECONDS", 0.01)
    yield hook
    hook.stop()


@pytest.fixture
def warehouse(tmp_path):
    w = Warehouse(url=f"sqlite:///{tmp_path}/warehouse.db")
    w.record_check_alerts(
        [Alert("data_drop", "high", "sessions dropped to 150", "2026-03-01", metric="sessions"),
         Alert("invalid_data", "medium", "2 bad rows", "2026-03-01", source_table="payments"),
         Alert("invariant_violation", "critical", "identity broken", "2026-03-02", metric="mrr")],
        asset="daily_activity_metrics", check_name="some_check", partition_keys=["2026-03-01", "2026-03-02"],
        run_id="cli-run")
    return w


def _tick(warehouse):
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
        return alert_delivery_sensor(context)


def test_alerts_at_or_above_the_level_are_posted_once(webhook, warehouse, monkeypatch):
    result = _tick(warehouse)
    assert "delivered 2 alert(s)" in result.skip_message
    (post,) = webhook.posts
    assert post["text"].startswith(":fire: metrics_pipeline: 2 data-quality alert(s), worst critical")
    sections = [b["text"]["text"] for b in post["blocks"][1:]]
    assert any("`data_drop` partition `2026-03-01`" in s and "sessions dropped to 150" in s for s in sections)
    assert not any("invalid_data" in s for s in sections)  # medium is below the default level (high)
    assert "no new alerts" in _tick(warehouse).skip_message and len(webhook.posts) == 1
    monkeypatch.setenv("METRICS_ALERT_MIN_SEVERITY", "medium")
    _tick(warehouse)
    assert "invalid_data" in json.dumps(webhook.posts[-1])


def test_a_failing_or_down_webhook_keeps_the_alerts_for_the_next_tick(webhook, warehouse, monkeypatch, capfd):
    webhook.status = 503
    with pytest.raises(DeliveryError, match="HTTP 503"):  # the tick fails, visibly
        _tick(warehouse)
    assert len(webhook.posts) == 1 + alert_sensors.RETRIES
    kept = [a for a in warehouse.alerts() if a["severity"] in ("high", "critical")]
    assert [(a["notified_at"], a["notify_attempts"]) for a in kept] == [(None, 1), (None, 1)]
    assert "HTTP 503" in kept[0]["notify_error"] and "127.0.0.1" in kept[0]["notify_error"]

    webhook.stop()  # down: connection refused
    with pytest.raises(DeliveryError, match="ConnectionError"):
        _tick(warehouse)
    kept = [a for a in warehouse.alerts() if a["severity"] != "medium"]
    assert {a["notify_attempts"] for a in kept} == {2} and len(warehouse.alerts()) == 3  # nothing lost
    logged = "".join(capfd.readouterr()) + "".join(a["notify_error"] for a in kept)
    assert "kept for the next tick" in logged and "secret-token" not in logged  # the URL's path is the secret

    back = Webhook()
    try:
        monkeypatch.setenv("METRICS_ALERT_WEBHOOK_URL", back.url)
        assert "delivered 2 alert(s)" in _tick(warehouse).skip_message
        assert len(back.posts) == 1
        assert all(a["notified_at"] is not None for a in warehouse.alerts() if a["severity"] != "medium")
    finally:
        back.stop()


def test_a_client_error_is_not_retried(webhook, warehouse):
    webhook.status = 404
    with pytest.raises(DeliveryError, match="after 1 attempt"):
        _tick(warehouse)
    assert len(webhook.posts) == 1


def test_a_long_list_is_capped_with_a_count_of_the_rest():
    alerts = [{"severity": "high", "alert_type": "data_drop", "partition_key": f"2026-03-{d:02}",
               "asset": "daily_activity_metrics", "metric": "sessions", "message": f"drop {d}"} for d in range(1, 26)]
    payload = slack_payload(alerts)
    assert payload["text"].endswith("25 data-quality alert(s), worst high")
    assert len(payload["blocks"]) == 1 + 20 + 1 and "and 5 more" in json.dumps(payload["blocks"][-1])


def test_alert_settings_are_validated(monkeypatch):
    monkeypatch.setenv("METRICS_ALERT_WEBHOOK_URL", "hooks.slack.com/services/x")
    with pytest.raises(settings.ConfigError, match="METRICS_ALERT_WEBHOOK_URL.*hooks.slack.com"):
        settings.alert_webhook_url()
    monkeypatch.setenv("METRICS_ALERT_MIN_SEVERITY", "urgent")
    with pytest.raises(settings.ConfigError, match="METRICS_ALERT_MIN_SEVERITY='urgent'"):
        settings.alert_min_severity()
    monkeypatch.setenv("METRICS_ALERT_MIN_SEVERITY", "Critical")
    assert settings.alert_min_severity() == "critical"


def test_without_a_webhook_alerts_stay_stored(warehouse, monkeypatch):
    monkeypatch.delenv("METRICS_ALERT_WEBHOOK_URL", raising=False)
    assert "not set" in _tick(warehouse).skip_message
    assert len(warehouse.alerts_to_notify("low")) == 3


def test_a_reopened_alert_is_delivered_again(webhook, warehouse):
    _tick(warehouse)
    again = Alert("data_drop", "high", "sessions dropped to 150", "2026-03-01", metric="sessions")
    kw = {"asset": "daily_activity_metrics", "check_name": "some_check", "partition_keys": ["2026-03-01"],
          "run_id": "r2"}
    warehouse.record_check_alerts([], **kw)  # fixed: resolved
    warehouse.record_check_alerts([again], **kw)  # back again
    _tick(warehouse)
    assert "sessions dropped to 150" in json.dumps(webhook.posts[-1]) and len(webhook.posts) == 2


def test_a_failed_run_is_stored_as_a_pipeline_failure(sources):
    """Through the sensor's own cursor logic, as the daemon runs it, on a CLI-style (in-process) run."""
    from metrics_pipeline.runner import run_range

    sources.execute("app", "DROP TABLE ai_requests")
    with dg.instance_for_test() as instance:
        def tick(cursor):
            return pipeline_failure_sensor.evaluate_tick(dg.build_sensor_context(
                instance=instance, cursor=cursor, repository_name="__repository__",
                resources={"warehouse": sources.warehouse()}))

        start = tick(None).cursor  # the first tick only places the cursor
        assert not run_range(sources.defs(), "day", ["2026-03-01", "2026-03-02"], instance).success
        tick(start)
        tick(start)  # the same failure evaluated twice is one alert
    (alert,) = [a for a in sources.warehouse().alerts() if a["alert_type"] == "pipeline_failure"]
    assert (alert["severity"], alert["partition_key"], alert["check_name"]) == ("high", "2026-03-01", "run_failure")
    assert "daily_metrics_job (2026-03-01..2026-03-02) failed at step daily_ai_metrics" in alert["message"]
    assert "has no table 'ai_requests'" in alert["message"]


def test_each_failed_run_is_its_own_alert(tmp_path):
    warehouse = Warehouse(url=f"sqlite:///{tmp_path}/warehouse.db")
    for run_id in ("run-a", "run-a", "run-b"):
        warehouse.record_pipeline_failure(run_id, "observe_sources_job", f"{run_id} failed", "")
    assert sorted((a["run_id"], a["occurrences"]) for a in warehouse.alerts_to_notify("high")) == [
        ("run-a", 2), ("run-b", 1)]
