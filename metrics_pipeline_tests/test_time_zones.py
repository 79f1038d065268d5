"""Periods cut in a METRICS_TIMEZONE other than UTC, on sources whose PostgreSQL server runs in
America/Los_Angeles, with `timestamp` and `timestamp with time zone` columns: a half-hour offset
(Asia/Kolkata) and a 25-hour DST day (America/New_York, 2026-11-01).

Source rows are UTC instants; each comment gives the local time that places it. Expectations are
computed by hand from METRICS.md. The domains are computed straight from the query layer (the
Dagster partitions are cut in the test process's METRICS_TIMEZONE, UTC).
"""

from __future__ import annotations

import datetime as dt

import pytest

from metrics_pipeline.metrics.activity import ACTIVITY
from metrics_pipeline.metrics.engine import compute_domain
from metrics_pipeline.metrics.marketing import MARKETING
from metrics_pipeline.metrics.messaging import MESSAGING
from metrics_pipeline.metrics.periods import periods_between
from metrics_pipeline.metrics.revenue import REVENUE
from metrics_pipeline.resources import SourceDatabase

pytestmark = pytest.mark.parametrize("sources", ["sqlite", "postgres", "postgres-timestamptz"], indirect=True)

AS_OF = dt.datetime(2027, 1, 1)


def computed(sources, domain, grain: str, first: str, end: str, tz: str, metric: str) -> dict:
    """{period_start: value} of a metric's totals for the periods of `grain` in [first, end) local."""
    periods = periods_between(grain, dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(end), tz)
    db = SourceDatabase(name=domain.database, url=sources.urls[domain.database])
    with db.connect(domain.tables_for(grain)) as conn:
        rows = compute_domain(conn, domain, grain, periods, AS_OF)
    return {r.period_start: r.value for r in rows if r.metric == metric and r.dimension == ""}


def test_half_hour_offset_kolkata(sources):
    tz = "Asia/Kolkata"  # UTC+05:30: local day 01-05 is 01-04 18:30 .. 01-05 18:30 UTC
    sources.insert("users",
                   {"created_at": "2026-01-04 18:29:59.999999"},  # 01-04 23:59:59.999999
                   {"created_at": "2026-01-04 18:30:00"},  # 01-05 00:00
                   {"created_at": "2026-01-05 05:44:00.500000"},  # 01-05 11:14:00.5
                   {"created_at": "2026-01-05 18:30:00.000000"})  # 01-06 00:00
    sources.insert("conversations",
                   {"opened_at": "2026-01-05 10:00:00", "closed_at": "2026-01-05 18:30:00"},  # 15:30 .. 01-06 00:00
                   {"opened_at": "2026-01-05 18:29:59"})  # 01-05 23:59:59, never closed
    sources.insert("ad_spend_daily", {"date": "2026-01-05", "campaign_id": "c", "spend_cents": 1234})

    assert computed(sources, ACTIVITY, "day", "2026-01-04", "2026-01-07", tz, "new_users") == {
        "2026-01-04": 1, "2026-01-05": 2, "2026-01-06": 1}
    hours = computed(sources, ACTIVITY, "hour", "2026-01-05 00:00", "2026-01-05 12:00", tz, "new_users")
    assert {k: v for k, v in hours.items() if v} == {"2026-01-05 00:00:00": 1, "2026-01-05 11:00:00": 1}
    assert len(hours) == 12
    # open at the end of 01-05 (01-05 18:30 UTC): both (closing exactly at the end is not "before end")
    assert computed(sources, MESSAGING, "day", "2026-01-04", "2026-01-07", tz, "open_conversations") == {
        "2026-01-04": 0, "2026-01-05": 2, "2026-01-06": 1}
    # a DATE is a local calendar day already: 12.34 USD on 01-05
    assert computed(sources, MARKETING, "day", "2026-01-04", "2026-01-07", tz, "ad_spend") == {
        "2026-01-04": 0, "2026-01-05": 12.34, "2026-01-06": 0}


def test_dst_day_of_25_hours_new_york(sources):
    tz = "America/New_York"  # 2026-11-01 02:00 EDT -> 01:00 EST: the day is 11-01 04:00 .. 11-02 05:00 UTC
    sources.insert("users",
                   {"created_at": "2026-11-01 03:59:59"},  # 10-31 23:59:59 EDT
                   {"created_at": "2026-11-01 04:00:00.000000"},  # 11-01 00:00 EDT
                   {"created_at": "2026-11-01 05:30:00"},  # 01:30 EDT (the first 01:00 hour)
                   {"created_at": "2026-11-01 06:30:00"},  # 01:30 EST (the repeated one)
                   {"created_at": "2026-11-02 04:59:59.999999"},  # 11-01 23:59:59.999999 EST
                   {"created_at": "2026-11-02 05:00:00"})  # 11-02 00:00 EST
    sources.insert("subscriptions",
                   {"user_id": "a", "started_at": "2026-10-20 00:00:00", "ended_at": "2026-11-02 05:00:00",
                    "status": "canceled"},  # access ends at 11-02 00:00 EST: not paying at the end of 11-01
                   {"user_id": "b", "started_at": "2026-11-02 05:00:00"})  # paying at the end of 11-01

    assert computed(sources, ACTIVITY, "day", "2026-10-31", "2026-11-03", tz, "new_users") == {
        "2026-10-31": 1, "2026-11-01": 4, "2026-11-02": 1}
    # local hour 01:00 of 11-01 lasts two real hours (05:00 .. 07:00 UTC)
    hours = computed(sources, ACTIVITY, "hour", "2026-11-01 00:00", "2026-11-01 03:00", tz, "new_users")
    assert hours == {"2026-11-01 00:00:00": 1, "2026-11-01 01:00:00": 2, "2026-11-01 02:00:00": 0}
    # ISO week of Mon 10-26 holds 10-31 and 11-01: 1 + 4
    assert computed(sources, ACTIVITY, "week", "2026-10-26", "2026-11-09", tz, "new_users") == {
        "2026-10-26": 5, "2026-11-02": 1}
    # MRR at each day's end: a (10 USD) until 11-02 00:00 EST, then b (10 USD): user a churns, b is new
    assert computed(sources, REVENUE, "day", "2026-10-31", "2026-11-03", tz, "mrr") == {
        "2026-10-31": 10, "2026-11-01": 10, "2026-11-02": 10}
    assert computed(sources, REVENUE, "day", "2026-10-31", "2026-11-03", tz, "mrr_churned") == {
        "2026-10-31": 0, "2026-11-01": 10, "2026-11-02": 0}
    assert computed(sources, REVENUE, "day", "2026-10-31", "2026-11-03", tz, "mrr_new") == {
        "2026-10-31": 0, "2026-11-01": 10, "2026-11-02": 0}
