"""Known problems planted in generated history are each found, with the right type and partition,
and nothing else is: a first backfill over clean history, problems planted in later days and in a
table's schema, then a second backfill of those days."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from metrics_pipeline.seed import seed_sources
from metrics_pipeline.seed.problems import demo_problems, parse, plant

END = dt.date(2026, 3, 31)
DAYS = 120
START = END - dt.timedelta(days=DAYS - 1)
LATER = END - dt.timedelta(days=13)  # the days the problems are planted in (as `make demo` does)
D = {p.kind: p.day.isoformat() for p in demo_problems(END)}


def _plant(sources) -> None:
    for problem in [*demo_problems(END), parse("drop_column:events.properties")]:
        assert plant(sources.urls, problem).rows >= (0 if problem.kind == "drop_column" else 1), problem.token


@pytest.mark.parametrize("indexes", ["contract", "none"])  # the seeder's indexes, or primary keys only
def test_planted_problems_are_found_and_nothing_else(sources, materialize, indexes):
    seed_sources(sources.urls, days=DAYS, end=END, scale=0.25, seed=11, indexes=indexes, progress=lambda _: None)
    first = materialize(sources, "day", START.isoformat(), (LATER - dt.timedelta(days=1)).isoformat())
    assert first.success, first.errors
    assert sources.warehouse().alerts() == []  # clean history: not a single alert

    def session_indexes():
        return {i["name"] for i in sa.inspect(sources.engines["app"]).get_indexes("user_sessions")}

    had = session_indexes()
    _plant(sources)
    assert session_indexes() == had  # kept when the table is remade to allow NULLs
    second = materialize(sources, "day", LATER.isoformat(), END.isoformat())
    assert second.success, second.errors  # WARN checks only: nothing that would spread wrong numbers
    alerts = sources.warehouse().alerts(open_only=True)
    found = {(a["alert_type"], a["partition_key"]) for a in alerts}
    assert found == {
        ("data_drop", D["drop"]), ("data_spike", D["spike"]), ("missing_data", D["channel"]),
        ("invalid_data", D["nulls"]), ("invalid_data", D["enum"]), ("invalid_data", D["currency"]),
        ("schema_change", END.isoformat()),
    }, sorted((a["alert_type"], a["partition_key"], a["metric"], a["message"]) for a in alerts)

    def of(kind, day):
        return [a for a in alerts if (a["alert_type"], a["partition_key"]) == (kind, day)]

    assert {"sessions", "events"} <= {a["metric"] for a in of("data_drop", D["drop"])}
    assert {"sessions", "events"} <= {a["metric"] for a in of("data_spike", D["spike"])}
    (channel,) = of("missing_data", D["channel"])
    assert (channel["source_table"], channel["dimension"], channel["severity"]) == (
        "ad_spend_daily", "channel=meta_ads", "medium")
    invalid = {(a["partition_key"], a["source_table"], a["column_name"], a["actual_value"]) for a in alerts
               if a["alert_type"] == "invalid_data"}
    assert invalid == {(D["nulls"], "user_sessions", "user_id", 5), (D["enum"], "payments", "status", 3),
                       (D["currency"], "payments", "currency", 1)}
    assert all(a["severity"] == "medium" for a in alerts if a["alert_type"] == "invalid_data")
    (schema,) = of("schema_change", END.isoformat())
    assert (schema["source_table"], schema["column_name"], schema["severity"]) == ("events", "properties", "high")


def test_bad_problem_tokens_name_the_bad_part():
    import pytest

    for token, message in (("flood:2026-01-01", "unknown problem 'flood'"),
                           ("drop:2026-13-01", "'2026-13-01' is not a day"),
                           ("nulls:users.country:2026-01-01", "users.country is not a required non-key column"),
                           ("enum:users.email:2026-01-01", "users.email is not an enumerated column"),
                           ("nulls:nosuch.col:2026-01-01", "unknown table 'nosuch'"),
                           ("currency:2026-01-01:0", "'0' is not a positive row count"),
                           ("channel:2026-01-01:myspace_ads", "unknown channel 'myspace_ads'"),
                           ("drop_column:users.id", "part of the table's key")):
        with pytest.raises(ValueError, match=message):
            parse(token)
    assert parse("enum:payments.status:2026-01-02").token == "enum:payments.status:2026-01-02:3"
