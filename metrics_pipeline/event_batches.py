"""The batched event logs behind metrics_pipeline/instance_storage.py: Dagster's SQLite and PostgreSQL
event logs writing a run's per-partition events in batches.

A single-run backfill of a year of hours plans and materializes 8,760 partitions per asset, and
Dagster records one event per partition twice over (planned, then materialized); a year of days
adds one check evaluation per check and day. Dagster hands asset events to the storage in batches
when `DAGSTER_EVENT_BATCH_SIZE` is set, but its SQLite storage then writes them one at a time (two
or three connections and commits per event, 8-13 ms each on this machine) and dagster-postgres
batches only materializations and observations. The subclasses here write each batch with one
executemany per table in one transaction, and `log_evaluation_batch` hands Dagster a check's
per-partition results as such a batch: a range's bookkeeping becomes small next to its SQL
(before/after in benchmarks/results/fixes.md).

No library offers this; the subclasses use Dagster's own statements and index writes
(`_event_to_row`, `_store_asset_event_tags`, `_store_asset_event`, `_update_asset_check_evaluation`,
`_store_asset_check_evaluation_planned`), so what is stored is exactly what the stock classes store
(metrics_pipeline_tests/test_instance_storage.py compares the two) and an instance can switch
between them at any time. These are Dagster internals: this module is imported only on the Dagster
versions instance_storage.py was tested with, which falls back to the stock event logs otherwise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cached_property

from dagster import AssetCheckEvaluation
from dagster._core.events import (
    ASSET_EVENTS, DagsterEvent, DagsterEventBatchMetadata, DagsterEventType, generate_event_batch_id,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import _event_logs_directory
from dagster._serdes import serialize_value
from dagster_postgres.event_log import PostgresEventLogStorage
from sqlalchemy import and_, bindparam
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

# Shard engines kept by a process (the index shard and the latest runs'); NullPool: no open files.
CACHED_SHARDS = 16
def log_evaluation_batch(context, evaluations: Sequence[AssetCheckEvaluation]) -> None:
    """Log a check's per-partition evaluations as one event batch, as Dagster logs a range's
    materializations (the public `log_event` would store them one at a time: 8-13 ms each, most of
    a year-long daily backfill's bookkeeping). Each is a normal ASSET_CHECK_EVALUATION event."""
    step_context = context.op_execution_context._step_execution_context
    batch_id = generate_event_batch_id()
    for i, evaluation in enumerate(evaluations):
        DagsterEvent.from_step(
            DagsterEventType.ASSET_CHECK_EVALUATION, step_context, evaluation,
            message=f"Asset check '{evaluation.check_name}' on '{evaluation.asset_key.to_user_string()}' "
                    f"partition {evaluation.partition}: {'passed' if evaluation.passed else 'did not pass'}.",
            batch_metadata=DagsterEventBatchMetadata(batch_id, i == len(evaluations) - 1))


def _batched_kind(event: EventLogEntry) -> str | None:
    """"asset" (materialized, planned, observed) or "check" (a check's evaluation): written in batches."""
    if not event.is_dagster_event:
        return None
    if event.dagster_event_type in ASSET_EVENTS and event.get_dagster_event().asset_key:
        return "asset"
    return "check" if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION else None


def _store_batched(storage, events: Sequence[EventLogEntry], write_batch) -> None:
    """Write each stretch of same-kind events of one run with `write_batch`; anything else (check
    planned events travel in the planned batch) one by one as Dagster would, keeping their order."""
    pending: list[EventLogEntry] = []
    for event in events:
        kind = _batched_kind(event)
        if pending and (kind != _batched_kind(pending[0]) or event.run_id != pending[0].run_id):
            write_batch(pending)
            pending = []
        if kind:
            pending.append(event)
        else:
            storage.store_event(event)
    if pending:
        write_batch(pending)


_INSERT_EVENTS = SqlEventLogStorageTable.insert()
_INSERT_EVENTS_RETURNING_IDS = _INSERT_EVENTS.returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)


def _store_index_rows(storage, conn, events: Sequence[EventLogEntry], rows: Sequence[dict]) -> None:
    """Insert `events` (as `rows`, Dagster's `_event_to_row`) into the event table `conn` points at,
    then what Dagster indexes for them.

    The rows go in as one executemany of a statement compiled once (Dagster's own batch statement is
    one INSERT with a VALUES row per event, compiled anew per batch: 0.2 ms an event), and come back
    with their ids in the events' order. Asset events: their tags, and the asset row (latest
    materialization, planned run...) written once per asset and event type with the last event of the batch, which
    is what writing them one by one leaves. Check evaluations: Dagster's update of each check's
    execution row, as one executemany (`_update_check_executions`) or else Dagster's own per-event
    update, run inside this transaction (`storage.index_connection` yields `conn`).
    """
    ids = [row[0] for row in conn.execute(_INSERT_EVENTS_RETURNING_IDS, rows)]
    if _batched_kind(events[0]) == "check":
        if _update_check_executions(storage, conn, events, ids):
            return
        storage.shared.conn = conn
        try:  # what store_asset_check_event does for a run's evaluation, minus its per-event schema probe
            for event, event_id in zip(events, ids, strict=True):
                storage._update_asset_check_evaluation(event, event_id)
        finally:
            storage.shared.conn = None
        return
    storage._store_asset_event_tags(conn, events, ids)
    last: dict[tuple, tuple[EventLogEntry, int]] = {}
    for event, event_id in zip(events, ids, strict=True):
        last[(event.get_dagster_event().asset_key, event.dagster_event_type)] = (event, event_id)
    for event, event_id in last.values():
        storage._store_asset_event(conn, event, event_id)


_CHECK_EXECUTION_UPDATE = AssetCheckExecutionsTable.update().where(and_(
    AssetCheckExecutionsTable.c.asset_key == bindparam("b_asset_key"),
    AssetCheckExecutionsTable.c.check_name == bindparam("b_check_name"),
    AssetCheckExecutionsTable.c.run_id == bindparam("b_run_id"),
    AssetCheckExecutionsTable.c.partition == bindparam("b_partition"),
)).values(
    execution_status=bindparam("b_status"), evaluation_event=bindparam("b_event"),
    evaluation_event_timestamp=bindparam("b_timestamp"), evaluation_event_storage_id=bindparam("b_event_id"),
    materialization_event_storage_id=bindparam("b_materialization_id"),
)


def _update_check_executions(storage, conn, events: Sequence[EventLogEntry], ids: Sequence[int]) -> bool:
    """Dagster's `_update_asset_check_evaluation` for a batch of partitioned evaluations, as one
    executemany of its UPDATE (one statement built per event cost 0.5 ms). False, and nothing to
    undo, if some evaluation has no planned row to update or no partition: the caller then hands
    each event to Dagster, which updates again (the same values) or inserts the missing row."""
    params = []
    for event, event_id in zip(events, ids, strict=True):
        evaluation = event.get_dagster_event().event_specific_data
        if evaluation.partition is None:
            return False
        target = evaluation.target_materialization_data
        params.append({
            "b_asset_key": evaluation.asset_key.to_string(), "b_check_name": evaluation.check_name,
            "b_run_id": event.run_id, "b_partition": evaluation.partition,
            "b_status": (AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed
                         else AssetCheckExecutionRecordStatus.FAILED).value,
            "b_event": serialize_value(event), "b_timestamp": storage._event_insert_timestamp(event),
            "b_event_id": event_id, "b_materialization_id": target.storage_id if target else None})
    updated = conn.execute(_CHECK_EXECUTION_UPDATE, params).rowcount
    return conn.dialect.supports_sane_multi_rowcount and updated == len(params)


class _BatchedEvents:
    """Mixin of both event logs: batches go to the subclass's `_write_batch`; while one is written
    (`shared.conn` set, per thread), Dagster's own index writes for each event join its transaction
    instead of opening a connection each."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        _store_batched(self, events, self._write_batch)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's rows for a check planned over a range, one per partition, with the planned event
        serialized once instead of once per row, inserted as one executemany instead of one statement
        compiled with a VALUES row per partition (8,760 hours: 2 s per check)."""
        planned = event.get_dagster_event().event_specific_data
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = {"asset_key": planned.asset_key.to_string(), "check_name": planned.check_name,
                  "run_id": event.run_id, "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
                  "evaluation_event": serialize_value(event),
                  "evaluation_event_timestamp": self._event_insert_timestamp(event),
                  "evaluation_event_storage_id": event_id}
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [common | {"partition": key} for key in keys])

    def index_connection(self):
        conn = getattr(self.shared, "conn", None)
        return nullcontext(conn) if conn is not None else super().index_connection()

    @cached_property
    def shared(self) -> threading.local:
        return threading.local()


class BatchedSqliteEventLogStorage(_BatchedEvents, SqliteEventLogStorage):
    """SQLite event log: a batch goes to the run's shard and the cross-run index shard in one commit
    each, and each shard's engine is made once (the stock class builds one per statement, which also
    throws away SQLAlchemy's compiled-statement cache: about 1 ms per event)."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data=inst_data)
        self._engines: OrderedDict[str, Engine] = OrderedDict()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(self.conn_string_for_shard(shard), poolclass=NullPool,
                                       connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
            self._engines[shard] = engine  # most recently used last
            while len(self._engines) > CACHED_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
            with engine.connect() as conn, conn.begin():
                yield conn

    def _write_batch(self, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(_INSERT_EVENTS, rows)
        with self.index_transaction() as conn:
            _store_index_rows(self, conn, events, rows)


class BatchedPostgresEventLogStorage(_BatchedEvents, PostgresEventLogStorage):
    """PostgreSQL event log: a batch of asset events (planned ones included) or check evaluations in
    one transaction."""

    def _write_batch(self, events: Sequence[EventLogEntry]) -> None:
        with self.index_transaction() as conn:
            _store_index_rows(self, conn, events, [self._event_to_row(event) for event in events])


def sqlite_event_log(base_dir: str) -> BatchedSqliteEventLogStorage:
    """The batched event log of a SQLite instance whose home is `base_dir` (the stock one's files)."""
    return BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))
