"""Planting known problems (seed/problems.py) changes exactly what it says, on the day of
METRICS_TIMEZONE it names and nowhere else, on SQLite and PostgreSQL; bad tokens are refused naming
the bad part. What the checks make of the problems is test_detection.py's business."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import sqlalchemy as sa

from metrics_pipeline.cli import main
from metrics_pipeline.contract import DATABASES, TABLES
from metrics_pipeline.seed import seed_sources
from metrics_pipeline.seed.problems import demo_problems, parse, plant
from metrics_pipeline.settings import source_urls, url_env_var

END = dt.date(2026, 3, 20)  # 21 days from 2026-02-28; US clocks go forward on 2026-03-08
TZ = "America/New_York"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request, tmp_path_factory) -> dict[str, str]:
    """Small generated sources, shared by the module: every test plants on days of its own."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("problems")
        urls = {db: f"sqlite:///{folder}/{db}.db" for db in DATABASES}
    else:
        server = request.getfixturevalue("postgres_server")
        urls = {db: server.create_database(db) for db in DATABASES}
    seed_sources(urls, days=21, end=END, scale=0.05, seed=1, progress=lambda _: None)
    return urls


@pytest.fixture
def urls(seeded, monkeypatch) -> dict[str, str]:
    """The seeded sources as the METRICS_*_DB_URL environment points at them, days cut in New York."""
    for db, url in seeded.items():
        monkeypatch.setenv(url_env_var(db), url)
    monkeypatch.setenv("METRICS_TIMEZONE", TZ)
    return source_urls()


@pytest.fixture
def started() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _table(urls, name: str) -> dict[tuple, dict]:
    """Every row of a source table by key, timestamps as datetimes on both engines."""
    engine = sa.create_engine(urls[TABLES[name].database])
    try:
        with engine.connect() as conn:
            t = sa.Table(name, sa.MetaData(), autoload_with=conn)
            return {tuple(r[k] for k in TABLES[name].key): dict(r)
                    for r in conn.execute(sa.select(t)).mappings()}
    finally:
        engine.dispose()


def _schema(url: str, name: str) -> tuple[dict[str, bool], set[str]]:
    """A live table's columns (name: nullable) and index names."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return ({c["name"]: c["nullable"] for c in inspector.get_columns(name)},
                {i["name"] for i in inspector.get_indexes(name)})
    finally:
        engine.dispose()


def _local_day(row: dict, name: str) -> dt.date:
    """The METRICS_TIMEZONE day a row belongs to (its contract time column)."""
    value = row[TABLES[name].time_column]
    if not isinstance(value, dt.datetime):
        return value
    return value.replace(tzinfo=dt.timezone.utc).astimezone(zoneinfo.ZoneInfo(TZ)).date()


def _on(rows: dict[tuple, dict], name: str, day: dt.date) -> list[tuple]:
    """Keys of the rows of `day`, in key order."""
    return sorted(k for k, r in rows.items() if _local_day(r, name) == day)


def test_drop_deletes_the_first_70_percent_of_the_local_day(urls):
    day = dt.date(2026, 3, 8)  # a 23-hour day in New York: 05:00 UTC to 04:00 UTC the next day
    before = {n: _table(urls, n) for n in ("user_sessions", "events")}
    planted = plant(urls, parse(f"drop:{day}"))
    for change in planted.changes:
        name = change.table
        day_keys = _on(before[name], name, day)
        gone = day_keys[:round(len(day_keys) * 0.7)]
        assert len(day_keys) >= 20 and change.rows == len(gone)
        assert change.sample_ids == tuple(k[0] for k in gone[:5])
        assert _table(urls, name) == {k: r for k, r in before[name].items() if k not in gone}
    assert [(c.database, c.table) for c in planted.changes] == [("app", "user_sessions"), ("interactions", "events")]
    assert str(planted).startswith(f"drop:{day}: app.user_sessions {planted.changes[0].rows} row(s) deleted")


def test_spike_adds_two_fresh_copies_of_each_row_of_the_day(urls, started):
    day = dt.date(2026, 3, 10)
    before = {n: _table(urls, n) for n in ("user_sessions", "events")}
    planted = plant(urls, parse(f"spike:{day}"))
    for change in planted.changes:
        name = change.table
        after = _table(urls, name)
        new = {k: r for k, r in after.items() if k not in before[name]}
        day_keys = _on(before[name], name, day)
        assert {k: after[k] for k in before[name]} == before[name]  # nothing else changed
        assert sorted(new) == sorted((f"{i}_copy{c}",) for (i,) in day_keys for c in (1, 2))
        assert change.rows == 2 * len(day_keys) and change.sample_ids[:2] == (f"{day_keys[0][0]}_copy1",
                                                                             f"{day_keys[0][0]}_copy2")
        for (copy_id,), row in new.items():
            original = before[name][(copy_id.rsplit("_copy", 1)[0],)]
            assert row | {"id": original["id"], "updated_at": original["updated_at"]} == original
            assert row["updated_at"] >= started
        assert len(_on(after, name, day)) == 3 * len(day_keys)
    with pytest.raises(ValueError, match=f"spike:{day}: app.user_sessions is already spiked on {day}"):
        plant(urls, parse(f"spike:{day}"))


def _changed(urls, name: str, before: dict[tuple, dict]) -> dict[tuple, dict]:
    after = _table(urls, name)
    assert after.keys() == before.keys()
    return {k: r for k, r in after.items() if r != before[k]}


def test_nulls_empty_a_required_column_on_n_rows_of_the_day(urls, started):
    day = dt.date(2026, 3, 12)
    before = _table(urls, "user_sessions")
    planted = plant(urls, parse(f"nulls:user_sessions.user_id:{day}:4"))
    changed = _changed(urls, "user_sessions", before)
    first = _on(before, "user_sessions", day)[:4]
    assert sorted(changed) == first and planted.rows == 4
    assert planted.changes[0].sample_ids == tuple(k[0] for k in first)
    for key, row in changed.items():
        assert row | {"user_id": before[key]["user_id"], "updated_at": before[key]["updated_at"]} == before[key]
        assert row["user_id"] is None and row["updated_at"] >= started
    columns, indexes = _schema(urls["app"], "user_sessions")
    assert columns["user_id"] is True  # the column now accepts NULL; the indexes survive that
    assert {"ix_user_sessions_started_at", "ix_user_sessions_user_id_started_at"} <= indexes


def test_enum_sets_an_unknown_value_on_n_rows_of_the_day(urls, started):
    day = dt.date(2026, 3, 13)
    before = _table(urls, "swipes")
    planted = plant(urls, parse(f"enum:swipes.action:{day}"))
    changed = _changed(urls, "swipes", before)
    assert sorted(changed) == _on(before, "swipes", day)[:3] and planted.rows == 3
    assert {(r["action"], r["updated_at"] >= started) for r in changed.values()} == {("unknown_value", True)}


def test_currency_makes_the_first_succeeded_payments_of_the_day_eur(urls, started):
    before = _table(urls, "payments")
    succeeded = {k: r for k, r in before.items() if r["status"] == "succeeded"}
    day = max(sorted({_local_day(r, "payments") for r in succeeded.values()}),
              key=lambda d: len(_on(succeeded, "payments", d)))
    assert len(_on(succeeded, "payments", day)) > 2 and len(_on(before, "payments", day)) > 2
    plant(urls, parse(f"currency:{day}:2"))
    changed = _changed(urls, "payments", before)
    assert sorted(changed) == _on(succeeded, "payments", day)[:2]
    assert {(r["currency"], r["status"], r["updated_at"] >= started) for r in changed.values()} == {
        ("EUR", "succeeded", True)}


@pytest.mark.parametrize("channel", [None, "google_ads"])
def test_channel_deletes_one_channels_ad_spend_of_the_day(urls, channel):
    day = dt.date(2026, 3, 14) if channel is None else dt.date(2026, 3, 15)
    before = _table(urls, "ad_spend_daily")
    planted = plant(urls, parse(f"channel:{day}" + (f":{channel}" if channel else "")))
    gone = sorted(k for k in _on(before, "ad_spend_daily", day) if k[1] == (channel or "meta_ads"))
    assert gone and planted.rows == len(gone) and planted.changes[0].sample_ids == tuple(k[2] for k in gone)
    assert _table(urls, "ad_spend_daily") == {k: r for k, r in before.items() if k not in gone}
    with pytest.raises(ValueError, match=f"ad_spend_daily has no {channel or 'meta_ads'} rows on {day}"):
        plant(urls, parse(f"channel:{day}" + (f":{channel}" if channel else "")))


def test_drop_column_removes_the_column_and_its_index(urls):
    before = _table(urls, "video_calls")
    planted = plant(urls, parse("drop_column:video_calls.started_at"))
    assert str(planted) == "drop_column:video_calls.started_at: column started_at dropped from interactions.video_calls"
    columns, indexes = _schema(urls["interactions"], "video_calls")
    assert list(columns) == ["id", "match_id", "duration_seconds", "updated_at"]
    assert indexes == {"ix_video_calls_updated_at"}
    assert _table(urls, "video_calls") == {k: {c: v for c, v in r.items() if c != "started_at"}
                                           for k, r in before.items()}
    with pytest.raises(ValueError, match=r"interactions.video_calls has no column 'started_at' \(dropped\?\)"):
        plant(urls, parse("drop_column:video_calls.started_at"))


def test_a_problem_that_cannot_be_planted_changes_nothing(urls):
    """A drop needs rows in both tables: one day without sessions leaves that day's events alone."""
    day = dt.date(2026, 3, 16)
    sessions = TABLES["user_sessions"].sa_table()
    engine = sa.create_engine(urls["app"])
    with engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.id.in_([k[0] for k in _on(_table(urls, "user_sessions"),
                                                                                  "user_sessions", day)])))
    engine.dispose()
    events = _table(urls, "events")
    with pytest.raises(ValueError, match=f"drop:{day}: app.user_sessions has no rows to change on {day}"):
        plant(urls, parse(f"drop:{day}"))
    assert _table(urls, "events") == events
    with pytest.raises(ValueError, match="enum:swipes.action:2020-01-01:3: interactions.swipes has no rows"):
        plant(urls, parse("enum:swipes.action:2020-01-01"))
    with pytest.raises(ValueError, match="nulls:users.email:2020-01-01:5: app.users has no rows to change"):
        plant(urls, parse("nulls:users.email:2020-01-01"))
    assert _schema(urls["app"], "users")[0]["email"] is False  # still required


@pytest.mark.parametrize("token, message", [
    ("flood:2026-03-01", "unknown problem 'flood'; choose from drop, spike"),
    ("drop:2026-02-30", "'2026-02-30' is not a day"),
    ("drop", "drop takes 1..1 ':'-separated argument(s)"),
    ("nulls:sessions.user_id:2026-03-01", "unknown table 'sessions'"),
    ("nulls:user_sessions.uid:2026-03-01", "table user_sessions has no contract column 'uid'"),
    ("nulls:users.country:2026-03-01", "users.country is not a required non-key column"),
    ("nulls:users.id:2026-03-01", "users.id is not a required non-key column"),
    ("nulls:users.email:2026-03-01:0", "'0' is not a positive row count"),
    ("enum:users.email:2026-03-01", "users.email is not an enumerated column"),
    ("currency:2026-03-01:many", "'many' is not a positive row count"),
    ("channel:2026-03-01:radio_ads", "unknown channel 'radio_ads'"),
    ("drop_column:ad_spend_daily.date", "ad_spend_daily.date is part of the table's key"),
])
def test_bad_tokens_are_refused_naming_the_bad_part(token, message):
    with pytest.raises(ValueError, match="^" + repr(token).replace(".", r"\.")) as error:
        parse(token)
    assert message in str(error.value)


@pytest.mark.parametrize("token", ["drop:2026-03-01", "spike:2026-03-01", "nulls:users.email:2026-03-01:5",
                                   "enum:payments.status:2026-03-01:3", "currency:2026-03-01:1",
                                   "channel:2026-03-01:meta_ads", "drop_column:events.properties"])
def test_a_problem_has_its_full_token(token):
    assert parse(token).token == token


def test_demo_plants_six_problems_in_its_last_two_weeks():
    assert [p.token for p in demo_problems(END)] == [
        "drop:2026-03-08", "channel:2026-03-11:meta_ads", "spike:2026-03-14",
        "nulls:user_sessions.user_id:2026-03-17:5", "enum:payments.status:2026-03-18:3", "currency:2026-03-19:1"]


def test_cli_inject(urls, capsys, monkeypatch, tmp_path):
    day = dt.date(2026, 3, 17)
    assert main(["inject", f"drop:{day}", f"enum:messages.status:{day}:2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"  planted drop:{day}: app.user_sessions ")
    assert lines[1] == f"  planted enum:messages.status:{day}:2: messaging.messages 2 row(s) updated"

    assert main(["inject", "spike:2020-01-01"]) == 2
    assert "spike:2020-01-01: app.user_sessions has no rows to change on 2020-01-01" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad:
        main(["inject", "nulls:users.country:2026-03-01"])
    assert bad.value.code == 2 and "users.country is not a required non-key column" in capsys.readouterr().err
    monkeypatch.setenv(url_env_var("app"), f"sqlite:///{tmp_path}/missing.db")
    assert main(["inject", f"currency:{day}"]) == 2
    assert f"source database 'app' not found at {tmp_path}/missing.db" in capsys.readouterr().err
