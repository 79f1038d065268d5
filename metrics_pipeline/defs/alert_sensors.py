"""Sensors that deliver stored alerts and store run failures; both run by default.

`alert_delivery_sensor` reads `data_quality_alerts` itself, so WARN checks (which never fail a run)
and alerts written by CLI backfills are delivered like the rest. An alert is marked delivered only
once the webhook accepted it; while the webhook is down, the tick fails, the row stays undelivered
(attempts and error recorded) and the next tick tries again. Nothing is ever deleted.
"""

from __future__ import annotations

import dagster as dg

from metrics_pipeline.delivery import DeliveryError, post_json, slack_payload
from metrics_pipeline.resources import Warehouse
from metrics_pipeline.settings import alert_min_severity, alert_webhook_url

RETRIES = 3
BACKOFF_SECONDS = 2.0


def _finished(instance: dg.DagsterInstance, run_id: str | None) -> bool:
    """True once the alert's run has ended (runs of another instance, e.g. a CLI backfill elsewhere, count)."""
    run = instance.get_run_by_id(run_id) if run_id else None
    return run is None or run.is_finished


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Posts new data-quality alerts at or above METRICS_ALERT_MIN_SEVERITY (default high) of "
                       "finished runs to METRICS_ALERT_WEBHOOK_URL as one Slack-compatible message; retries, and "
                       "keeps undelivered alerts for the next tick while the webhook is down.")
def alert_delivery_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    url = alert_webhook_url()
    if url is None:
        return dg.SkipReason("METRICS_ALERT_WEBHOOK_URL is not set: alerts are stored in data_quality_alerts only")
    due = [a for a in warehouse.alerts_to_notify(alert_min_severity()) if _finished(context.instance, a["run_id"])]
    if not due:
        return dg.SkipReason("no new alerts to deliver")
    ids = [a["id"] for a in due]
    try:
        post_json(url, slack_payload(due), retries=RETRIES, backoff=BACKOFF_SECONDS)
    except DeliveryError as e:
        warehouse.mark_notify_failed(ids, str(e))
        context.log.warning(f"{len(ids)} alert(s) kept for the next tick: {e}")
        raise  # a failed tick in the UI: alerts are not reaching anyone
    warehouse.mark_notified(ids)
    return dg.SkipReason(f"delivered {len(ids)} alert(s)")


# monitor_all_code_locations: runs launched by `metrics-pipeline backfill` execute in process and
# carry no code location, so the default (this location's runs only) would never see them.
@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, monitor_all_code_locations=True,
                       description="Stores a `pipeline_failure` alert (severity high) for every failed run of the "
                                   "instance, naming job, partition range, failed step and error.")
def pipeline_failure_sensor(context: dg.RunFailureSensorContext, warehouse: Warehouse):
    run = context.dagster_run
    tags = run.tags
    first = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_start") or ""
    last = tags.get("dagster/asset_partition_range_end", first)
    partition = first if first == last else f"{first}..{last}"
    steps = context.get_step_failure_events()
    error = (steps[0].step_failure_data.error if steps else context.failure_event.event_specific_data.error)
    while error is not None and error.cause is not None:  # the user error under Dagster's wrapping
        error = error.cause
    reason = error.message.strip().splitlines()[0].split(": ", 1)[-1] if error else (
        context.failure_event.message or "unknown")
    failed_step = f" at step {steps[0].step_key}" if steps else ""
    warehouse.record_pipeline_failure(
        run.run_id, run.job_name, f"run {run.run_id[:8]} of {run.job_name} ({partition or 'no partition'}) "
                                  f"failed{failed_step}: {reason}", first)


ALERT_SENSORS = [alert_delivery_sensor, pipeline_failure_sensor]
