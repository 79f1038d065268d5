"""Time scrapes of `metrics-pipeline exporter` on an existing deployment (README "Monitoring with
Prometheus and Grafana"): the environment names the instance and the warehouse as for the exporter
(DAGSTER_HOME, METRICS_WAREHOUSE_URL, METRICS_START_DATE, ...). Every scrape reads both afresh
(no cache), over HTTP like Prometheus; the first one also opens the Dagster instance.

    .venv/bin/python benchmarks/scrape_time.py [--scrapes 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import urllib.request
import warnings

from metrics_pipeline.cli import _instance
from metrics_pipeline.local_stack import free_port
from metrics_pipeline.monitoring import exporter


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scrapes", type=int, default=10)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    os.environ["METRICS_EXPORTER_CACHE_SECONDS"] = "0"
    port = free_port()
    server = exporter.start("127.0.0.1", port, exporter.build_collector(_instance))
    seconds, size = [], 0
    try:
        for _ in range(args.scrapes):
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
                page = response.read()
            seconds.append(time.perf_counter() - started)
            size = len(page)
    finally:
        server.shutdown()
        server.server_close()
    series = sum(1 for line in page.decode().splitlines() if line and not line.startswith("#"))
    print(f"{series} series, {size:,} bytes; first scrape (opens the instance) {seconds[0]:.3f} s; "
          f"then median {statistics.median(seconds[1:]):.3f} s, max {max(seconds[1:]):.3f} s "
          f"over {len(seconds) - 1} scrapes")


if __name__ == "__main__":
    main()
