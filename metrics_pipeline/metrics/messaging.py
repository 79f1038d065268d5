"""Business-messaging metrics from the `messaging` database (several accounts).

Messages are attributed to their `created_at`; status timestamps arrive later and only count for
outbound messages (edge rule 7).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import UNKNOWN, number, source_table, valid
from metrics_pipeline.metrics.periods import Period, consecutive_runs, place
from metrics_pipeline.metrics.spec import (
    DAY_WEEK_MONTH, CustomMetrics, Domain, MetricDef, MetricRow, MetricSpec, count, distinct, total, value_row,
)
from metrics_pipeline.metrics.sqltime import duration_micros, scanned, timestamp_literal, ts_norm

ACCOUNT = ("account_id",)


def _outbound_with(column: str):
    return lambda t: sa.and_(t.c.direction == "outbound", t.c[column].is_not(None))


def _failed(t: sa.Table) -> sa.ColumnElement:
    return t.c.status == "failed"


def _message_count(name: str, description: str, where=None, dims=ACCOUNT) -> MetricSpec:
    return MetricSpec(name, DAY_WEEK_MONTH, description, dims=dims, table="messages", measure=count(where))


def _message_ratio(name: str, description: str, numerator, denominator) -> MetricSpec:
    return MetricSpec(name, DAY_WEEK_MONTH, description, dims=ACCOUNT, table="messages",
                      measure=count(numerator), denominator=count(denominator))


def _responded(t: sa.Table) -> sa.ColumnElement:
    return t.c.first_response_at.is_not(None)


SPECS = (
    _message_count("messages_total", "Messages created in the period, both directions.",
                   dims=("account_id", "direction")),
    _message_count("messages_sent", "Outbound messages of the period that were sent.", _outbound_with("sent_at")),
    _message_count("messages_delivered", "Outbound messages of the period that were delivered.",
                   _outbound_with("delivered_at")),
    _message_count("messages_read", "Outbound messages of the period that were read.", _outbound_with("read_at")),
    _message_count("messages_failed", "Messages of the period (either direction) with status failed.", _failed),
    _message_count("messages_replied", "Outbound messages of the period that got a reply.",
                   _outbound_with("replied_at")),
    _message_ratio("delivery_rate", "Delivered / sent outbound messages.",
                   _outbound_with("delivered_at"), _outbound_with("sent_at")),
    _message_ratio("read_rate", "Read / delivered outbound messages.",
                   _outbound_with("read_at"), _outbound_with("delivered_at")),
    _message_ratio("reply_rate", "Replied / sent outbound messages.",
                   _outbound_with("replied_at"), _outbound_with("sent_at")),
    _message_ratio("failure_rate", "Failed / all messages.", _failed, None),
    MetricSpec("campaigns_started", DAY_WEEK_MONTH, "Campaigns that started sending in the period.",
               dims=ACCOUNT, table="campaigns", time="started_at"),
    MetricSpec("campaigns_completed", DAY_WEEK_MONTH, "Campaigns that completed in the period.",
               dims=ACCOUNT, table="campaigns", time="completed_at"),
    MetricSpec("campaigns_failed", DAY_WEEK_MONTH, "Campaigns created in the period whose status is failed.",
               dims=ACCOUNT, table="campaigns", measure=count(_failed)),
    MetricSpec("campaign_recipients", DAY_WEEK_MONTH, "Recipients of the campaigns started in the period.",
               table="campaigns", time="started_at", measure=total("recipients_count")),
    MetricSpec("new_contacts", DAY_WEEK_MONTH, "Contacts created in the period.", dims=ACCOUNT, table="contacts"),
    MetricSpec("blocked_contacts", DAY_WEEK_MONTH, "Contacts who blocked the account in the period.",
               dims=ACCOUNT, table="contacts", time="blocked_at"),
    MetricSpec("active_contacts", DAY_WEEK_MONTH, "Distinct contacts who sent an inbound message in the period.",
               dims=ACCOUNT, table="messages",
               measure=distinct("contact_id", lambda t: t.c.direction == "inbound")),
    MetricSpec("conversations_opened", DAY_WEEK_MONTH, "Conversations opened in the period.",
               dims=ACCOUNT, table="conversations", time="opened_at"),
    MetricSpec("conversations_closed", DAY_WEEK_MONTH, "Conversations closed in the period.",
               dims=ACCOUNT, table="conversations", time="closed_at"),
    MetricSpec("avg_first_response_seconds", DAY_WEEK_MONTH,
               "Mean seconds from opening to first response, over conversations opened in the period that got one.",
               dims=ACCOUNT, table="conversations", time="opened_at",
               measure=total(lambda t: duration_micros(t.c.first_response_at, t.c.opened_at), _responded),
               denominator=count(_responded), scale=1e6),
)


def _balance(conn: sa.Connection, periods: list[Period], table: str, start: str, stop: str,
             metric: str, dims: tuple[str, ...]) -> list[MetricRow]:
    """Rows with `start` before period end and `stop` NULL or not before it (edge rule 1).

    Per run of consecutive periods: one period is counted directly at its end; several (a backfill)
    start from the count at the first period's start, then add each period's changes in order.
    Either way each statement reads the table once (`_alive_query`, `_changes_query`), so the cost
    grows with the rows alive and the rows that changed in the range, never with periods x history.
    The total is the sum of the first breakdown's counts (every row has exactly one value of it).
    """
    dialect = conn.dialect.name
    t = source_table(table)
    dim = dims[0] if dims else ""
    value = (sa.func.coalesce(sa.cast(t.c[dim], sa.Text), UNKNOWN) if dim else sa.literal("")).label("v")
    counts: dict[str, dict[str, int]] = {}  # period key -> dimension value -> alive rows at its end
    for run in consecutive_runs(periods):
        if len(run) == 1:
            end = sa.literal_column(timestamp_literal(run[0].end_utc, dialect))
            counts[run[0].key] = {str(r.v): number(r.n) for r in conn.execute(_alive_query(t, start, stop, value, end))}
            continue
        first = sa.literal_column(timestamp_literal(run[0].start_utc, dialect))
        alive = {str(r.v): number(r.n) for r in conn.execute(_alive_query(t, start, stop, value, first))}
        change: dict[str, dict[str, int]] = {}
        for r in conn.execute(_changes_query(t, start, stop, value, run, dialect)):
            change.setdefault(str(r.k), {})[str(r.v)] = number(r.n)
        for period in run:
            for v, n in change.get(period.key, {}).items():
                alive[v] = alive.get(v, 0) + n
            counts[period.key] = dict(alive)
    by_key = {period.key: period for period in periods}
    rows: list[MetricRow] = []
    for key, per_value in counts.items():
        total = sum(per_value.values())
        if total:
            rows.append(value_row(metric, by_key[key], total))
        if dim:
            rows += [value_row(metric, by_key[key], n, dim, v) for v, n in per_value.items() if n]
    return rows


def _alive_query(t: sa.Table, start: str, stop: str, value, end) -> sa.Select:
    """(v, n): rows alive at the instant `end` (start before it, stop NULL or not before it) per value.

    Two branches, each an index range on `stop` when there is one (still NULL, or at/after the
    end), so rows that stopped long ago are not visited; one scan of the table in order when there
    is none (`scanned`: never a walk of an index on `start` over all of history).
    """
    branches = [sa.select(value).where(stopped, scanned(t.c[start]) < end, valid(t))
                for stopped in (t.c[stop].is_(None), t.c[stop] >= end)]
    u = sa.union_all(*branches).subquery("alive")
    return sa.select(u.c.v, sa.func.count().label("n")).group_by(u.c.v)


def _changes_query(t: sa.Table, start: str, stop: str, value, periods: list[Period], dialect: str) -> sa.Select:
    """(k, v, n): per period, rows arriving (start in it) minus rows leaving (max(start, stop) in it).

    A row that stopped before it started leaves where it arrives (counted 0 there).
    """
    arrived = place(t, start, periods, dialect, "arrived")
    left = place(t, stop, periods, dialect, "left")
    stays = sa.case((sa.and_(t.c[stop].is_not(None), ts_norm(t.c[stop]) < ts_norm(t.c[start])), 0), else_=1)
    arrivals = (sa.select(arrived.period_start.label("k"), value, stays.label("d"))
                .select_from(arrived.joined).where(arrived.window, valid(t)))
    departures = (sa.select(left.period_start.label("k"), value, sa.literal(-1).label("d"))
                  .select_from(left.joined)
                  .where(left.window, valid(t), ts_norm(t.c[stop]) >= ts_norm(t.c[start])))
    u = sa.union_all(arrivals, departures).subquery("changes")
    return sa.select(u.c.k, u.c.v, sa.func.sum(u.c.d).label("n")).group_by(u.c.k, u.c.v)


def total_contacts(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    return _balance(conn, periods, "contacts", "created_at", "deleted_at", "total_contacts", ACCOUNT)


def open_conversations(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    return _balance(conn, periods, "conversations", "opened_at", "closed_at", "open_conversations", ())


MESSAGING = Domain(
    name="messaging",
    database="messaging",
    description="How business messaging performs: delivery funnel, campaigns, contacts and conversations.",
    specs=SPECS,
    custom=(
        CustomMetrics(
            (MetricDef("total_contacts", DAY_WEEK_MONTH,
                       "Contacts created before period end and not deleted before it.", dims=ACCOUNT,
                       kind="balance"),),
            ("contacts",), total_contacts),
        CustomMetrics(
            (MetricDef("open_conversations", DAY_WEEK_MONTH,
                       "Conversations opened before period end and not closed before it.", kind="balance"),),
            ("conversations",), open_conversations),
    ),
)
