"""`metrics-pipeline exporter`: the pipeline's health and headline KPIs on `/metrics`, in the
Prometheus text format, for the user's Prometheus to scrape (deploy/prometheus/prometheus.yml)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

import dagster as dg
from prometheus_client import CollectorRegistry, start_http_server

from metrics_pipeline import settings
from metrics_pipeline.monitoring.collector import PipelineCollector
from metrics_pipeline.monitoring.instance_readings import InstanceReading, read_instance
from metrics_pipeline.monitoring.warehouse_readings import WarehouseReading, read_warehouse


class InstanceReader:
    """Reads the Dagster instance, opening it at the first read (again after a failed open: the
    instance's database may be down when the exporter starts)."""

    def __init__(self, open_instance: Callable[[], dg.DagsterInstance]) -> None:
        self._open = open_instance
        self._instance: dg.DagsterInstance | None = None

    def __call__(self) -> InstanceReading:
        if self._instance is None:
            self._instance = self._open()
        return read_instance(self._instance)


def build_collector(open_instance: Callable[[], dg.DagsterInstance]) -> PipelineCollector:
    """The collector on the configured warehouse and instance; raises ConfigError on a bad knob."""
    url, kpis, breakdowns = settings.database_url("warehouse"), settings.exporter_kpis(), settings.exporter_breakdowns()
    timezone = settings.timezone_name()

    def warehouse() -> WarehouseReading:
        return read_warehouse(url, kpis, breakdowns, timezone)

    return PipelineCollector(warehouse, InstanceReader(open_instance), settings.exporter_cache_seconds(),
                             settings.source_freshness_hours() * 3600)


def start(host: str, port: int, collector: PipelineCollector) -> WSGIServer:
    """Serve `collector` on http://host:port/metrics from a background thread; `shutdown()` stops it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _thread = start_http_server(port, host, registry)
    return server


def serve_forever(host: str, port: int, open_instance: Callable[[], dg.DagsterInstance], log=print) -> None:
    """Serve until SIGTERM or SIGINT. Reads once before serving, so that the first scrape finds the
    instance open and the readings cached."""
    collector = build_collector(open_instance)
    for _ in collector.collect():
        pass
    server = start(host, port, collector)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log(f"serving pipeline metrics on http://{host}:{port}/metrics", flush=True)
    stop.wait()
    server.shutdown()
