"""The pipeline as Prometheus series: read on scrape, each component's reading (the warehouse, the
Dagster instance) kept for a few seconds so that several scrapers cost one read.

A component that cannot be read loses its series for as long as it fails, and
`metrics_pipeline_exporter_up{component}` is 0 with the reason beside it: a scrape never fails
because a database is down. Names follow Prometheus conventions: the `metrics_pipeline_` prefix,
seconds, Unix timestamps as `_timestamp_seconds`, no `_total` (nothing here is a counter).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metrics_pipeline.monitoring.instance_readings import FINISHED, InstanceReading
from metrics_pipeline.monitoring.warehouse_readings import WarehouseReading

log = logging.getLogger(__name__)
PREFIX = "metrics_pipeline_"
REASON_LENGTH = 200
READ_TIMEOUT_SECONDS = 4.0  # per component: two reads stay within Prometheus's default 10 s scrape timeout
T = TypeVar("T")


@dataclass(frozen=True)
class Read(Generic[T]):
    value: T | None  # None when the read failed
    reason: str  # why it failed; "" when it worked
    at: float  # Unix time of the read
    duration: float  # seconds the read took


def failure_reason(error: BaseException) -> str:
    """One line naming what went wrong (the driver's own message for a database error)."""
    cause = error.orig if isinstance(error, sa.exc.DBAPIError) and error.orig is not None else error
    text = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {text}"[:REASON_LENGTH]


class CachedRead(Generic[T]):
    """`read()` redone when the last one is `cache_seconds` old, one read at a time, in a thread of
    its own: a read that takes longer than `timeout` seconds (a database that does not answer; the
    Dagster instance retries an unreachable PostgreSQL for about 12 s) counts as failed, so a scrape
    always answers within Prometheus's timeout, and its result, when it comes, serves the next scrape.
    A failure is kept as its reason (and logged) for `cache_seconds` too."""

    def __init__(self, component: str, read: Callable[[], T], cache_seconds: float,
                 clock: Callable[[], float] = time.time, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.component, self._read, self.cache_seconds, self.timeout = component, read, cache_seconds, timeout
        self._clock = clock
        self._last: Read[T] | None = None
        self._pending: Future[Read[T]] | None = None
        self._lock = threading.Lock()

    def get(self) -> Read[T]:
        with self._lock:
            if self._last is not None and self._clock() - self._last.at < self.cache_seconds:
                return self._last
            if self._pending is None:
                self._pending = Future()
                threading.Thread(target=self._fresh, args=(self._pending,), daemon=True,
                                 name=f"read-{self.component}").start()
            try:
                self._last, self._pending = self._pending.result(timeout=self.timeout), None
            except FutureTimeout:
                self._last = Read(None, f"TimeoutError: no answer within {self.timeout:g} s", self._clock(),
                                  self.timeout)
            return self._last

    def _fresh(self, future: Future[Read[T]]) -> None:
        started, began = self._clock(), time.perf_counter()
        try:
            value, reason = self._read(), ""
        except Exception as e:  # noqa: BLE001 - any failure becomes `up 0` and its reason, never a failed scrape
            value, reason = None, failure_reason(e)
            log.warning("cannot read the %s: %s", self.component, reason)
        future.set_result(Read(value, reason, started, time.perf_counter() - began))


def gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, labels=labels)


class PipelineCollector(Collector):
    """Collects the exporter's own health, the warehouse's KPIs and alerts, and the instance's
    asset, job and source health, from the cached readings."""

    def __init__(self, warehouse: Callable[[], WarehouseReading], instance: Callable[[], InstanceReading],
                 cache_seconds: float, source_freshness_seconds: float, clock: Callable[[], float] = time.time):
        self.warehouse = CachedRead("warehouse", warehouse, cache_seconds, clock)
        self.instance = CachedRead("instance", instance, cache_seconds, clock)
        self.source_freshness_seconds = source_freshness_seconds
        self._clock = clock

    def describe(self) -> list[Metric]:
        return []  # registering must not read the databases

    def collect(self) -> Iterator[Metric]:
        reads = {"warehouse": self.warehouse.get(), "instance": self.instance.get()}
        yield from exporter_families(reads)
        if reads["warehouse"].value is not None:
            yield from warehouse_families(reads["warehouse"].value)
        if reads["instance"].value is not None:
            yield from instance_families(reads["instance"].value, self._clock())
        threshold = gauge("source_freshness_threshold_seconds",
                          "How old a source table's newest updated_at may get (METRICS_SOURCE_FRESHNESS_HOURS).", [])
        threshold.add_metric([], self.source_freshness_seconds)
        yield threshold


def exporter_families(reads: dict[str, Read]) -> Iterator[Metric]:
    up = gauge("exporter_up", "1 if the exporter's last read of the component (warehouse, instance) worked, "
                              "else 0 and its series are absent.", ["component"])
    error = gauge("exporter_read_error_info", "Why the last read of a component failed (present only then).",
                  ["component", "reason"])
    duration = gauge("exporter_read_duration_seconds", "How long the last read of a component took.", ["component"])
    at = gauge("exporter_read_timestamp_seconds", "When the component was last read (reads are cached).",
               ["component"])
    for component, read in reads.items():
        up.add_metric([component], 0 if read.reason else 1)
        if read.reason:
            error.add_metric([component, read.reason], 1)
        duration.add_metric([component], read.duration)
        at.add_metric([component], read.at)
    yield from (up, error, duration, at)


def warehouse_families(reading: WarehouseReading) -> Iterator[Metric]:
    value = gauge("kpi_value", "The newest period's total of a headline metric (METRICS.md units: USD, "
                               "fraction 0..1, count), whatever its age.", ["metric", "grain"])
    start = gauge("kpi_period_start_timestamp_seconds", "Start of the period kpi_value is for.", ["metric", "grain"])
    breakdown = gauge("kpi_breakdown_value", "kpi_value by breakdown value, for METRICS_EXPORTER_BREAKDOWNS.",
                      ["metric", "grain", "dimension", "dimension_value"])
    for kpi in reading.kpis:
        if kpi.dimension:
            if kpi.value is not None:
                breakdown.add_metric([kpi.metric, kpi.grain, kpi.dimension, kpi.dimension_value], kpi.value)
            continue
        start.add_metric([kpi.metric, kpi.grain], kpi.period_start)
        if kpi.value is not None:  # a ratio over zero has no value
            value.add_metric([kpi.metric, kpi.grain], kpi.value)
    alerts = gauge("data_quality_alerts_open", "Open rows of data_quality_alerts.", ["alert_type", "severity"])
    for (alert_type, severity), count in reading.open_alerts.items():
        alerts.add_metric([alert_type, severity], count)
    yield from (value, start, breakdown, alerts)


def instance_families(reading: InstanceReading, now: float) -> Iterator[Metric]:
    yield from asset_families(reading, now)
    yield from job_families(reading)
    yield from source_families(reading)


def asset_families(reading: InstanceReading, now: float) -> Iterator[Metric]:
    labels = ["asset", "grain"]
    age = gauge("asset_partition_age_seconds", "Time since the end of the asset's newest materialized partition.",
                labels)
    missing = gauge("asset_missing_partitions", "Closed partitions since METRICS_START_DATE never materialized.",
                    labels)
    window = gauge("asset_freshness_fail_window_seconds", "The asset's freshness policy: the partition age at "
                                                          "which it is stale.", labels)
    materialized = gauge("asset_materialization_success", "1 if the asset's latest materialization attempt "
                                                          "succeeded, 0 if it failed.", labels)
    checks = gauge("asset_check_passed", "1 if the check's latest evaluation passed, 0 if it failed.",
                   [*labels, "check"])
    for asset in reading.assets:
        key = [asset.asset, asset.grain]
        if asset.newest_partition_end is not None:
            age.add_metric(key, now - asset.newest_partition_end)
        missing.add_metric(key, asset.missing_partitions)
        if asset.fail_window is not None:
            window.add_metric(key, asset.fail_window)
        if asset.last_materialization_ok is not None:
            materialized.add_metric(key, int(asset.last_materialization_ok))
        for check, passed in asset.checks.items():
            checks.add_metric([*key, check], int(passed))
    yield from (age, missing, window, materialized, checks)


def job_families(reading: InstanceReading) -> Iterator[Metric]:
    status = gauge("job_last_run_status", "1 for the status (success, failure, canceled) of the job's last "
                                          "finished run, 0 for the others.", ["job_name", "status"])
    start = gauge("job_last_run_start_timestamp_seconds", "When the job's last finished run started.", ["job_name"])
    duration = gauge("job_last_run_duration_seconds", "How long the job's last finished run took.", ["job_name"])
    for run in reading.jobs:
        for state in FINISHED:
            status.add_metric([run.job, state.value.lower()], int(state.value.lower() == run.status))
        start.add_metric([run.job], run.start)
        duration.add_metric([run.job], run.duration)
    yield from (status, start, duration)


def source_families(reading: InstanceReading) -> Iterator[Metric]:
    labels = ["database", "table"]
    rows = gauge("source_rows", "Rows of the source table at its latest observation.", labels)
    newest = gauge("source_newest_update_timestamp_seconds", "The table's newest updated_at at its latest "
                                                             "observation.", labels)
    observed = gauge("source_observed_timestamp_seconds", "When observe_sources_job last observed the table.",
                     labels)
    for source in reading.sources:
        key = [source.database, source.table]
        rows.add_metric(key, source.rows)
        if source.newest_update is not None:
            newest.add_metric(key, source.newest_update)
        observed.add_metric(key, source.observed_at)
    yield from (rows, newest, observed)
