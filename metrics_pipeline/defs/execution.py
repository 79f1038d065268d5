"""How assets run: a concurrency pool per source database, retries of transient database errors,
and the automation condition of the assets computed from other assets."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TypeVar

import dagster as dg

from metrics_pipeline.resources.database import is_transient
from metrics_pipeline.settings import late_data_lookback_days, source_retries, source_retry_delay_seconds


def source_pool(database: str) -> str:
    """The Dagster pool of every step that queries `database`: the instance caps its concurrent steps
    (deploy/dagster.yaml), so no source database gets more than that many queries at once."""
    return f"source_db_{database}"


F = TypeVar("F", bound=Callable)


def retry_transient(compute: F) -> F:
    """Retry the step after a transient database error (dropped connection, server restarting,
    serialization failure, SQLite busy), METRICS_SOURCE_RETRIES times with doubling waits from
    METRICS_SOURCE_RETRY_DELAY_SECONDS. Anything else (a bad query, a missing table) fails at once.

    Each attempt replaces whole partitions in one warehouse transaction, so a retried step never
    leaves duplicated or half-written rows.
    """

    @functools.wraps(compute)
    def _attempt(context, *args, **kwargs):
        try:
            return compute(context, *args, **kwargs)
        except Exception as e:
            if not is_transient(e):
                raise
            retries, wait = source_retries(), source_retry_delay_seconds() * 2 ** context.retry_number
            context.log.warning(f"transient database error (attempt {context.retry_number + 1} of {retries + 1}); "
                                f"retrying in {wait:g} s: {str(e).strip().splitlines()[0]}")
            raise dg.RetryRequested(max_retries=retries, seconds_to_wait=wait) from e

    return _attempt  # type: ignore[return-value]


# Assets computed from other assets (derived ratios, KPI summary, snapshots, exports) follow their
# upstreams: when an upstream partition is re-materialized (a manual run, a late-data run, a backfill
# of one domain), the automation sensor requests the same partitions downstream once every upstream
# is done. Eager only looks at the latest partition; late data reaches further back, so the window
# is widened to the late-data look-back.
FOLLOW_UPSTREAM = dg.AutomationCondition.eager().replace(
    "in_latest_time_window",
    dg.AutomationCondition.in_latest_time_window(dt.timedelta(days=late_data_lookback_days())),
)
