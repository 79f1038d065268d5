"""Alert delivery: stored data-quality alerts as one Slack-compatible JSON message, posted with retries.

The message is `{"text": ..., "blocks": [...]}`, which Slack incoming webhooks render and other
chat tools (Mattermost, Rocket.Chat, most generic webhook receivers) accept as plain JSON.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import requests

MAX_LISTED = 20
RETRIED_STATUS = {429, 500, 502, 503, 504}
ICON = {"low": ":information_source:", "medium": ":warning:", "high": ":rotating_light:", "critical": ":fire:"}


class DeliveryError(RuntimeError):
    """The webhook did not accept the message after every retry."""


def redacted(url: str) -> str:
    """scheme://host of a webhook URL: its path is the secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


def _where(alert: dict) -> str:
    bits = [alert.get("asset"), alert.get("source_table") and f"table `{alert['source_table']}`",
            alert.get("column_name") and f"column `{alert['column_name']}`",
            alert.get("metric") and f"metric `{alert['metric']}`", alert.get("dimension")]
    return " · ".join(b for b in bits if b)


def slack_payload(alerts: Sequence[dict]) -> dict:
    """One message for `alerts`: a summary line, then one section per alert (at most MAX_LISTED)."""
    worst = max(alerts, key=lambda a: ("low", "medium", "high", "critical").index(a["severity"]))["severity"]
    text = f"{ICON[worst]} metrics_pipeline: {len(alerts)} data-quality alert(s), worst {worst}"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]
    for a in alerts[:MAX_LISTED]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"{ICON[a['severity']]} *{a['severity']}* `{a['alert_type']}` partition `{a['partition_key'] or '-'}`"
            f" ({_where(a)})\n{a['message']}")}})
    if len(alerts) > MAX_LISTED:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"…and {len(alerts) - MAX_LISTED} more: `metrics-pipeline alerts --open`")}]})
    return {"text": text, "blocks": blocks}


def post_json(url: str, payload: dict, retries: int = 3, backoff: float = 2.0, timeout: float = 10.0) -> None:
    """POST `payload`; connection errors, timeouts, 429 and 5xx are retried with exponential backoff
    (backoff, 2 x backoff, ...); other 4xx are not. Raises DeliveryError naming the host, not the path."""
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            response = requests.post(url, json=payload, timeout=timeout)
        except requests.RequestException as e:
            problem = f"{type(e).__name__}"
            continue
        if response.status_code < 300:
            return
        problem = f"HTTP {response.status_code}"
        if response.status_code not in RETRIED_STATUS:
            break
    raise DeliveryError(f"webhook {redacted(url)} failed after {attempt + 1} attempt(s): {problem}")
