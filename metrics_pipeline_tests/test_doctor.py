"""`metrics-pipeline doctor` on SQLite and PostgreSQL sources: a missing index is a warning with the
exact CREATE INDEX, a missing column fails, timestamp types and the server's time zone are reported,
and the observe job puts the same findings on the source assets."""

from __future__ import annotations

import dagster as dg
import pytest

from metrics_pipeline.cli import main
from metrics_pipeline.defs.sources import source_key
from metrics_pipeline.doctor import diagnose
from metrics_pipeline.settings import url_env_var


@pytest.fixture
def env(sources, monkeypatch):
    for db, url in sources.urls.items():
        monkeypatch.setenv(url_env_var(db), url)
    return sources


def test_primary_keys_only_meet_the_contract_with_index_warnings(env, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "CREATE INDEX ix_payments_refunded_at ON payments (refunded_at);" in out
    assert "CREATE INDEX ix_events_event_name_actor_id_event_time ON events (event_name, actor_id, event_time);" in out
    assert "sources meet the contract" in out
    (payments,) = [t for t in diagnose("app", env.urls["app"]).tables if t.table == "payments"]
    assert ("refunded_at",) in {cols for cols, _ in payments.missing_indexes}
    assert payments.problems == []


@pytest.mark.parametrize("sources", ["sqlite-indexed"], indirect=True)
def test_contract_indexes_leave_nothing_to_warn_about(env, capsys):
    assert main(["doctor"]) == 0
    assert "WARN" not in capsys.readouterr().out


def test_a_missing_column_fails_naming_it(env, capsys):
    env.execute("app", "ALTER TABLE payments DROP COLUMN refunded_at")
    env.execute("app", "ALTER TABLE users ADD COLUMN favourite_colour TEXT")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "app.payments.refunded_at: column missing" in out
    assert "do not meet the contract" in out
    assert "extra columns ignored: favourite_colour" in out


@pytest.mark.parametrize("sources", ["postgres-timestamptz"], indirect=True)
def test_timestamptz_and_server_time_zone_are_reported(env, capsys):
    report = diagnose("app", env.urls["app"])
    assert report.server_time_zone == "America/Los_Angeles"
    (users,) = [t for t in report.tables if t.table == "users"]
    assert users.timestamp_types["created_at"] == "timestamp with time zone"
    assert users.problems == []  # read right: source sessions run in UTC
    assert main(["doctor"]) == 0
    assert "timestamps timestamp with time zone" in capsys.readouterr().out


def test_observe_job_puts_the_findings_on_source_assets(sources):
    instance = dg.DagsterInstance.ephemeral()
    assert sources.defs().resolve_job_def("observe_sources_job").execute_in_process(instance=instance).success
    meta = instance.fetch_observations(source_key("payments"), limit=1).records[0].asset_observation.metadata
    assert meta["doctor"].value == "meets the contract"
    assert "no index on payments(refunded_at)" in meta["missing_indexes"].value
