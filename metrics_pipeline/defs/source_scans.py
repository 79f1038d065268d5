"""What the daily source checks read from a source database (Great Expectations validation and
volume gaps), found once per run and, in a single-run backfill, while the assets compute.

A day range runs every asset first and every check after (a year on PostgreSQL: 58 s of assets,
then 27 s of checks, 19 s of them these scans). Inside `background_source_scans()` (the CLI's
in-process range runs) each daily asset starts its domain's scans on a background thread before it
computes, so they read the source database while the main thread waits on other queries; the
checks then only collect them. Elsewhere (the multiprocess executor runs each check in a process
of its own) a check scans when it runs. A scan that failed in the background is run again by its
check, so a missing table or a transient error takes the check's usual path (clear error, retry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import dagster as dg

from metrics_pipeline.contract import TABLES
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.metrics.periods import Period
from metrics_pipeline.metrics.spec import Domain
from metrics_pipeline.quality.volume import Gap, find_gaps
from metrics_pipeline.resources.database import SourceDatabase

EXPECTATIONS, GAPS = "source_expectations", "source_gaps"
CHECKS_READING = {EXPECTATIONS: ("source_expectations",), GAPS: ("source_volume", "metric_anomalies")}


def dimension_columns(domain: Domain, table: str) -> list[str]:
    """Breakdown columns of `table` with a small known set of values (platform, channel, status...)."""
    dims = {d for s in domain.specs if s.table == table for d in s.dims}
    present = {c.name for c in TABLES[table].present_columns}
    return sorted(d for d in dims & present if TABLES[table].column(d).allowed or d == "platform")


def find_domain_gaps(conn, domain: Domain, periods: list[Period]) -> list[Gap]:
    return [g for t in domain.tables_for("day")
            for g in find_gaps(conn, TABLES[t], dimension_columns(domain, t), periods)]


def _expectations(source: SourceDatabase, domain: Domain, periods: list[Period]):
    from metrics_pipeline.quality.expectations import validate_tables  # imports GX (~3 s)

    tables = domain.tables_for("day")
    with source.connect(tables):  # a clear error naming a missing database or table; notes dropped columns
        return validate_tables(source.url, [TABLES[t] for t in tables], periods)


def _gaps(source: SourceDatabase, domain: Domain, periods: list[Period]) -> list[Gap]:
    with source.connect(domain.tables_for("day")) as conn:
        return find_domain_gaps(conn, domain, periods)


SCANS: dict[str, Callable] = {EXPECTATIONS: _expectations, GAPS: _gaps}

_pool: ThreadPoolExecutor | None = None
_found: dict[tuple[str, str, str, str, str], Future] = {}  # (run id, scan, domain, first, last): the current run's


@contextmanager
def background_source_scans() -> Iterator[None]:
    """While open, daily assets start their checks' scans in a background thread (one at a time, so
    a source database gets at most one extra query). On exit scans not started are cancelled and a
    running one is waited for: nothing outlives the run."""
    global _pool
    # The scans import Great Expectations, which imports sqlalchemy.orm; that import registers
    # sqlalchemy's inspection hooks part-way through, and the main thread's queries call them (via
    # Dagster's event-log statements). Half-initialised, they fail ("partially initialized module
    # 'sqlalchemy.orm.exc'"), so sqlalchemy.orm is imported whole here, before the thread starts.
    import sqlalchemy.orm  # noqa: F401

    _pool = ThreadPoolExecutor(1, thread_name_prefix="source-scans")
    try:
        yield
    finally:
        pool, _pool = _pool, None
        pool.shutdown(wait=True, cancel_futures=True)
        _found.clear()


def _key(context, scan: str, domain: Domain, periods: list[Period]) -> tuple[str, str, str, str, str]:
    if any(k[0] != context.run.run_id for k in _found):  # only the current run's are kept
        _found.clear()
    return context.run.run_id, scan, domain.name, periods[0].key, periods[-1].key


def start_scans(context: dg.AssetExecutionContext, domain: Domain, periods: list[Period]) -> None:
    """Start, in the background, the scans of `domain`'s daily checks that this run executes
    (nothing outside `background_source_scans()`)."""
    if _pool is None:
        return
    selected = context.run.asset_check_selection  # None: every check of the job
    source = getattr(context.resources, resource_key(domain.database))
    for scan, checks in CHECKS_READING.items():
        if selected is not None and not any(dg.AssetCheckKey(context.asset_key, c) in selected for c in checks):
            continue
        key = _key(context, scan, domain, periods)
        if key not in _found:
            _found[key] = _pool.submit(SCANS[scan], source, domain, periods)


def scan_result(context: dg.AssetCheckExecutionContext, scan: str, domain: Domain, periods: list[Period]):
    """What `scan` found for `domain` over `periods` in this run: started in the background, or
    scanned now (once per run: the volume and anomaly checks share the gaps)."""
    key = _key(context, scan, domain, periods)
    found = _found.get(key)
    if found is not None and not found.cancelled() and found.exception() is None:
        return found.result()
    found = Future()
    found.set_result(SCANS[scan](getattr(context.resources, resource_key(domain.database)), domain, periods))
    _found[key] = found
    return found.result()
