"""The synthetic source generator: complete, valid, deterministic data with the behaviours the metrics
must handle (refunds, late updates, open sessions, plan changes, mixed timestamp formats)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from metrics_pipeline.contract import DATABASES, TABLES
from metrics_pipeline.seed import seed_sources

END = dt.date(2026, 1, 31)


def _seed(directory, seed=42, days=40) -> tuple[dict[str, str], dict[str, int]]:
    urls = {db: f"sqlite:///{directory}/{db}.db" for db in DATABASES}
    return urls, seed_sources(urls, days=days, end=END, scale=0.2, seed=seed, progress=lambda _: None)


def _rows(urls, database: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(urls[database])
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def _one(urls, table: str, sql: str):
    return _rows(urls, TABLES[table].database, sql)[0][0]


def _contents(urls) -> dict[str, list[tuple]]:
    return {name: _rows(urls, t.database, f"SELECT * FROM {name} ORDER BY {', '.join(t.key)}")
            for name, t in TABLES.items()}


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory):
    """A directory that does not exist yet."""
    return tmp_path_factory.mktemp("seed") / "nested" / "dir"


@pytest.fixture(scope="module")
def seeded(seed_dir):
    return _seed(seed_dir)


def test_every_contract_table_gets_rows_and_indexes(seeded):
    urls, counts = seeded
    assert set(counts) == set(TABLES)
    for name, t in TABLES.items():
        assert counts[name] > 0, name
        assert _one(urls, name, f"SELECT count(*) FROM {name}") == counts[name]
        indexes = {r[1] for r in _rows(urls, t.database, f"PRAGMA index_list({name})")}
        assert {f"ix_{name}_{'_'.join(cols)}" for cols in t.indexes} <= indexes


def test_rows_follow_the_contract(seeded):
    """No row would be rejected by the validity rules: required columns set, enums known, USD only,
    amounts non-negative, timestamps within the window."""
    urls, _ = seeded
    for name, t in TABLES.items():
        for c in t.columns:
            assert c.nullable or _one(urls, name, f"SELECT count(*) FROM {name} WHERE {c.name} IS NULL") == 0
            values = {r[0] for r in _rows(urls, t.database, f"SELECT DISTINCT {c.name} FROM {name}")} - {None}
            if c.allowed:
                assert values <= set(c.allowed), (name, c.name, values - set(c.allowed))
            if c.usd:
                assert values == {"USD"}
            if c.non_negative or c.kind == "int":
                assert all(isinstance(v, int) and v >= 0 for v in values), (name, c.name)
            if c.kind == "ts" and name != "subscriptions":  # a trial's end and a paid period's end are known ahead
                assert max(values) < "2026-02-01", (name, c.name)


def test_reseeding_is_deterministic_and_replaces(seeded, seed_dir):
    urls, counts = seeded
    first = _contents(urls)
    assert _seed(seed_dir)[1] == counts
    assert _contents(urls) == first  # identical rows, replaced rather than appended


def test_another_seed_gives_other_data(tmp_path):
    sql = "SELECT * FROM users ORDER BY id"
    one, other = (_seed(tmp_path / str(seed), seed=seed, days=3)[0] for seed in (1, 2))
    assert _rows(one, "app", sql) != _rows(other, "app", sql)


def test_sqlite_timestamps_mix_both_formats(seeded):
    urls, _ = seeded
    lengths = dict(_rows(urls, "app", "SELECT length(started_at), count(*) FROM user_sessions GROUP BY 1"))
    assert set(lengths) == {19, 26} and min(lengths.values()) > 0.2 * sum(lengths.values())
    assert _one(urls, "user_sessions", "SELECT count(*) FROM user_sessions WHERE started_at LIKE '%.000000'") > 0
    assert _rows(urls, "marketing", "SELECT DISTINCT length(date) FROM ad_spend_daily") == [(10,)]


def test_refunds_land_on_a_later_day(seeded):
    urls, _ = seeded
    refunds = _rows(urls, "app", "SELECT created_at, refunded_at FROM payments WHERE status = 'refunded'")
    assert refunds and all(refunded[:10] > created[:10] for created, refunded in refunds)
    assert _one(urls, "payments", "SELECT count(*) FROM payments WHERE status != 'refunded' "
                                  "AND refunded_at IS NOT NULL") == 0


def test_some_rows_arrive_late(seeded):
    urls, _ = seeded
    for table, created in [("user_sessions", "started_at"), ("events", "event_time"), ("payments", "created_at")]:
        late = _one(urls, table, f"SELECT count(*) FROM {table} "
                                 f"WHERE julianday(updated_at) - julianday({created}) >= 2")
        assert 0 < late < _one(urls, table, f"SELECT count(*) FROM {table}") / 5, table
        assert _one(urls, table, f"SELECT count(*) FROM {table} "
                                 f"WHERE julianday(updated_at) < julianday({created})") == 0


def test_sessions_some_open_some_across_midnight(seeded):
    urls, _ = seeded
    assert _one(urls, "user_sessions", "SELECT count(*) FROM user_sessions WHERE ended_at IS NULL") > 0
    assert _one(urls, "user_sessions", "SELECT count(*) FROM user_sessions "
                                       "WHERE substr(ended_at, 1, 10) > substr(started_at, 1, 10)") > 0
    assert _one(urls, "user_sessions", "SELECT count(*) FROM user_sessions "
                                       "WHERE julianday(ended_at) < julianday(started_at)") == 0


def test_subscription_lifecycles(seeded):
    """Plan changes (one row ends exactly when the next starts), comebacks after churn, trials that
    never convert, and a status that agrees with the timestamps."""
    urls, _ = seeded
    pairs = "FROM subscriptions a JOIN subscriptions b ON a.user_id = b.user_id AND a.id != b.id"
    assert _one(urls, "subscriptions", f"SELECT count(*) {pairs} AND a.ended_at = b.started_at "
                                       "AND a.plan != b.plan") > 0
    assert _one(urls, "subscriptions", f"SELECT count(*) {pairs} "
                                       "AND julianday(b.started_at) > julianday(a.ended_at)") > 0
    assert _one(urls, "subscriptions", "SELECT count(*) FROM subscriptions "
                                       "WHERE julianday(ended_at) <= julianday(trial_ends_at)") > 0
    statuses = _rows(urls, "app", "SELECT status, ended_at, trial_ends_at FROM subscriptions")
    for status, ended, trial_end in statuses:
        assert (status == "canceled") == (ended is not None and ended < "2026-02-01"), status
        if status == "trialing":
            assert trial_end >= "2026-02-01"


def test_message_receipts_follow_creation(seeded):
    urls, _ = seeded
    out_of_order = ("SELECT count(*) FROM messages WHERE julianday(sent_at) <= julianday(created_at) "
                    "OR julianday(delivered_at) < julianday(sent_at) OR julianday(read_at) < julianday(delivered_at) "
                    "OR julianday(replied_at) < julianday(read_at) OR julianday(failed_at) <= julianday(created_at)")
    assert _one(urls, "messages", out_of_order) == 0
    assert _one(urls, "messages", "SELECT count(*) FROM messages WHERE status = 'failed' AND failed_at IS NULL") == 0
    next_day = "substr(coalesce(read_at, delivered_at), 1, 10) > substr(created_at, 1, 10)"
    assert _one(urls, "messages", f"SELECT count(*) FROM messages WHERE {next_day}") > 0


def test_postgres_load_by_copy_matches_sqlite(seeded, postgres_url_factory):
    """The same seed loaded into PostgreSQL (COPY) holds the same rows as the SQLite load."""
    sqlite_urls, sqlite_counts = seeded
    pg_urls = {db: postgres_url_factory(db) for db in DATABASES}
    pg_counts = seed_sources(pg_urls, days=40, end=END, scale=0.2, seed=42, progress=lambda _: None)
    assert pg_counts == sqlite_counts
    for table in ("payments", "subscriptions", "messages"):
        key = ", ".join(TABLES[table].key)
        pg = _rows(pg_urls, TABLES[table].database, f"SELECT id, updated_at FROM {table} ORDER BY {key}")
        lite = _rows(sqlite_urls, TABLES[table].database, f"SELECT id, updated_at FROM {table} ORDER BY {key}")
        assert pg == [(i, dt.datetime.fromisoformat(ts)) for i, ts in lite]
