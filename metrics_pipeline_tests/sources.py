"""Hand-built source fixtures: contract tables in SQLite files or PostgreSQL databases, filled with
only the columns a test cares about (the rest get valid defaults)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.contract import DATABASES, TABLES, tables_of
from metrics_pipeline.definitions import build_defs
from metrics_pipeline.resources import SourceDatabase, Warehouse
from metrics_pipeline.resources.exporter import ExportResource

_ids = itertools.count(1)

DEFAULTS = {
    "users": {"email": "x@example.com", "platform": "ios", "country": "US"},
    "user_sessions": {"platform": "ios", "app_version": "1.0", "screens_viewed": 1, "actions_taken": 1},
    "subscriptions": {"plan": "premium_monthly", "billing_interval": "month", "price_cents": 1000,
                      "currency": "USD", "status": "active"},
    "payments": {"kind": "subscription", "provider": "stripe", "fee_cents": 0, "currency": "USD",
                 "status": "succeeded"},
    "ai_requests": {"model": "m1", "feature": "chat", "input_tokens": 1, "output_tokens": 1, "cost_micros": 1,
                    "status": "completed", "duration_ms": 100},
    "swipes": {"target_user_id": "t", "action": "like"},
    "matches": {"user_a_id": "a", "user_b_id": "b"},
    "video_calls": {"match_id": "m"},
    "events": {"actor_id": "a", "event_name": "app_open", "platform": "ios", "app_version": "1.0"},
    "contacts": {"account_id": "acc1"},
    "campaigns": {"account_id": "acc1", "name": "campaign", "status": "draft", "recipients_count": 0},
    "conversations": {"account_id": "acc1", "contact_id": "k"},
    "messages": {"account_id": "acc1", "conversation_id": "v", "contact_id": "k", "direction": "outbound",
                 "status": "queued"},
    "marketing_posts": {"platform": "tiktok", "category": "general", "status": "draft", "views": 0, "likes": 0,
                        "comments": 0, "shares": 0},
    # no timestamp column to take updated_at from (`date` is a DATE): give one
    "ad_spend_daily": {"channel": "meta_ads", "spend_cents": 0, "impressions": 0, "clicks": 0, "conversions": 0,
                       "updated_at": "2026-01-01 00:00:00"},
}


def _row(table: str, values: dict) -> dict:
    """A full contract row: the test's values over valid defaults (ids and updated_at generated)."""
    t = TABLES[table]
    row = {c.name: None for c in t.columns}
    row.update(DEFAULTS.get(table, {}))
    for c in t.columns:
        if not c.nullable and c.kind == "text" and row[c.name] is None:
            row[c.name] = f"{c.name}_{next(_ids)}"
    row.update(values)
    if row.get("updated_at") is None:
        row["updated_at"] = next(v for c in t.columns if c.kind == "ts" and (v := row[c.name]) is not None)
    return row


def add_indexes(engine: sa.Engine, kind: str) -> None:
    """Create the secondary indexes of the set `kind` (contract.INDEX_SETS) on the engine's contract tables."""
    with engine.begin() as conn:
        have = set(sa.inspect(conn).get_table_names())
        for t in (t for t in TABLES.values() if t.name in have):
            for index in t.sa_indexes(t.sa_table(sa.MetaData()), kind):
                index.create(conn)


def retype_timestamptz(engine: sa.Engine) -> None:
    """Make every contract timestamp of a PostgreSQL source `timestamp with time zone`: the same
    instants (read as UTC), as a Django or Rails schema types them."""
    with engine.begin() as conn:
        have = set(sa.inspect(conn).get_table_names())
        for t in (t for t in TABLES.values() if t.name in have):
            for c in (c for c in t.columns if c.kind == "ts"):
                conn.exec_driver_sql(f"ALTER TABLE {t.name} ALTER COLUMN {c.name} "
                                     f"TYPE timestamp with time zone USING {c.name} AT TIME ZONE 'UTC'")


@dataclass
class Sources:
    """Four source databases, a warehouse and an export folder, on one backend ('sqlite' or 'postgres').

    `indexes` is the set of secondary indexes the source tables get (contract.INDEX_SETS; default
    none: primary keys only, as a user's database may be); `timestamptz` types PostgreSQL timestamps
    `timestamp with time zone`. Rows are written in a UTC session: text timestamps mean UTC.
    """

    urls: dict[str, str]
    warehouse_url: str
    export_uri: str
    indexes: str = "none"
    timestamptz: bool = False
    engines: dict[str, sa.Engine] = field(default_factory=dict)

    def __post_init__(self):
        for db in DATABASES:
            utc = {"options": "-c TimeZone=UTC"} if self.urls[db].startswith("postgresql") else {}
            engine = sa.create_engine(self.urls[db], connect_args=utc)
            md = sa.MetaData()
            for t in tables_of(db):
                t.sa_table(md)
            md.create_all(engine)
            add_indexes(engine, self.indexes)
            if self.timestamptz:
                retype_timestamptz(engine)
            self.engines[db] = engine

    def insert(self, table: str, *rows: dict) -> None:
        """Insert rows; on SQLite timestamps are given as text, exactly as a source would store them."""
        engine = self.engines[TABLES[table].database]
        full = [_row(table, r) for r in rows]
        cols = list(full[0])
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                                 f"({', '.join(':' + c for c in cols)})"), full)

    def execute(self, database: str, sql: str) -> None:
        with self.engines[database].begin() as conn:
            conn.exec_driver_sql(sql)

    def resources(self) -> dict:
        return {**{f"{db}_db": SourceDatabase(name=db, url=self.urls[db]) for db in DATABASES},
                "warehouse": Warehouse(url=self.warehouse_url), "exporter": ExportResource(uri=self.export_uri)}

    def defs(self) -> dg.Definitions:
        return build_defs(self.resources())

    def warehouse(self) -> Warehouse:
        return Warehouse(url=self.warehouse_url)
