"""Business-messaging metrics from the `messaging` database (several accounts).

Messages are attributed to their `created_at`; status timestamps arrive later and only count for
outbound messages (edge rule 7).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import UNKNOWN, number, source_table, valid
from metrics_pipeline.metrics.periods import Period, periods_subquery
from metrics_pipeline.metrics.spec import (
    DAY_WEEK_MONTH, CustomMetrics, Domain, MetricDef, MetricRow, MetricSpec, count, distinct, total, value_row,
)
from metrics_pipeline.metrics.sqltime import duration_micros

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
    """Rows with `start` before period end and `stop` NULL or not before it (edge rule 1)."""
    p = periods_subquery(periods, conn.dialect.name)
    t = source_table(table)
    alive = sa.and_(t.c[start] < p.c.hi, sa.or_(t.c[stop].is_(None), t.c[stop] >= p.c.hi), valid(t))
    by_key = {period.key: period for period in periods}
    rows = []
    for dim in ("", *dims):
        value = sa.func.coalesce(sa.cast(t.c[dim], sa.Text), UNKNOWN) if dim else None
        group = [p.c.period_start, *([value] if dim else [])]
        q = (sa.select(p.c.period_start, (value if dim else sa.literal("")).label("v"), sa.func.count().label("n"))
             .select_from(p.join(t, alive)).group_by(*group))
        rows += [value_row(metric, by_key[str(r.period_start)], number(r.n), dim, str(r.v) if dim else "")
                 for r in conn.execute(q)]
    return rows


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
