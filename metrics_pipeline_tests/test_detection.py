"""Known problems planted in generated history are each found, with the right type and partition,
and nothing else is: a first backfill over clean history, problems planted in later days and in a
table's schema, then a second backfill of those days."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from metrics_pipeline.contract import TABLES
from metrics_pipeline.seed import seed_sources

END = dt.date(2026, 3, 31)
DAYS = 120
START = END - dt.timedelta(days=DAYS - 1)
LATER = END - dt.timedelta(days=13)  # the days the problems are planted in
D = {name: (END - dt.timedelta(days=back)).isoformat() for name, back in
     (("drop", 12), ("channel", 9), ("spike", 6), ("nulls", 3), ("enum", 2), ("currency", 1))}


def _day(t: sa.Table, column: str, day: str) -> sa.ColumnElement:
    nxt = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    return sa.and_(t.c[column] >= f"{day} 00:00:00", t.c[column] < f"{nxt} 00:00:00")


def _ids(conn, t: sa.Table, where: sa.ColumnElement, limit: int | None = None) -> list[str]:
    return list(conn.execute(sa.select(t.c.id).where(where).order_by(t.c.id).limit(limit)).scalars())


def _drop_day(sources, day: str, keep: float) -> None:
    for name, col in (("user_sessions", "started_at"), ("events", "event_time")):
        t = TABLES[name].sa_table()
        with sources.engines[TABLES[name].database].begin() as conn:
            ids = _ids(conn, t, _day(t, col, day))
            conn.execute(t.delete().where(t.c.id.in_(ids[: int(len(ids) * (1 - keep))])))


def _spike_day(sources, day: str, copies: int) -> None:
    for name, col in (("user_sessions", "started_at"), ("events", "event_time")):
        t = TABLES[name].sa_table()
        with sources.engines[TABLES[name].database].begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(t).where(_day(t, col, day)))]
            conn.execute(t.insert(), [r | {"id": f"{r['id']}_copy{k}"} for k in range(copies) for r in rows])


def _allow_null(sources, table: str, column: str) -> None:
    """Let a required column hold NULL, as a source with a looser schema would (types unchanged)."""
    engine = sources.engines[TABLES[table].database]
    if engine.dialect.name == "postgresql":
        sources.execute(TABLES[table].database, f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
        return
    loose = TABLES[table].sa_table(sa.MetaData())
    loose.name = f"{table}_loose"
    loose.c[column].nullable = True
    with engine.begin() as conn:
        loose.create(conn)
        conn.exec_driver_sql(f"INSERT INTO {table}_loose SELECT * FROM {table}")
        conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.exec_driver_sql(f"ALTER TABLE {table}_loose RENAME TO {table}")


def _set(sources, table: str, time: str, day: str, values: dict, n: int) -> list[str]:
    t = TABLES[table].sa_table()
    with sources.engines[TABLES[table].database].begin() as conn:
        ids = _ids(conn, t, _day(t, time, day) & (t.c.status == "succeeded" if table == "payments" else sa.true()), n)
        conn.execute(t.update().where(t.c.id.in_(ids)).values(**values))
    return ids


def _plant(sources) -> None:
    _drop_day(sources, D["drop"], keep=0.3)
    _spike_day(sources, D["spike"], copies=2)
    _allow_null(sources, "user_sessions", "user_id")
    _set(sources, "user_sessions", "started_at", D["nulls"], {"user_id": None}, 5)
    _set(sources, "payments", "created_at", D["enum"], {"status": "disputed"}, 3)
    _set(sources, "payments", "created_at", D["currency"], {"currency": "EUR"}, 1)
    sources.execute("marketing", f"DELETE FROM ad_spend_daily WHERE channel = 'meta_ads' AND date = '{D['channel']}'")
    sources.execute("interactions", "ALTER TABLE events DROP COLUMN properties")


def test_planted_problems_are_found_and_nothing_else(sources, materialize):
    seed_sources(sources.urls, days=DAYS, end=END, scale=0.25, seed=11, progress=lambda _: None)
    first = materialize(sources, "day", START.isoformat(), (LATER - dt.timedelta(days=1)).isoformat())
    assert first.success, first.errors
    assert sources.warehouse().alerts() == []  # clean history: not a single alert

    _plant(sources)
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
    (schema,) = of("schema_change", END.isoformat())
    assert (schema["source_table"], schema["column_name"], schema["severity"]) == ("events", "properties", "high")
