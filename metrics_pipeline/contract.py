"""The source data contract (SOURCES.md) as code: the four databases, their tables and columns.

Everything that reads or writes a source goes through these definitions: the metric queries, the
row-validity rules of METRICS.md edge rule 13, the external source assets and the demo generator.
Columns not listed here may exist in a real source and are ignored.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

import sqlalchemy as sa

# Contract columns that the live source lacks ({table: columns}), set while a source connection is
# open (SourceDatabase.connect). Queries are built without them: a metric that does not read a
# dropped column keeps working, one that does fails naming it, and row-validity rules on a missing
# column are skipped (the schema change is alerted on its own).
ABSENT_COLUMNS: ContextVar[dict[str, frozenset[str]]] = ContextVar("absent_columns", default={})

DATABASES = ("app", "interactions", "messaging", "marketing")
INDEX_SETS = ("contract", "time", "none")  # secondary indexes a source may have (SourceTable.index_set)

_TYPES = {"text": sa.Text, "ts": sa.DateTime, "int": sa.BigInteger, "date": sa.Date}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"  # text | ts | int | date
    nullable: bool = False
    allowed: tuple[str, ...] = ()  # enumerated values (empty: free text)
    non_negative: bool = False
    usd: bool = False  # a currency column whose only valid value is 'USD'


@dataclass(frozen=True)
class SourceTable:
    """One table of the contract. Its required columns, enums and amounts define row validity."""

    name: str
    database: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ("id",)
    indexes: tuple[tuple[str, ...], ...] = field(default=())
    references: tuple[tuple[str, str], ...] = ()  # (column, parent table's id) within the same database

    @property
    def time_column(self) -> str:
        """The column that places a row in a period when it is validated (its creation time)."""
        return next(c.name for c in self.columns if c.kind in ("ts", "date"))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def present_columns(self) -> tuple[Column, ...]:
        """The contract's columns minus those the open source connection lacks (ABSENT_COLUMNS)."""
        absent = ABSENT_COLUMNS.get().get(self.name, frozenset())
        return tuple(c for c in self.columns if c.name not in absent)

    def index_set(self, kind: str = "contract") -> tuple[tuple[str, ...], ...]:
        """The secondary indexes of one of INDEX_SETS: the contract's (what the seeder creates), `time`
        (the main timestamp and `updated_at`, what a typical application database has) or `none`."""
        if kind == "contract":
            return self.indexes
        if kind == "time":
            return tuple(dict.fromkeys([(self.time_column,), ("updated_at",)]))
        if kind == "none":
            return ()
        raise ValueError(f"unknown index set {kind!r}; expected one of {', '.join(INDEX_SETS)}")

    def sa_indexes(self, table: sa.Table, kind: str = "contract") -> list[sa.Index]:
        """The indexes of `kind` (index_set) on `table`, named ix_<table>_<cols>."""
        return [sa.Index(f"ix_{self.name}_{'_'.join(cols)}", *(table.c[c] for c in cols))
                for cols in self.index_set(kind)]

    def sa_table(self, metadata: sa.MetaData | None = None) -> sa.Table:
        """A SQLAlchemy Core table with the contract's columns (those present, inside a connection)."""
        return sa.Table(
            self.name,
            metadata if metadata is not None else sa.MetaData(),
            *(
                sa.Column(c.name, _TYPES[c.kind], nullable=c.nullable, primary_key=c.name in self.key)
                for c in self.present_columns
            ),
        )


def _c(name, kind="text", **kw) -> Column:
    return Column(name, kind, **kw)


def _ts(name, **kw) -> Column:
    return Column(name, "ts", **kw)


def _n(name) -> Column:
    return Column(name, "int", non_negative=True)


PLATFORMS = ("ios", "android", "web")

TABLES: dict[str, SourceTable] = {
    t.name: t
    for t in [
        # ---- app -------------------------------------------------------------------------------
        SourceTable(
            "users", "app", "One row per registered account.",
            (_c("id"), _c("email"), _ts("created_at"), _c("country", nullable=True),
             _c("platform", allowed=PLATFORMS), _c("acquisition_channel", nullable=True),
             _ts("deleted_at", nullable=True), _ts("updated_at")),
            indexes=(("created_at",), ("updated_at",)),
        ),
        SourceTable(
            "user_sessions", "app", "One row per app session.",
            (_c("id"), _c("user_id"), _ts("started_at"), _ts("ended_at", nullable=True),
             _c("platform"), _c("app_version"), _n("screens_viewed"), _n("actions_taken"),
             _ts("updated_at")),
            references=(("user_id", "users"),),
            indexes=(("started_at",), ("user_id", "started_at"), ("updated_at",)),
        ),
        SourceTable(
            "subscriptions", "app",
            "One row per subscription; a plan change ends one row and starts another.",
            (_c("id"), _c("user_id"), _c("plan"), _c("billing_interval", allowed=("month", "year")),
             _n("price_cents"), _c("currency", usd=True),
             _c("status", allowed=("trialing", "active", "past_due", "canceled")),
             _ts("started_at"), _ts("trial_ends_at", nullable=True), _ts("canceled_at", nullable=True),
             _ts("ended_at", nullable=True), _ts("updated_at")),
            references=(("user_id", "users"),),
            # ended_at: MRR reads the subscriptions still paying at a run's start, and those that stop in it
            indexes=(("user_id",), ("started_at",), ("ended_at",), ("updated_at",)),
        ),
        SourceTable(
            "payments", "app", "One row per charge attempt.",
            (_c("id"), _c("user_id"), _c("subscription_id", nullable=True),
             _c("kind", allowed=("subscription", "one_time")),
             _c("provider", allowed=("appstore", "playstore", "stripe")), _n("amount_cents"),
             _n("fee_cents"), _c("currency", usd=True),
             _c("status", allowed=("succeeded", "failed", "refunded")), _ts("created_at"),
             _ts("refunded_at", nullable=True), _ts("updated_at")),
            references=(("user_id", "users"), ("subscription_id", "subscriptions")),
            indexes=(("created_at",), ("refunded_at",), ("updated_at",)),
        ),
        SourceTable(
            "ai_requests", "app", "One row per AI feature call.",
            (_c("id"), _c("user_id"), _c("model"), _c("feature"), _n("input_tokens"),
             _n("output_tokens"), _n("cost_micros"),
             _c("status", allowed=("completed", "failed", "timeout")), _n("duration_ms"),
             _ts("created_at"), _ts("updated_at")),
            references=(("user_id", "users"),),
            indexes=(("created_at",), ("updated_at",)),
        ),
        # ---- interactions ----------------------------------------------------------------------
        SourceTable(
            "swipes", "interactions", "One row per swipe.",
            (_c("id"), _c("user_id"), _c("target_user_id"),
             _c("action", allowed=("like", "pass", "superlike")), _ts("created_at"), _ts("updated_at")),
            indexes=(("created_at",), ("updated_at",)),
        ),
        SourceTable(
            "matches", "interactions", "One row per match between two users.",
            (_c("id"), _c("user_a_id"), _c("user_b_id"), _ts("created_at"), _ts("updated_at")),
            indexes=(("created_at",), ("updated_at",)),
        ),
        SourceTable(
            "video_calls", "interactions", "One row per video call of a match.",
            (_c("id"), _c("match_id"), _ts("started_at"),
             Column("duration_seconds", "int", nullable=True, non_negative=True), _ts("updated_at")),
            references=(("match_id", "matches"),),
            indexes=(("started_at",), ("updated_at",)),
        ),
        SourceTable(
            "events", "interactions", "Product analytics events (funnel steps among them).",
            (_c("id"), _c("actor_id"), _c("user_id", nullable=True), _c("session_id", nullable=True),
             _c("event_name"), _ts("event_time"), _c("platform"), _c("app_version"),
             _c("country", nullable=True), _c("properties", nullable=True), _ts("updated_at")),
            # (event_name, event_time): the funnel finds a day's first app_opens without scanning history
            indexes=(("event_time",), ("event_name", "actor_id", "event_time"), ("event_name", "event_time"),
                     ("updated_at",)),
        ),
        # ---- messaging -------------------------------------------------------------------------
        SourceTable(
            "contacts", "messaging", "Contacts of the business-messaging accounts.",
            (_c("id"), _c("account_id"), _ts("created_at"), _ts("blocked_at", nullable=True),
             _ts("deleted_at", nullable=True), _ts("updated_at")),
            indexes=(("created_at",), ("deleted_at",), ("updated_at",)),  # deleted_at: the contact balance
        ),
        SourceTable(
            "campaigns", "messaging", "Outbound messaging campaigns.",
            (_c("id"), _c("account_id"), _c("name"),
             _c("status", allowed=("draft", "scheduled", "active", "completed", "failed")),
             _ts("created_at"), _ts("started_at", nullable=True), _ts("completed_at", nullable=True),
             _n("recipients_count"), _ts("updated_at")),
            indexes=(("created_at",), ("updated_at",)),
        ),
        SourceTable(
            "conversations", "messaging", "Conversations between an account and a contact.",
            (_c("id"), _c("account_id"), _c("contact_id"), _ts("opened_at"),
             _ts("first_response_at", nullable=True), _ts("closed_at", nullable=True), _ts("updated_at")),
            references=(("contact_id", "contacts"),),
            indexes=(("opened_at",), ("closed_at",), ("updated_at",)),  # closed_at: open conversations
        ),
        SourceTable(
            "messages", "messaging", "Inbound and outbound messages with their delivery timestamps.",
            (_c("id"), _c("account_id"), _c("conversation_id"), _c("contact_id"),
             _c("campaign_id", nullable=True), _c("direction", allowed=("inbound", "outbound")),
             _c("status", allowed=("queued", "sent", "delivered", "read", "failed")),
             _ts("created_at"), *(_ts(f"{s}_at", nullable=True)
                                   for s in ("sent", "delivered", "read", "failed", "replied")),
             _ts("updated_at")),
            references=(("conversation_id", "conversations"), ("contact_id", "contacts"),
                        ("campaign_id", "campaigns")),
            indexes=(("created_at",), ("updated_at",)),
        ),
        # ---- marketing -------------------------------------------------------------------------
        SourceTable(
            "marketing_posts", "marketing", "Organic social posts with lifetime counters.",
            (_c("id"), _c("platform", allowed=("tiktok", "instagram", "youtube_shorts")), _c("category"),
             _c("status", allowed=("draft", "ready", "approved", "scheduled", "posted", "failed")),
             _ts("created_at"), _ts("posted_at", nullable=True), _n("views"), _n("likes"),
             _n("comments"), _n("shares"), _ts("updated_at")),
            indexes=(("created_at",), ("posted_at",), ("updated_at",)),
        ),
        SourceTable(
            "ad_spend_daily", "marketing", "Paid acquisition, one row per (date, channel, campaign).",
            (Column("date", "date"),
             _c("channel", allowed=("apple_search_ads", "tiktok_ads", "meta_ads", "google_ads")),
             _c("campaign_id"), _n("spend_cents"), _n("impressions"), _n("clicks"), _n("conversions"),
             _ts("updated_at")),
            key=("date", "channel", "campaign_id"),
            indexes=(("updated_at",),),
        ),
    ]
}


def tables_of(database: str) -> list[SourceTable]:
    return [t for t in TABLES.values() if t.database == database]
