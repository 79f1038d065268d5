"""Exact values of the Messaging metrics (`messaging`) on small hand-built fixtures.

Every expectation is computed by hand from METRICS.md (arithmetic in the comment beside it), never
from the implementation. Each test runs on SQLite and on PostgreSQL (the `sources` fixture).
Calendar: Sun 2026-03-01 is in the month of March but in the week of Mon 02-23; the week of Mon 03-02
runs to Sun 03-08. Two accounts, `acc1` and `acc2`.
"""

from __future__ import annotations

import pytest

from metrics_pipeline_tests.conftest import every_source_kind, values
from metrics_pipeline_tests.test_activity_metrics import (
    approx, assert_reported, nonzero, relax_required_columns, row, run_with_check_reports, totals,
)
from metrics_pipeline_tests.test_revenue_metrics import expect_totals

MESSAGE_COUNTS = ["messages_total", "messages_sent", "messages_delivered", "messages_read", "messages_failed",
                  "messages_replied"]
MESSAGE_RATES = ["delivery_rate", "read_rate", "reply_rate", "failure_rate"]
OTHER_COUNTS = ["campaigns_started", "campaigns_completed", "campaigns_failed", "campaign_recipients",
                "new_contacts", "blocked_contacts", "active_contacts", "conversations_opened",
                "conversations_closed"]
BALANCES = ["total_contacts", "open_conversations"]
ALL_METRICS = MESSAGE_COUNTS + MESSAGE_RATES + OTHER_COUNTS + BALANCES + ["avg_first_response_seconds"]

pytestmark = every_source_kind  # primary keys only, contract indexes, timestamptz


def seconds(x):
    """Durations exact to the microsecond: a lost microsecond must fail."""
    return pytest.approx(x, rel=0, abs=1e-8)


def message(account, direction, status, created_at, contact="k", id=None, **stamps) -> dict:
    """stamps: sent, delivered, read, failed, replied (the *_at columns)."""
    return {"account_id": account, "direction": direction, "status": status, "created_at": created_at,
            "contact_id": contact, **({"id": id} if id else {}), **{f"{k}_at": v for k, v in stamps.items()}}


def campaign(account, status, created_at, started_at=None, completed_at=None, recipients=0, **extra) -> dict:
    return {"account_id": account, "status": status, "created_at": created_at, "started_at": started_at,
            "completed_at": completed_at, "recipients_count": recipients, **extra}


def contact(account, created_at, blocked_at=None, deleted_at=None, **extra) -> dict:
    return {"account_id": account, "created_at": created_at, "blocked_at": blocked_at, "deleted_at": deleted_at,
            **extra}


def conversation(account, opened_at, first_response_at=None, closed_at=None, **extra) -> dict:
    return {"account_id": account, "opened_at": opened_at, "first_response_at": first_response_at,
            "closed_at": closed_at, **extra}


@pytest.fixture
def messaging_book(sources):
    M = message
    sources.insert("messages",
                   # Sun 03-01: sent on 03-02, still attributed to 03-01
                   M("acc1", "outbound", "sent", "2026-03-01 23:59:59.999999", sent="2026-03-02 00:00:01"),
                   # Mon 03-02, acc1
                   M("acc1", "outbound", "read", "2026-03-02 10:00:00", sent="2026-03-02 10:00:01",
                     delivered="2026-03-02 10:00:05", read="2026-03-02 11:00:00", replied="2026-03-02 12:00:00"),
                   M("acc1", "outbound", "delivered", "2026-03-02 11:00:00.000000", sent="2026-03-02 11:00:01",
                     delivered="2026-03-03 01:00:00"),                      # delivered the next day
                   M("acc1", "outbound", "sent", "2026-03-02 23:59:59.999999", sent="2026-03-03 00:00:10"),
                   M("acc1", "outbound", "failed", "2026-03-02 12:00:00", failed="2026-03-02 12:00:01"),
                   M("acc1", "inbound", "read", "2026-03-02 13:00:00", "k1",   # inbound: never "sent"
                     sent="2026-03-02 13:00:00", delivered="2026-03-02 13:00:01", read="2026-03-02 13:00:02",
                     replied="2026-03-02 13:05:00"),
                   # Mon 03-02, acc2
                   M("acc2", "inbound", "failed", "2026-03-02 13:00:00", "k2", sent="2026-03-02 13:00:00",
                     failed="2026-03-02 13:00:01"),
                   M("acc2", "inbound", "delivered", "2026-03-02 14:00:00", "k2"),
                   M("acc2", "outbound", "queued", "2026-03-02 15:00:00"),
                   # Tue 03-03, acc1
                   M("acc1", "inbound", "delivered", "2026-03-03 09:00:00", "k1"),
                   M("acc1", "outbound", "sent", "2026-03-03 10:00:00", "k1", sent="2026-03-03 10:00:01"))
    C = campaign
    sources.insert("campaigns",
                   C("acc1", "completed", "2026-02-27 10:00:00", "2026-03-02 08:00:00", "2026-03-03 08:00:00", 100),
                   C("acc1", "failed", "2026-03-02 09:00:00", "2026-03-02 09:30:00", None, 40),
                   C("acc2", "failed", "2026-02-28 12:00:00", "2026-03-03 00:00:00.000000", None, 7),
                   C("acc2", "active", "2026-03-02 10:00:00", "2026-03-02 23:59:59.999999", None, 3),
                   C("acc2", "draft", "2026-03-03 10:00:00", None, None, 50))             # never started
    K = contact
    sources.insert("contacts",
                   K("acc1", "2026-02-10 00:00:00", id="k1"),
                   K("acc2", "2026-03-02 08:00:00", "2026-03-02 20:00:00", id="k2"),
                   K("acc1", "2026-03-02 09:00:00", deleted_at="2026-03-03 00:00:00", id="k3"),  # deleted at end
                   K("acc1", "2026-03-03 00:00:00.000000", id="k4"),                             # created at end
                   K("acc2", "2026-02-01 00:00:00", "2026-02-15 00:00:00", "2026-03-02 12:00:00", id="k5"),
                   K("acc2", "2026-03-03 10:00:00", "2026-03-03 23:59:59.999999", id="k6"))
    V = conversation
    sources.insert("conversations",
                   V("acc1", "2026-03-02 10:00:00", "2026-03-02 10:00:30.250000", "2026-03-02 18:00:00"),
                   V("acc1", "2026-03-02 23:30:00", "2026-03-03 00:30:00.000001",     # response the next day
                     "2026-03-03 00:00:00"),                                          # closed exactly at end
                   V("acc2", "2026-03-02 12:00:00"),                                  # no response, never closed
                   V("acc2", "2026-03-03 09:00:00", "2026-03-03 09:00:01.000001", "2026-03-03 23:59:59.999999"),
                   V("acc1", "2026-02-20 00:00:00"))                                  # open all along
    return sources


def test_messaging_metrics_by_day(messaging_book, materialize):
    sources = messaging_book
    assert materialize(sources, "day", "2026-03-01", "2026-03-04").success

    # --- messages (attributed to created_at) ---------------------------------------------------
    # 03-01: 1 outbound sent. 03-02: acc1 5 (4 outbound, 1 inbound) + acc2 3 (2 inbound, 1 outbound) = 8
    # sent = outbound with sent_at: acc1 3 (incl. the one sent on 03-03); the inbound rows with sent_at
    # and the failed outbound without sent_at are not sent. delivered 2 (one of them delivered on 03-03);
    # read 1; replied 1; failed: acc1 outbound + acc2 inbound = 2.
    # 03-03: 1 inbound + 1 outbound sent (the late stamps of 03-02's messages do not count here).
    # 03-04: nothing.
    expected_counts = {
        "2026-03-01": [1, 1, 0, 0, 0, 0],
        "2026-03-02": [8, 3, 2, 1, 2, 1],
        "2026-03-03": [2, 1, 0, 0, 0, 0],
        "2026-03-04": [0, 0, 0, 0, 0, 0],
    }
    # rates: delivered/sent, read/delivered, replied/sent, failed/all
    expected_rates = {
        "2026-03-01": [0, None, 0, 0],                    # 0/1, 0/0, 0/1, 0/1
        "2026-03-02": [2 / 3, 1 / 2, 1 / 3, 2 / 8],
        "2026-03-03": [0, None, 0, 0],                    # 0/1, 0/0, 0/1, 0/2
        "2026-03-04": [None, None, None, None],
    }
    for day in expected_counts:
        expect_totals(totals(sources, MESSAGE_COUNTS + MESSAGE_RATES, "day", day),
                      dict(zip(MESSAGE_COUNTS + MESSAGE_RATES, expected_counts[day] + expected_rates[day])))

    assert nonzero(values(sources, "messages_total", "day", "account_id", "2026-03-02", "2026-03-04")) == {
        ("2026-03-02", "acc1"): 5, ("2026-03-02", "acc2"): 3, ("2026-03-03", "acc1"): 2}
    assert nonzero(values(sources, "messages_total", "day", "direction", "2026-03-02", "2026-03-04")) == {
        ("2026-03-02", "outbound"): 5, ("2026-03-02", "inbound"): 3,
        ("2026-03-03", "outbound"): 1, ("2026-03-03", "inbound"): 1}
    d2 = ("2026-03-02", "2026-03-03")
    assert nonzero(values(sources, "messages_sent", "day", "account_id", *d2)) == {("2026-03-02", "acc1"): 3}
    assert nonzero(values(sources, "messages_failed", "day", "account_id", *d2)) == {
        ("2026-03-02", "acc1"): 1, ("2026-03-02", "acc2"): 1}
    # acc2 sent nothing: its delivery rate is NULL (or left out); acc2 failure 1/3, acc1 1/5
    assert nonzero(values(sources, "delivery_rate", "day", "account_id", *d2)) == {
        ("2026-03-02", "acc1"): approx(2 / 3)}
    assert nonzero(values(sources, "failure_rate", "day", "account_id", *d2)) == {
        ("2026-03-02", "acc1"): approx(1 / 5), ("2026-03-02", "acc2"): approx(1 / 3)}
    delivery = row(sources, "delivery_rate", "day", "2026-03-02")
    assert (delivery["numerator"], delivery["denominator"]) == (2, 3)
    failure = row(sources, "failure_rate", "day", "2026-03-02")
    assert (failure["numerator"], failure["denominator"]) == (2, 8)
    read_nothing = row(sources, "read_rate", "day", "2026-03-03")
    assert read_nothing["value"] is None and read_nothing["denominator"] in (0, None)

    # --- campaigns, contacts, conversations ----------------------------------------------------
    # campaigns started: 03-02 3 (acc1 2, acc2 1, one at 23:59:59.999999), 03-03 1 (acc2, at 00:00);
    # completed 03-03 1; failed by created_at: 03-02 1 (the acc2 failure was created in February);
    # recipients of started campaigns: 03-02 100 + 40 + 3 = 143, 03-03 7 (the draft's 50 never count)
    # contacts: new 03-02 k2, k3; 03-03 k4 (created exactly 00:00), k6. blocked 03-02 k2; 03-03 k6.
    # active (distinct inbound senders): 03-02 k1, k2 (k2 twice) = 2; 03-03 k1 = 1
    # conversations opened: 03-02 3, 03-03 1; closed: 03-02 1, 03-03 2 (one exactly at 00:00)
    expected_other = {
        "2026-03-01": [0, 0, 0, 0, 0, 0, 0, 0, 0],
        "2026-03-02": [3, 0, 1, 143, 2, 1, 2, 3, 1],
        "2026-03-03": [1, 1, 0, 7, 2, 1, 1, 1, 2],
        "2026-03-04": [0, 0, 0, 0, 0, 0, 0, 0, 0],
    }
    # total_contacts at end (created < end, deleted NULL or >= end):
    #   end of 03-01 (03-02 00:00): k1, k5 (deleted later that day) = 2
    #   end of 03-02 (03-03 00:00): k1, k2, k3 (deleted exactly at end: still counts) = 3;
    #     k4 (created exactly at end) not yet, k5 deleted before end
    #   end of 03-03 and 03-04: k1, k2, k4, k6 = 4 (blocked contacts are not deleted)
    # open_conversations at end (opened < end, closed NULL or >= end):
    #   03-01: the February one = 1; 03-02: it + the 23:30 one (closed exactly at end) + acc2's = 3
    #   03-03 and 03-04: the February one + acc2's unclosed one = 2
    expected_balances = {"2026-03-01": [2, 1], "2026-03-02": [3, 3], "2026-03-03": [4, 2], "2026-03-04": [4, 2]}
    # avg first response: 03-02 (30.25 + 3600.000001) / 2 = 1815.1250005 (acc2's unanswered one excluded);
    # 03-03 1.000001; 03-01 and 03-04 no conversation opened -> NULL
    expected_avg = {"2026-03-01": None, "2026-03-02": seconds(1815.1250005), "2026-03-03": seconds(1.000001),
                    "2026-03-04": None}
    for day in expected_other:
        got = totals(sources, OTHER_COUNTS + BALANCES + ["avg_first_response_seconds"], "day", day)
        assert got == dict(zip(OTHER_COUNTS + BALANCES + ["avg_first_response_seconds"],
                               expected_other[day] + expected_balances[day] + [expected_avg[day]])), day

    d23 = ("2026-03-02", "2026-03-04")
    assert nonzero(values(sources, "campaigns_started", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc1"): 2, ("2026-03-02", "acc2"): 1, ("2026-03-03", "acc2"): 1}
    assert nonzero(values(sources, "campaigns_failed", "day", "account_id", *d23)) == {("2026-03-02", "acc1"): 1}
    assert nonzero(values(sources, "new_contacts", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc1"): 1, ("2026-03-02", "acc2"): 1, ("2026-03-03", "acc1"): 1, ("2026-03-03", "acc2"): 1}
    assert nonzero(values(sources, "blocked_contacts", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc2"): 1, ("2026-03-03", "acc2"): 1}
    assert nonzero(values(sources, "active_contacts", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc1"): 1, ("2026-03-02", "acc2"): 1, ("2026-03-03", "acc1"): 1}
    # end of 03-02: acc1 k1, k3; acc2 k2. End of 03-03: acc1 k1, k4; acc2 k2, k6
    assert nonzero(values(sources, "total_contacts", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc1"): 2, ("2026-03-02", "acc2"): 1, ("2026-03-03", "acc1"): 2, ("2026-03-03", "acc2"): 2}
    assert nonzero(values(sources, "conversations_closed", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc1"): 1, ("2026-03-03", "acc1"): 1, ("2026-03-03", "acc2"): 1}
    assert nonzero(values(sources, "avg_first_response_seconds", "day", "account_id", *d23)) == {
        ("2026-03-02", "acc1"): seconds(1815.1250005), ("2026-03-03", "acc2"): seconds(1.000001)}


def test_messaging_metrics_by_week_and_month(messaging_book, materialize):
    sources = messaging_book
    assert materialize(sources, "week", "2026-03-02").success
    assert materialize(sources, "month", "2026-03-01").success

    # week of 03-02: the messages of 03-02 and 03-03: total 8 + 2 = 10; sent 3 + 1 = 4; delivered 2;
    # read 1; failed 2; replied 1 -> delivery 2/4, read 1/2, reply 1/4, failure 2/10.
    # month of March adds Sunday 03-01 (1 outbound sent): total 11, sent 5 -> 2/5, 1/2, 1/5, 2/11
    expect_totals(totals(sources, MESSAGE_COUNTS + MESSAGE_RATES, "week", "2026-03-02"), dict(zip(
        MESSAGE_COUNTS + MESSAGE_RATES, [10, 4, 2, 1, 2, 1, 2 / 4, 1 / 2, 1 / 4, 2 / 10])))
    expect_totals(totals(sources, MESSAGE_COUNTS + MESSAGE_RATES, "month", "2026-03-01"), dict(zip(
        MESSAGE_COUNTS + MESSAGE_RATES, [11, 5, 2, 1, 2, 1, 2 / 5, 1 / 2, 1 / 5, 2 / 11])))
    reply = row(sources, "reply_rate", "week", "2026-03-02")
    assert (reply["numerator"], reply["denominator"], reply["period_end"]) == (1, 4, "2026-03-09")

    # both periods: campaigns started 4, completed 1, failed 1 (the acc2 failure was created in Feb),
    # recipients 143 + 7 = 150; new contacts k2, k3, k4, k6 = 4; blocked k2, k6 = 2 (k5 in Feb);
    # active contacts distinct {k1, k2} = 2 (the sum of the days would be 3); opened 4, closed 3.
    # balances at the end (03-09 / 04-01): contacts k1, k2, k4, k6 = 4; open conversations 2.
    # avg first response: (30.25 + 3600.000001 + 1.000001) / 3 = 3631.250002 / 3 = 1210.41666733...
    #   (not the mean of the daily means (1815.1250005 + 1.000001) / 2)
    for grain, start in (("week", "2026-03-02"), ("month", "2026-03-01")):
        assert totals(sources, OTHER_COUNTS + BALANCES + ["avg_first_response_seconds"], grain, start) == dict(zip(
            OTHER_COUNTS + BALANCES + ["avg_first_response_seconds"],
            [4, 1, 1, 150, 4, 2, 2, 4, 3, 4, 2, seconds(3631.250002 / 3)])), grain
        assert nonzero(values(sources, "active_contacts", grain, "account_id")) == {
            (start, "acc1"): 1, (start, "acc2"): 1}                                  # k1; k2
        assert nonzero(values(sources, "messages_total", grain, "direction")) == {
            (start, "outbound"): 6 if grain == "week" else 7, (start, "inbound"): 4}
    avg = row(sources, "avg_first_response_seconds", "week", "2026-03-02")
    assert (avg["numerator"], avg["denominator"]) == (seconds(3631.250002), 3)
    assert nonzero(values(sources, "avg_first_response_seconds", "week", "account_id")) == {
        ("2026-03-02", "acc1"): seconds(3630.250001 / 2), ("2026-03-02", "acc2"): seconds(1.000001)}
    assert nonzero(values(sources, "total_contacts", "month", "account_id")) == {
        ("2026-03-01", "acc1"): 2, ("2026-03-01", "acc2"): 2}


def test_contract_breaking_messaging_rows_are_excluded_and_reported(sources):
    for table in ("messages", "campaigns", "contacts", "conversations"):
        relax_required_columns(sources, table)
    t = "2026-03-09 10:00:00"
    M = message
    sources.insert("messages",
                   M("acc1", "outbound", "delivered", t, "kk1", sent=t, delivered=t, id="good_msg_out"),
                   M("acc1", "inbound", "delivered", t, "kk1", id="good_msg_in"),
                   M("acc1", "sideways", "failed", t, "kk9", sent=t, id="bad_msg_direction"),   # unknown enum
                   M("acc1", "outbound", "bounced", t, "kk9", sent=t, id="bad_msg_status"),
                   M(None, "inbound", "failed", t, "kk8", id="bad_msg_null_account"))            # NULL required
    sources.insert("campaigns",
                   campaign("acc1", "active", t, t, None, 10, id="good_campaign"),
                   campaign("acc1", "active", t, t, None, -5, id="bad_campaign_negative"),
                   campaign("acc1", "paused", t, t, None, 20, id="bad_campaign_status"))
    sources.insert("contacts", contact("acc1", t, id="good_contact"),
                   contact(None, t, t, id="bad_contact_null_account"))
    sources.insert("conversations",
                   conversation("acc1", t, "2026-03-09 10:00:10", id="good_conversation"),
                   conversation("acc1", t, "2026-03-09 10:01:40", contact_id=None, id="bad_conversation_null"))

    run, reports = run_with_check_reports(sources, "day", "2026-03-09", "2026-03-10")
    assert run.success                                       # WARN check: the run still succeeds
    # 03-09, good rows only: messages 2 (1 sent and delivered, 1 inbound), failed 0 -> failure 0/2;
    # campaigns started 1 with 10 recipients; 1 new contact; active contact kk1; 1 conversation, 10 s
    # 03-10 (empty): every count 0, every ratio/average NULL; balances still hold the good rows (1, 1)
    expected = {
        "2026-03-09": [2, 1, 1, 0, 0, 0] + [1, 0, 0, 0] + [1, 0, 0, 10, 1, 0, 1, 1, 0] + [1, 1] + [10],
        "2026-03-10": [0] * 6 + [None] * 4 + [0] * 9 + [1, 1] + [None],
    }
    for day, want in expected.items():
        expect_totals(totals(sources, ALL_METRICS, "day", day), dict(zip(ALL_METRICS, want)))
    assert nonzero(values(sources, "messages_total", "day", "account_id")) == {("2026-03-09", "acc1"): 2}
    assert nonzero(values(sources, "messages_total", "day", "direction")) == {
        ("2026-03-09", "outbound"): 1, ("2026-03-09", "inbound"): 1}
    assert nonzero(values(sources, "new_contacts", "day", "account_id")) == {("2026-03-09", "acc1"): 1}
    assert_reported(reports,
                    ["bad_msg_direction", "bad_msg_status", "bad_msg_null_account", "bad_campaign_negative",
                     "bad_campaign_status", "bad_contact_null_account", "bad_conversation_null"],
                    ["good_msg_out", "good_msg_in", "good_campaign", "good_contact", "good_conversation"])
