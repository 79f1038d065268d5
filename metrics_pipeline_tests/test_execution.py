"""How assets run: transient database errors retried and bad queries not, overlapping runs of one
partition never duplicating rows, pools per source database, and downstream assets following their
upstreams through declarative automation."""

from __future__ import annotations

import datetime as dt
import threading
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from metrics_pipeline.contract import DATABASES
from metrics_pipeline.definitions import defs
from metrics_pipeline.defs.checks import ASSET_CHECKS
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.defs.summary_assets import SUMMARY_ASSETS, daily_kpi_summary_asset
from metrics_pipeline.metrics.catalog import DOMAINS
from metrics_pipeline.resources import SourceDatabase, SourceUnavailableError
from metrics_pipeline.resources.database import is_transient
from metrics_pipeline.local_stack import free_port
from metrics_pipeline.resources.engines import dispose_engines
from metrics_pipeline.settings import ConfigError, source_retries, source_retry_delay_seconds
from metrics_pipeline_tests.conftest import values
from metrics_pipeline_tests.sources import Sources

ACTIVITY = METRIC_ASSETS[("activity", "day")]
METRIC_ASSETS_BY_KEY = {a.key: domain for (domain, _), a in METRIC_ASSETS.items()}
DAY = "2026-03-10"


@pytest.fixture
def pg_sources(postgres_url_factory, tmp_path):
    made = Sources({db: postgres_url_factory(db) for db in DATABASES}, postgres_url_factory("warehouse"),
                   str(tmp_path / "exports"))
    yield made
    for engine in made.engines.values():
        engine.dispose()
    dispose_engines()


def _error_of(conn: sa.Connection, sql: str) -> Exception:
    with pytest.raises(sa.exc.DBAPIError) as err:
        conn.execute(sa.text(sql))
    return err.value


def test_dropped_connections_are_transient_bad_queries_are_not(postgres_url_factory, tmp_path):
    engine = sa.create_engine(postgres_url_factory("flaky"))
    with engine.connect() as victim, engine.connect() as admin:
        pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        dropped = _error_of(victim, "SELECT 1")
        assert dropped.connection_invalidated and is_transient(dropped)
        assert not is_transient(_error_of(admin, "SELECT missing_column FROM pg_class"))
    engine.dispose()

    sqlite = sa.create_engine(f"sqlite:///{tmp_path}/x.db")
    with sqlite.connect() as conn:
        assert not is_transient(_error_of(conn, "SELECT * FROM no_such_table"))  # an OperationalError too

    unreachable = SourceDatabase(name="app", url=f"postgresql+psycopg2://u@127.0.0.1:{free_port()}/app")
    with pytest.raises(SourceUnavailableError) as err:
        with unreachable.connect():
            pass
    assert is_transient(err.value)
    with pytest.raises(SourceUnavailableError) as err:
        with SourceDatabase(name="app", url=f"sqlite:///{tmp_path}/x.db").connect(["users"]):
            pass
    assert not is_transient(err.value) and not is_transient(ValueError("boom"))


def _retries(instance: dg.DagsterInstance) -> int:
    return len(instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.STEP_UP_FOR_RETRY)))


def _set_connections(sources: Sources, database: str, allowed: bool) -> None:
    name = sa.engine.make_url(sources.urls[database]).database
    sources.engines[database].dispose()
    dispose_engines()
    with sources.engines["marketing"].connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))


def test_a_source_that_refuses_connections_is_retried_until_it_is_back(pg_sources, monkeypatch):
    monkeypatch.setenv("METRICS_SOURCE_RETRY_DELAY_SECONDS", "2")
    pg_sources.insert("users", {"created_at": f"{DAY} 08:00:00"}, {"created_at": f"{DAY} 09:30:00"})
    _set_connections(pg_sources, "app", allowed=False)
    instance = dg.DagsterInstance.ephemeral()
    outcome = {}
    run = threading.Thread(target=lambda: outcome.setdefault("result", dg.materialize(
        [ACTIVITY], partition_key=DAY, resources=pg_sources.resources(), instance=instance, raise_on_error=False)))
    run.start()
    try:
        deadline = time.monotonic() + 60
        while _retries(instance) == 0 and run.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _retries(instance) >= 1, "the refused connection was not retried"
    finally:
        _set_connections(pg_sources, "app", allowed=True)
        run.join(timeout=120)
    assert outcome["result"].success
    assert values(pg_sources, "new_users", "day") == {DAY: 2}


def test_a_bad_query_fails_at_once_without_retries(pg_sources, monkeypatch):
    monkeypatch.setenv("METRICS_SOURCE_RETRY_DELAY_SECONDS", "30")  # a retry would show as a long wait
    pg_sources.execute("app", "DROP TABLE user_sessions")
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = dg.materialize([ACTIVITY], partition_key=DAY, resources=pg_sources.resources(), instance=instance,
                            raise_on_error=False)
    assert not result.success and _retries(instance) == 0 and time.monotonic() - started < 30
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "has no table 'user_sessions'" in str(failure.step_failure_data.error.cause or failure.step_failure_data.error)


@pytest.mark.parametrize("env, raw, read", [
    ("METRICS_SOURCE_RETRIES", "-1", source_retries), ("METRICS_SOURCE_RETRIES", "2.5", source_retries),
    ("METRICS_SOURCE_RETRY_DELAY_SECONDS", "soon", source_retry_delay_seconds),
])
def test_bad_retry_settings_are_refused_naming_the_variable(env, raw, read, monkeypatch):
    monkeypatch.setenv(env, raw)
    with pytest.raises(ConfigError, match=env):
        read()


def test_retry_settings_default_to_three_doubling_from_ten_seconds(monkeypatch):
    monkeypatch.delenv("METRICS_SOURCE_RETRIES", raising=False)
    monkeypatch.delenv("METRICS_SOURCE_RETRY_DELAY_SECONDS", raising=False)
    assert (source_retries(), source_retry_delay_seconds()) == (3, 10.0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_overlapping_runs_of_one_partition_leave_exactly_one_set_of_rows(backend, request, tmp_path):
    if backend == "sqlite":
        sources = Sources({db: f"sqlite:///{tmp_path}/{db}.db" for db in DATABASES},
                          f"sqlite:///{tmp_path}/warehouse.db", str(tmp_path / "exports"))
    else:
        sources = request.getfixturevalue("pg_sources")
    sources.insert("users", *({"created_at": f"{DAY} 0{h}:00:00", "platform": p}
                              for h, p in enumerate(["ios", "android", "web"])))
    sources.insert("user_sessions", *({"user_id": f"u{i}", "started_at": f"{DAY} 1{i}:00:00",
                                       "ended_at": f"{DAY} 1{i}:30:00"} for i in range(4)))
    once = dg.materialize([ACTIVITY], partition_key=DAY, resources=sources.resources())
    assert once.success
    expected = sorted((r["metric"], r["dimension"], r["dimension_value"], r["value"])
                      for r in sources.warehouse().metric_rows(None, "day"))

    results = []
    instance = dg.DagsterInstance.local_temp(str(tmp_path))
    runs = [threading.Thread(target=lambda: results.append(dg.materialize(
        [ACTIVITY], partition_key=DAY, resources=sources.resources(), instance=instance)))
        for _ in range(3)]
    for r in runs:
        r.start()
    for r in runs:
        r.join()
    assert [r.success for r in results] == [True] * 3
    after = sorted((r["metric"], r["dimension"], r["dimension_value"], r["value"])
                   for r in sources.warehouse().metric_rows(None, "day"))
    assert after == expected and len(after) > 10
    assert values(sources, "new_users", "day") == {DAY: 3}


def test_every_source_reading_step_runs_in_its_databases_pool():
    database = {d.name: d.database for d in DOMAINS}
    for (domain, _), asset in METRIC_ASSETS.items():
        assert asset.node_def.pool == f"source_db_{database[domain]}"
    source_checks = [c for c in ASSET_CHECKS
                     if {k.name for k in c.check_keys} & {"source_expectations", "source_volume"}]
    assert len(source_checks) == 2 * len(DOMAINS)
    for check in source_checks:
        (key,) = check.check_keys
        domain = METRIC_ASSETS_BY_KEY[key.asset_key]
        assert check.node_def.pool == f"source_db_{database[domain]}"


def test_downstream_assets_follow_their_upstreams_within_the_look_back(tmp_path):
    """Upstream partitions re-materialized on D-10 and D-70: the automation requests the derived, KPI
    and snapshot partitions of D-10 only (inside the 35-day look-back), in one tick (Dagster runs them
    in dependency order), and nothing more once they are done."""
    sources = Sources({db: f"sqlite:///{tmp_path}/{db}.db" for db in DATABASES},
                      f"sqlite:///{tmp_path}/warehouse.db", str(tmp_path / "exports"))
    resources = sources.resources()
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime(2026, 3, 20, 12, tzinfo=dt.timezone.utc)
    recent, old = "2026-03-10", "2026-01-09"
    derived, kpi = DERIVED_ASSETS["day"], daily_kpi_summary_asset
    (snapshots,) = [a for a in SUMMARY_ASSETS["day"] if a.key.path == ["daily_analytics_snapshots"]]
    followers = dg.AssetSelection.assets(derived, kpi, snapshots)

    def evaluate(cursor=None):
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=followers,
                                                 evaluation_time=now, cursor=cursor)

    first = evaluate()
    assert first.total_requested == 0  # nothing changed: nothing requested

    upstream = [a for (_, g), a in METRIC_ASSETS.items() if g == "day"]
    for day in (recent, old):
        assert dg.materialize(upstream, partition_key=day, resources=resources, instance=instance).success
    second = evaluate(first.cursor)
    for follower in (derived, kpi, snapshots):
        assert second.get_requested_partitions(follower.key) == {recent}

    assert dg.materialize([derived, kpi, snapshots], partition_key=recent, resources=resources,
                          instance=instance).success
    assert evaluate(second.cursor).total_requested == 0


def test_automation_sensors_run_by_default_and_tag_grain_and_trigger():
    sensors = {s.name: s for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)}
    assert set(sensors) == {"daily_automation_sensor", "weekly_automation_sensor", "monthly_automation_sensor"}
    for name, sensor in sensors.items():
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
        grain = {"daily": "day", "weekly": "week", "monthly": "month"}[name.split("_")[0]]
        assert sensor.run_tags == {"grain": grain, "trigger": "automation"}
