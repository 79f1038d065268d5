"""Shared fixtures: a PostgreSQL server for the session, and per-test source/warehouse databases."""

from __future__ import annotations

import pytest

from metrics_pipeline_tests.postgres_server import PostgresServer


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL 15 server (TimeZone not UTC) started for the test session. Never skipped."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url_factory(postgres_server):
    """Call with a prefix to get the URL of a fresh, empty database on the session's server."""
    return postgres_server.create_database


# Kinds of hand-built sources: backend, then what differs from primary keys only and `timestamp`.
# The hand-computed metric tests run on all of them (SOURCE_KINDS_ALL), other tests on the first two.
SOURCE_KINDS = ["sqlite", "postgres"]
SOURCE_KINDS_ALL = [*SOURCE_KINDS, "sqlite-indexed", "postgres-timestamptz"]
every_source_kind = pytest.mark.parametrize("sources", SOURCE_KINDS_ALL, indirect=True)


@pytest.fixture(params=SOURCE_KINDS)
def sources(request, tmp_path):
    """Empty contract tables for the four sources plus a warehouse, on SQLite and on PostgreSQL.

    Primary keys only, unless the kind says `-indexed` (the contract's indexes) or `-timestamptz`
    (PostgreSQL timestamps `timestamp with time zone`, on the test server's non-UTC TimeZone).
    """
    from metrics_pipeline.contract import DATABASES
    from metrics_pipeline.resources.engines import dispose_engines
    from metrics_pipeline_tests.sources import Sources

    backend, _, variant = request.param.partition("-")
    options = {"indexes": "contract" if variant == "indexed" else "none", "timestamptz": variant == "timestamptz"}
    if backend == "sqlite":
        made = Sources({db: f"sqlite:///{tmp_path}/{db}.db" for db in DATABASES},
                       f"sqlite:///{tmp_path}/warehouse.db", str(tmp_path / "exports"), **options)
    else:
        factory = request.getfixturevalue("postgres_url_factory")
        made = Sources({db: factory(db) for db in DATABASES}, factory("warehouse"), str(tmp_path / "exports"),
                       **options)
    yield made
    for engine in made.engines.values():
        engine.dispose()
    dispose_engines()


@pytest.fixture
def materialize():
    """materialize(sources, grain, first_key, last_key=None) -> RangeRun, on an ephemeral instance."""
    import dagster as dg

    from metrics_pipeline.runner import run_range
    from metrics_pipeline.partitions import PARTITIONS

    def _run(sources, grain, first, last=None):
        keys = PARTITIONS[grain].get_partition_keys_in_range(dg.PartitionKeyRange(first, last or first))
        return run_range(sources.defs(), grain, keys, dg.DagsterInstance.ephemeral())

    return _run


def values(sources, metric, grain, dimension="", first=None, end=None):
    """{period_start or (period_start, dimension_value): value} of one metric from the warehouse."""
    rows = sources.warehouse().metric_rows([metric], grain, first, end, dimension=dimension)
    if dimension:
        return {(r["period_start"], r["dimension_value"]): r["value"] for r in rows}
    return {r["period_start"]: r["value"] for r in rows}


@pytest.fixture(scope="session")
def monitored_pipeline(tmp_path_factory):
    """A small deployment with planted problems for the monitoring tests (monitored_pipeline.py); read only."""
    from metrics_pipeline.resources.engines import dispose_engines
    from metrics_pipeline_tests.monitored_pipeline import build

    made = build(tmp_path_factory.mktemp("monitored"))
    yield made
    for engine in made.sources.engines.values():
        engine.dispose()
    dispose_engines()
