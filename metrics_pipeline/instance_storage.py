"""Optional accelerator of range backfills: Dagster instance storage whose event log writes a run's
per-partition events (planned, materialized, check evaluations) in batches.

Everything works on Dagster's stock storage (SQLite, `dagster-postgres`, Dagster+); this only makes
the bookkeeping of a long single-run backfill cheaper (README "The Dagster instance" has the figures).
It keeps the stock tables and stores exactly the stock events, so an instance can switch between the
two at any time: set `storage: custom: {module: metrics_pipeline.instance_storage, class:
BatchedSqliteStorage | BatchedPostgresStorage}` (deploy/dagster-local.yaml, deploy/dagster.yaml), or
the stock `storage: sqlite` / `postgres` to turn it off.

Upgrade safety: the batching reaches into Dagster internals (metrics_pipeline/event_batches.py), tested
with the Dagster versions in `TESTED_DAGSTER_VERSIONS`. On any other version, or if those internals no
longer import, these classes keep Dagster's stock event log with one warning: the same events, at
the stock speed, never a crash (metrics_pipeline_tests/test_instance_storage.py proves it). The base
classes are the ones Dagster's own `storage: sqlite` and `storage: postgres` configuration load.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import pg_url_from_config

TESTED_DAGSTER_VERSIONS = frozenset({"1.13.27"})


# Events Dagster hands the storage in one batch: one multi-row INSERT (7 bound values a row, far below
# SQLite's limit). Dagster reads the variable per event, in the process that runs the steps.
EVENT_BATCH_SIZE = "1000"


def enable_event_batches() -> None:
    """Ask Dagster to hand asset events to the storage in batches: the batched storage writes each batch
    in one transaction, and stock dagster-postgres writes a batch of materializations in one INSERT (the
    stock SQLite storage writes them one by one, as without)."""
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)


class StockStorageFallbackWarning(UserWarning):
    """The batched storage runs as Dagster's stock storage on this Dagster version."""


@functools.cache
def batching_available() -> bool:
    """Whether the installed Dagster is one the batched event logs were tested with (and their
    internals import); warns once per process when not."""
    if dg.__version__ not in TESTED_DAGSTER_VERSIONS:
        reason = (f"Dagster {dg.__version__} is not a version it was tested with "
                  f"({', '.join(sorted(TESTED_DAGSTER_VERSIONS))})")
    else:
        try:
            import metrics_pipeline.event_batches  # noqa: F401, PLC0415 - Dagster internals, imported only here
            return True
        except (ImportError, AttributeError) as e:
            reason = f"its Dagster internals did not import ({type(e).__name__}: {e})"
    warnings.warn(f"metrics_pipeline.instance_storage: batched event writes are off because {reason}; the "
                  "instance runs on Dagster's stock event log (same events, stock speed).",
                  StockStorageFallbackWarning, stacklevel=2)
    return False


def writes_batches(instance: dg.DagsterInstance) -> bool:
    """Whether `instance`'s event log is a batched one (this module's storage, on a tested version)."""
    if not batching_available():
        return False
    from metrics_pipeline.event_batches import _BatchedEvents  # noqa: PLC0415

    return isinstance(instance.event_log_storage, _BatchedEvents)


def log_evaluations(context: dg.AssetCheckExecutionContext, evaluations: Sequence[dg.AssetCheckEvaluation]) -> None:
    """Log a check's per-partition evaluations: as one event batch where the instance writes batches,
    else one by one through Dagster's public `log_event` (the stock storages take no batch of them)."""
    if writes_batches(context.instance):
        from metrics_pipeline.event_batches import log_evaluation_batch  # noqa: PLC0415

        log_evaluation_batch(context, evaluations)
        return
    for evaluation in evaluations:
        context.op_execution_context.log_event(evaluation)


class BatchedSqliteStorage(DagsterSqliteStorage):
    """Dagster's embedded SQLite storage (same files under base_dir) with batched asset events."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data=inst_data)
        if batching_available():
            from metrics_pipeline.event_batches import sqlite_event_log  # noqa: PLC0415

            self._event_log_storage = sqlite_event_log(base_dir)
            enable_event_batches()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls.from_local(inst_data=inst_data, **config_value)


class BatchedPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres storage (same tables, same config keys) with batched asset events."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data)
        if batching_available():
            from metrics_pipeline.event_batches import BatchedPostgresEventLogStorage  # noqa: PLC0415

            self._event_log_storage = BatchedPostgresEventLogStorage(postgres_url, should_autocreate_tables)
            enable_event_batches()

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(pg_url_from_config(config_value), config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data)
