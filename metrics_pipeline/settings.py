"""Configuration from environment variables (SOURCES.md), with embedded SQLite defaults.

Every knob of the project is read here, so the README's configuration table and the code agree.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from metrics_pipeline.contract import DATABASES

DEFAULT_START_DATE = "2025-01-01"
DEFAULT_TIMEZONE = "UTC"


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def data_dir() -> Path:
    """Folder of the embedded SQLite databases, made absolute so every Dagster process agrees."""
    return Path(os.environ.get("METRICS_DATA_DIR", "./data")).resolve()


def _url_env(name: str) -> str:
    return f"METRICS_{name.upper()}_DB_URL" if name != "warehouse" else "METRICS_WAREHOUSE_URL"


def database_url(name: str) -> str:
    """SQLAlchemy URL of a source database (`app`, ...) or of the `warehouse`."""
    url = os.environ.get(_url_env(name))
    if url:
        return url
    return f"sqlite:///{data_dir() / f'{name}.db'}"


def url_env_var(name: str) -> str:
    """Name of the environment variable that configures database `name`."""
    return _url_env(name)


def source_urls() -> dict[str, str]:
    return {name: database_url(name) for name in DATABASES}


def start_date() -> dt.date:
    raw = os.environ.get("METRICS_START_DATE", DEFAULT_START_DATE)
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"METRICS_START_DATE={raw!r} is not a date in YYYY-MM-DD form") from None


def timezone_name() -> str:
    raw = os.environ.get("METRICS_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"METRICS_TIMEZONE={raw!r} is not an IANA time zone name") from None
    return raw


@dataclass(frozen=True)
class PartitionSettings:
    start: dt.date
    timezone: str


def partition_settings() -> PartitionSettings:
    return PartitionSettings(start_date(), timezone_name())


EXPORT_URI_ENV = "METRICS_EXPORT_URI"
EXPORT_S3_ENDPOINT_ENV = "METRICS_EXPORT_S3_ENDPOINT_URL"


def export_uri() -> str:
    """`METRICS_EXPORT_URI` (`s3://bucket/prefix` or a folder), default `$METRICS_DATA_DIR/exports`."""
    return os.environ.get(EXPORT_URI_ENV) or str(data_dir() / "exports")


def export_s3_endpoint_url() -> str | None:
    """`METRICS_EXPORT_S3_ENDPOINT_URL` for S3-compatible stores (MinIO, R2, moto); None means AWS."""
    return os.environ.get(EXPORT_S3_ENDPOINT_ENV) or None


# Schedules: when each grain's job runs, in METRICS_TIMEZONE (cron syntax).
DEFAULT_CRONS = {"hour": "5 * * * *", "day": "0 1 * * *", "week": "0 2 * * 1", "month": "0 4 1 * *"}
CRON_ENV = {"hour": "METRICS_HOURLY_CRON", "day": "METRICS_DAILY_CRON", "week": "METRICS_WEEKLY_CRON",
            "month": "METRICS_MONTHLY_CRON"}


def schedule_cron(grain: str) -> str:
    """The cron of `grain`'s schedule: METRICS_<HOURLY|DAILY|WEEKLY|MONTHLY>_CRON or the default."""
    from dagster._utils.schedules import is_valid_cron_string  # noqa: PLC0415 - dagster's own validator

    raw = os.environ.get(CRON_ENV[grain], DEFAULT_CRONS[grain])
    if not is_valid_cron_string(raw):
        raise ConfigError(f"{CRON_ENV[grain]}={raw!r} is not a valid cron expression (e.g. {DEFAULT_CRONS[grain]!r})")
    return raw


FRESHNESS_ENV = "METRICS_SOURCE_FRESHNESS_HOURS"


LOOKBACK_ENV = "METRICS_LATE_DATA_LOOKBACK_DAYS"


def _number(env: str, default: str, unit: str, *, allow_zero: bool = False) -> float:
    raw = os.environ.get(env, default)
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value < 0 or (value == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigError(f"{env}={raw!r} must be a {kind} number of {unit}")
    return value


def source_freshness_hours() -> float:
    """How old a source table's newest `updated_at` may be before a freshness alert (default 26 h)."""
    return _number(FRESHNESS_ENV, "26", "hours")


def late_data_lookback_days() -> float:
    """How far back the late-data sensor re-materializes changed partitions (default 35 days)."""
    return _number(LOOKBACK_ENV, "35", "days")


LATE_INTERVAL_ENV = "METRICS_LATE_DATA_INTERVAL_SECONDS"


def late_data_interval_seconds() -> int:
    """How often the late-data sensor looks for changed source rows (default every 300 s)."""
    return int(_number(LATE_INTERVAL_ENV, "300", "seconds"))


RETRIES_ENV = "METRICS_SOURCE_RETRIES"
RETRY_DELAY_ENV = "METRICS_SOURCE_RETRY_DELAY_SECONDS"


def source_retries() -> int:
    """How many times a step is retried after a transient database error (default 3; 0 disables)."""
    value = _number(RETRIES_ENV, "3", "retries", allow_zero=True)
    if value != int(value):
        raise ConfigError(f"{RETRIES_ENV}={os.environ[RETRIES_ENV]!r} must be a whole number of retries")
    return int(value)


def source_retry_delay_seconds() -> float:
    """Wait before the first retry; each further retry waits twice as long (default 10 s)."""
    return _number(RETRY_DELAY_ENV, "10", "seconds", allow_zero=True)


WEBHOOK_ENV = "METRICS_ALERT_WEBHOOK_URL"
MIN_SEVERITY_ENV = "METRICS_ALERT_MIN_SEVERITY"


def alert_webhook_url() -> str | None:
    """Where the alert sensor posts Slack-compatible messages; None leaves alerts stored only."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{WEBHOOK_ENV} must be an http(s) URL, got {url.split('?')[0][:40]!r}")
    return url or None


def alert_min_severity() -> str:
    """The lowest severity delivered to the webhook (default `high`)."""
    from metrics_pipeline.alerts import SEVERITIES  # noqa: PLC0415 - settings stays import-light

    value = os.environ.get(MIN_SEVERITY_ENV, "high").strip().lower()
    if value not in SEVERITIES:
        raise ConfigError(f"{MIN_SEVERITY_ENV}={value!r} must be one of {', '.join(SEVERITIES)}")
    return value


EXPORTER_CACHE_ENV = "METRICS_EXPORTER_CACHE_SECONDS"
EXPORTER_KPIS_ENV = "METRICS_EXPORTER_KPIS"
EXPORTER_BREAKDOWNS_ENV = "METRICS_EXPORTER_BREAKDOWNS"
# The headline numbers the replaced services exported: users, revenue, subscriptions, AI, messaging, ads.
DEFAULT_EXPORTER_KPIS = ("active_users", "new_users", "sessions", "gross_revenue", "net_revenue", "mrr",
                         "active_subscribers", "ai_requests", "ai_tokens", "ai_cost", "ai_success_rate",
                         "messages_sent", "delivery_rate", "ad_spend")


def exporter_cache_seconds() -> float:
    """How long the Prometheus exporter reuses what it read before reading again (default 5 s; 0: every scrape)."""
    return _number(EXPORTER_CACHE_ENV, "5", "seconds", allow_zero=True)


def _names(env: str, default: tuple[str, ...], known: set[str], what: str) -> tuple[str, ...]:
    raw = os.environ.get(env)
    names = default if raw is None else tuple(n.strip() for n in raw.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"{env}: unknown {what} {', '.join(map(repr, unknown))} (see METRICS.md)")
    return names


def exporter_kpis() -> tuple[str, ...]:
    """The metrics whose newest totals the exporter publishes (default DEFAULT_EXPORTER_KPIS)."""
    from metrics_pipeline.metrics.catalog import all_metrics  # noqa: PLC0415 - settings stays import-light

    return _names(EXPORTER_KPIS_ENV, DEFAULT_EXPORTER_KPIS, {m.name for m in all_metrics()}, "metric(s)")


def exporter_breakdowns() -> tuple[str, ...]:
    """Breakdowns (e.g. `platform,plan`) the exporter also publishes for its KPIs; none by default."""
    from metrics_pipeline.metrics.catalog import all_metrics  # noqa: PLC0415 - settings stays import-light

    return _names(EXPORTER_BREAKDOWNS_ENV, (), {d for m in all_metrics() for d in m.dims}, "breakdown(s)")
