"""Exact values of the Revenue metrics (`app`) on small hand-built fixtures.

Every expectation is computed by hand from METRICS.md (arithmetic in the comment beside it), never
from the implementation. Each test runs on SQLite and on PostgreSQL (the `sources` fixture).
MRR arithmetic in the comments is in USD per month: a monthly plan is price_cents/100, an annual
plan price_cents/100/12.
"""

from __future__ import annotations

import pytest

from metrics_pipeline_tests.conftest import every_source_kind, values
from metrics_pipeline_tests.test_activity_metrics import (
    approx, assert_reported, nonzero, relax_required_columns, row, run_with_check_reports, totals,
)

pytestmark = every_source_kind  # primary keys only, contract indexes, timestamptz


def usd(x):
    """Money: exact cents (an error of one cent must fail)."""
    return pytest.approx(x, abs=1e-6)


def payments(sources, *specs):
    """specs: (id, provider, kind, amount_cents, fee_cents, status, created_at[, refunded_at])."""
    sources.insert("payments", *(
        {"id": s[0], "provider": s[1], "kind": s[2], "amount_cents": s[3], "fee_cents": s[4],
         "status": s[5], "created_at": s[6], "refunded_at": s[7] if len(s) > 7 else None}
        for s in specs))


PRICES = {"premium_monthly": ("month", 1000), "vip_monthly": ("month", 3000),
          "premium_annual": ("year", 1000), "vip_annual": ("year", 24000)}


def subscription(user, plan, started, ended=None, **extra) -> dict:
    """A subscription row of `plan` at its PRICES price; extra: trial_ends_at, canceled_at, ..."""
    interval, price = PRICES[plan]
    return {"user_id": user, "plan": plan, "billing_interval": interval, "price_cents": price,
            "started_at": started, "ended_at": ended,
            "status": "canceled" if ended else "active", **extra}


def subscriptions(sources, *rows):
    sources.insert("subscriptions", *rows)


MRR_METRICS = ["mrr", "arr", "active_subscribers", "arpu", "mrr_new", "mrr_reactivation", "mrr_expansion",
               "mrr_contraction", "mrr_churned"]
RATE_METRICS = ["customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate"]


def expect_totals(got: dict, expected: dict):
    """Compare {metric: value} totals: None must be None, money/ratios to the cent / 1e-9 relative."""
    assert set(got) == set(expected), (got, expected)
    for metric, want in expected.items():
        if want is None:
            assert got[metric] is None, (metric, got[metric])
        else:
            assert got[metric] == approx(want), (metric, got[metric], want)


# ---------------------------------------------------------------------------------------------
# payments: gross_revenue, store_fees, refunds, net_revenue, failed_payments


def test_payment_metrics_day_and_week(sources, materialize):
    payments(sources,
             ("p0", "playstore", "subscription", 1500, 225, "succeeded", "2026-01-04 23:59:59.999999"),
             ("p1", "stripe", "subscription", 999, 30, "succeeded", "2026-01-05 00:00:00"),
             ("p2", "appstore", "one_time", 500, 150, "refunded", "2026-01-05 12:00:00.000000",
              "2026-01-07 09:00:00"),
             ("p3", "playstore", "subscription", 1000, 300, "failed", "2026-01-05 13:00:00"),
             ("p4", "stripe", "subscription", 2001, 0, "succeeded", "2026-01-05 23:59:59.999999"),
             ("p5", "stripe", "one_time", 700, 21, "succeeded", "2026-01-06 00:00:00.000000"))
    assert materialize(sources, "day", "2026-01-05", "2026-01-08").success
    assert materialize(sources, "week", "2026-01-05").success

    # day 05: charged p1 + p2 (refunded later) + p4 = 9.99 + 5.00 + 20.01 = 35.00; p3 failed
    # day 06: p5 = 7.00; day 07: only the refund of p2 (5.00); day 08: nothing
    assert values(sources, "gross_revenue", "day") == {
        "2026-01-05": usd(35.00), "2026-01-06": usd(7.00), "2026-01-07": 0, "2026-01-08": 0}
    assert nonzero(values(sources, "gross_revenue", "day", "provider")) == {
        ("2026-01-05", "stripe"): usd(30.00), ("2026-01-05", "appstore"): usd(5.00),   # 9.99 + 20.01
        ("2026-01-06", "stripe"): usd(7.00)}
    assert nonzero(values(sources, "gross_revenue", "day", "kind")) == {
        ("2026-01-05", "subscription"): usd(30.00), ("2026-01-05", "one_time"): usd(5.00),
        ("2026-01-06", "one_time"): usd(7.00)}
    # fees of charged payments: day 05 0.30 + 1.50 + 0 = 1.80 (p3's 3.00 is a failed charge); day 06 0.21
    assert values(sources, "store_fees", "day") == {
        "2026-01-05": usd(1.80), "2026-01-06": usd(0.21), "2026-01-07": 0, "2026-01-08": 0}
    assert nonzero(values(sources, "store_fees", "day", "provider")) == {
        ("2026-01-05", "stripe"): usd(0.30), ("2026-01-05", "appstore"): usd(1.50),
        ("2026-01-06", "stripe"): usd(0.21)}
    # refunds by refunded_at: p2 on day 07
    assert values(sources, "refunds", "day") == {
        "2026-01-05": 0, "2026-01-06": 0, "2026-01-07": usd(5.00), "2026-01-08": 0}
    assert nonzero(values(sources, "refunds", "day", "provider")) == {("2026-01-07", "appstore"): usd(5.00)}
    # net = gross - fees - refunds: 35 - 1.80 = 33.20; 7 - 0.21 = 6.79; 0 - 0 - 5 = -5.00 (quiet day)
    assert values(sources, "net_revenue", "day") == {
        "2026-01-05": usd(33.20), "2026-01-06": usd(6.79), "2026-01-07": usd(-5.00), "2026-01-08": 0}
    assert values(sources, "failed_payments", "day") == {
        "2026-01-05": 1, "2026-01-06": 0, "2026-01-07": 0, "2026-01-08": 0}
    assert nonzero(values(sources, "failed_payments", "day", "provider")) == {("2026-01-05", "playstore"): 1}

    # week of Mon 01-05 (p0 is on Sunday 01-04, the week before):
    # gross 35 + 7 = 42.00; fees 1.80 + 0.21 = 2.01; refunds 5.00; net 42 - 2.01 - 5 = 34.99; failed 1
    assert totals(sources, ["gross_revenue", "store_fees", "refunds", "net_revenue", "failed_payments"],
                  "week", "2026-01-05") == {
        "gross_revenue": usd(42.00), "store_fees": usd(2.01), "refunds": usd(5.00), "net_revenue": usd(34.99),
        "failed_payments": 1}


# ---------------------------------------------------------------------------------------------
# subscription counts and edge rule 1 (instants exactly at 00:00 of D+1)


def test_subscription_counts_and_midnight_edge_rule(sources, materialize):
    subscriptions(
        sources,
        subscription("a", "premium_monthly", "2026-01-05 10:00:00"),
        # starts exactly at 00:00 of 01-06: paying at the end of 01-05, new subscription on 01-06
        subscription("b", "vip_monthly", "2026-01-06 00:00:00.000000"),
        # trial ends exactly at 00:00 of 01-06: paying at the end of 01-05, converts on 01-06
        subscription("c", "premium_monthly", "2026-01-01 00:00:00", trial_ends_at="2026-01-06 00:00:00"),
        # trial never paid: ended_at == trial_ends_at -> no conversion, never any MRR
        subscription("d", "premium_monthly", "2026-01-01 00:00:00", "2026-01-06 12:00:00",
                     trial_ends_at="2026-01-06 12:00:00", canceled_at="2026-01-06 08:00:00"),
        # access ends exactly at 00:00 of 01-06: not paying at the end of 01-05
        subscription("e", "premium_monthly", "2025-12-01 00:00:00", "2026-01-06 00:00:00",
                     canceled_at="2026-01-05 00:00:00.000000"),
        # starts and ends inside day 07: counted as new and canceled, moves no MRR
        subscription("f", "premium_monthly", "2026-01-07 09:00:00", "2026-01-07 17:00:00",
                     canceled_at="2026-01-07 10:00:00"))
    assert materialize(sources, "day", "2026-01-05", "2026-01-07").success
    assert materialize(sources, "week", "2026-01-05").success

    assert values(sources, "new_subscriptions", "day") == {"2026-01-05": 1, "2026-01-06": 1, "2026-01-07": 1}
    assert nonzero(values(sources, "new_subscriptions", "day", "plan")) == {
        ("2026-01-05", "premium_monthly"): 1, ("2026-01-06", "vip_monthly"): 1, ("2026-01-07", "premium_monthly"): 1}
    assert values(sources, "canceled_subscriptions", "day") == {"2026-01-05": 1, "2026-01-06": 1, "2026-01-07": 1}
    assert values(sources, "trial_conversions", "day") == {"2026-01-05": 0, "2026-01-06": 1, "2026-01-07": 0}
    assert nonzero(values(sources, "trial_conversions", "day", "plan")) == {("2026-01-06", "premium_monthly"): 1}

    # day 05: start (01-05 00:00) e = 10; end (01-06 00:00) a 10 + b 30 + c 10 = 50 (e ended, d in trial)
    #   mrr_new = a + b + c = 50, churned = e 10; identity 10 + 50 - 10 = 50; arpu 50 / 3
    # day 06: 50 -> 50, nothing moves (d never paid); day 07: f starts and ends inside: nothing moves
    expect_totals(totals(sources, MRR_METRICS, "day", "2026-01-05"), {
        "mrr": 50, "arr": 600, "active_subscribers": 3, "arpu": 50 / 3, "mrr_new": 50, "mrr_reactivation": 0,
        "mrr_expansion": 0, "mrr_contraction": 0, "mrr_churned": 10})
    steady = {"mrr": 50, "arr": 600, "active_subscribers": 3, "arpu": 50 / 3, "mrr_new": 0,
              "mrr_reactivation": 0, "mrr_expansion": 0, "mrr_contraction": 0, "mrr_churned": 0}
    expect_totals(totals(sources, MRR_METRICS, "day", "2026-01-06"), steady)
    expect_totals(totals(sources, MRR_METRICS, "day", "2026-01-07"), steady)
    assert nonzero(values(sources, "mrr", "day", "plan", "2026-01-05", "2026-01-06")) == {
        ("2026-01-05", "premium_monthly"): usd(20), ("2026-01-05", "vip_monthly"): usd(30)}   # a + c, b

    # week 01-05 .. 01-12: new a, b, f = 3; canceled e, d, f = 3; conversions c = 1;
    # MRR start 10 (e), end 50 (a, b, c): new 50, churned 10
    assert totals(sources, ["new_subscriptions", "canceled_subscriptions", "trial_conversions"],
                  "week", "2026-01-05") == {
        "new_subscriptions": 3, "canceled_subscriptions": 3, "trial_conversions": 1}
    expect_totals(totals(sources, MRR_METRICS, "week", "2026-01-05"), {
        "mrr": 50, "arr": 600, "active_subscribers": 3, "arpu": 50 / 3, "mrr_new": 50, "mrr_reactivation": 0,
        "mrr_expansion": 0, "mrr_contraction": 0, "mrr_churned": 10})


# ---------------------------------------------------------------------------------------------
# MRR balances, movements and churn rates over a month and a week


@pytest.fixture
def mrr_book(sources):
    """Ten users whose MRR moves in every way during February 2026."""
    subscriptions(
        sources,
        subscription("u1", "premium_monthly", "2026-01-10 00:00:00"),                      # steady 10
        subscription("u2", "premium_annual", "2026-01-01 00:00:00"),                       # steady 10/12
        subscription("u10", "premium_annual", "2026-01-15 00:00:00"),                      # steady 10/12
        subscription("u11", "premium_annual", "2026-01-20 00:00:00"),                      # steady 10/12
        subscription("u3", "premium_monthly", "2026-01-05 00:00:00", "2026-02-10 00:00:00"),  # upgrade
        subscription("u3", "vip_monthly", "2026-02-10 00:00:00.000000"),                   # 10 -> 30
        subscription("u4", "vip_monthly", "2026-01-03 00:00:00", "2026-02-20 00:00:00"),   # downgrade
        subscription("u4", "premium_monthly", "2026-02-20 00:00:00"),                      # 30 -> 10
        subscription("u5", "premium_monthly", "2026-01-01 00:00:00", "2026-02-15 00:00:00",
                     canceled_at="2026-02-01 00:00:00"),                                   # churns
        subscription("u6", "vip_annual", "2026-02-03 00:00:00"),                           # new, 240/12 = 20
        subscription("u7", "premium_monthly", "2025-11-01 00:00:00", "2025-12-01 00:00:00"),
        subscription("u7", "vip_monthly", "2026-02-05 00:00:00"),                          # reactivates: 30
        subscription("u8", "premium_monthly", "2026-02-02 00:00:00", "2026-02-12 00:00:00"),  # inside Feb
        subscription("u9", "premium_monthly", "2026-01-20 00:00:00"),                      # two plans at once
        subscription("u9", "vip_monthly", "2026-01-20 00:00:00"))
    return sources


def test_mrr_month_balances_movements_and_rates(mrr_book, materialize):
    sources = mrr_book
    assert materialize(sources, "month", "2026-02-01", "2026-03-01").success

    # Feb start (02-01 00:00): u1 10 + annual 3 x 10/12 = 2.50 + u3 10 + u4 30 + u5 10 + u9 40 = 102.50
    # Feb end   (03-01 00:00): u1 10 + 2.50 + u3 30 + u4 10 + u6 20 + u7 30 + u9 40 = 142.50
    #   (annual plans summed exactly: 3 x 0.8333.. = 2.50, not 3 x 0.83 = 2.49)
    # new u6 20; reactivation u7 30 (paid in Nov); expansion u3 30-10 = 20; contraction u4 30-10 = 20;
    # churned u5 10; u8 started and ended inside Feb: nothing.
    # identity: 102.50 + 20 + 30 + 20 - 20 - 10 = 142.50
    # subscribers at end: u1 u2 u10 u11 u3 u4 u6 u7 u9 = 9; paying at start: u1 u2 u10 u11 u3 u4 u5 u9 = 8
    expect_totals(totals(sources, MRR_METRICS + RATE_METRICS + ["net_revenue_retention", "clv"], "month",
                         "2026-02-01"), {
        "mrr": 142.50, "arr": 12 * 142.50, "active_subscribers": 9, "arpu": 142.50 / 9,
        "mrr_new": 20, "mrr_reactivation": 30, "mrr_expansion": 20, "mrr_contraction": 20, "mrr_churned": 10,
        "customer_churn_rate": 1 / 8,                        # u5 of 8
        "gross_mrr_churn_rate": (10 + 20) / 102.50,          # 0.29268...
        "net_mrr_churn_rate": (10 + 20 - 20 - 30) / 102.50,  # -0.19512... (negative)
        "net_revenue_retention": 1 + 20 / 102.50,            # 1.19512...
        "clv": (142.50 / 9) / (1 / 8),                       # 126.666...
    })
    # by plan at end; u9 counts under both of its plans (3 + 3 + 3 + 1 = 10 > 9 users)
    assert nonzero(values(sources, "mrr", "month", "plan", "2026-02-01", "2026-03-01")) == {
        ("2026-02-01", "premium_monthly"): usd(30),   # u1 + u4 + u9
        ("2026-02-01", "vip_monthly"): usd(90),       # u3 + u7 + u9
        ("2026-02-01", "premium_annual"): usd(2.50),  # 3 x 1000 / 1200
        ("2026-02-01", "vip_annual"): usd(20)}        # u6
    assert nonzero(values(sources, "active_subscribers", "month", "plan", "2026-02-01", "2026-03-01")) == {
        ("2026-02-01", "premium_monthly"): 3, ("2026-02-01", "vip_monthly"): 3,
        ("2026-02-01", "premium_annual"): 3, ("2026-02-01", "vip_annual"): 1}
    # the ratio rows carry the sums they divide
    churn = row(sources, "customer_churn_rate", "month", "2026-02-01")
    assert (churn["numerator"], churn["denominator"]) == (1, 8)
    gross = row(sources, "gross_mrr_churn_rate", "month", "2026-02-01")
    assert (gross["numerator"], gross["denominator"]) == (usd(30), usd(102.50))

    # March: nobody changes: 142.50 -> 142.50, churn 0 / 9 = 0 -> clv NULL
    expect_totals(totals(sources, MRR_METRICS + RATE_METRICS + ["net_revenue_retention", "clv"], "month",
                         "2026-03-01"), {
        "mrr": 142.50, "arr": 1710, "active_subscribers": 9, "arpu": 142.50 / 9, "mrr_new": 0,
        "mrr_reactivation": 0, "mrr_expansion": 0, "mrr_contraction": 0, "mrr_churned": 0,
        "customer_churn_rate": 0, "gross_mrr_churn_rate": 0, "net_mrr_churn_rate": 0,
        "net_revenue_retention": 1, "clv": None})


def test_mrr_week_is_measured_at_the_week_boundaries(mrr_book, materialize):
    sources = mrr_book
    assert materialize(sources, "week", "2026-02-09").success

    # start (Mon 02-09): u1 10 + 2.50 + u3 10 + u4 30 + u5 10 + u6 20 + u7 30 + u8 10 + u9 40 = 162.50
    # end   (Mon 02-16): u1 10 + 2.50 + u3 30 + u4 30 + u6 20 + u7 30 + u9 40 = 162.50 (u5, u8 ended)
    # expansion u3 20; churned u5 10 + u8 10 = 20; paying at start 11 users, 2 churned
    expect_totals(totals(sources, MRR_METRICS + RATE_METRICS, "week", "2026-02-09"), {
        "mrr": 162.50, "arr": 1950, "active_subscribers": 9, "arpu": 162.50 / 9, "mrr_new": 0,
        "mrr_reactivation": 0, "mrr_expansion": 20, "mrr_contraction": 0, "mrr_churned": 20,
        "customer_churn_rate": 2 / 11, "gross_mrr_churn_rate": 20 / 162.50,
        "net_mrr_churn_rate": (20 - 20) / 162.50})


@pytest.mark.parametrize("grain, first, end, tz", [
    ("day", "2026-02-01", "2026-03-03", "UTC"),
    ("hour", "2026-02-09 20:00", "2026-02-10 04:00", "UTC"),           # u3's upgrade at 02-10 00:00
    ("day", "2026-02-01", "2026-03-03", "Asia/Kolkata"),              # bounds on 18:30 UTC
    ("week", "2026-01-26", "2026-03-09", "America/New_York"),
])
def test_mrr_of_a_range_equals_each_period_alone(mrr_book, grain, first, end, tz):
    """A backfill carries each user's MRR from one period to the next (one read of the subscriptions
    that change in the range); a nightly run computes its one period from the subscriptions alone.
    Both must give the same rows, whatever falls on a period's bound (u3, u4 change plan at 00:00)."""
    import datetime as dt

    from metrics_pipeline.metrics.periods import periods_between
    from metrics_pipeline.metrics.revenue import mrr_at, mrr_movements
    from metrics_pipeline.resources import SourceDatabase

    periods = periods_between(grain, dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(end), tz)
    with SourceDatabase(name="app", url=mrr_book.urls["app"]).connect(["subscriptions"]) as conn:
        together = mrr_movements(conn, periods, dt.datetime(2027, 1, 1))
        alone = [r for p in periods for r in mrr_movements(conn, [p], dt.datetime(2027, 1, 1))]
        starts, ends = mrr_at(conn, periods, "start"), mrr_at(conn, periods, "end")
    assert len(together) > len(periods) * 10
    def by_key(rows):
        return sorted(rows, key=lambda r: (r.metric, r.period_start, r.dimension, r.dimension_value))

    assert by_key(together) == by_key(alone)
    mrr = {r.period_start: r.value for r in together if r.metric == "mrr" and r.dimension == ""}
    assert ends == mrr
    assert [starts[p.key] for p in periods[1:]] == [ends[p.key] for p in periods[:-1]]
    if grain == "day" and tz == "UTC":  # the hand-computed month: 102.50 at 02-01 00:00, 142.50 at 03-01 00:00
        assert (starts["2026-02-01"], ends["2026-02-28"]) == (usd(102.50), usd(142.50))


# ---------------------------------------------------------------------------------------------
# empty periods and contract-breaking rows


DAY_METRICS = ["gross_revenue", "store_fees", "refunds", "net_revenue", "failed_payments", "new_subscriptions",
               "canceled_subscriptions", "trial_conversions"] + MRR_METRICS


def test_empty_periods_have_every_total(sources, materialize):
    assert materialize(sources, "day", "2026-01-05").success
    assert materialize(sources, "month", "2026-01-01").success

    # counts and sums 0; ratios over a 0 denominator NULL (arpu: 0 subscribers; rates: 0 MRR at start)
    zeros = {m: 0 for m in DAY_METRICS} | {"arpu": None}
    expect_totals(totals(sources, DAY_METRICS, "day", "2026-01-05"), zeros)
    expect_totals(totals(sources, DAY_METRICS + RATE_METRICS + ["net_revenue_retention", "clv"], "month",
                         "2026-01-01"),
                  zeros | {m: None for m in RATE_METRICS + ["net_revenue_retention", "clv"]})


def test_contract_breaking_rows_are_excluded_and_reported(sources):
    relax_required_columns(sources, "payments")
    relax_required_columns(sources, "subscriptions")
    day = "2026-01-05 10:00:00"
    payments(sources,
             ("good_payment", "stripe", "subscription", 1000, 30, "succeeded", day),
             ("bad_pay_negative", "stripe", "subscription", -300, 0, "succeeded", day),
             ("bad_pay_provider", "paypal", "subscription", 700, 0, "succeeded", day),
             ("bad_pay_null_kind", "stripe", None, 900, 0, "succeeded", day),
             ("bad_pay_status", "stripe", "subscription", 800, 0, "chargeback", day))
    sources.insert("payments", {"id": "bad_pay_currency", "amount_cents": 500, "currency": "EUR", "created_at": day})
    subscriptions(
        sources,
        subscription("good", "premium_monthly", day) | {"id": "good_sub"},
        subscription("x1", "premium_monthly", day) | {"id": "bad_sub_currency", "currency": "EUR"},
        subscription("x2", "premium_monthly", day) | {"id": "bad_sub_interval", "billing_interval": "week"},
        subscription("x3", "premium_monthly", day) | {"id": "bad_sub_null_price", "price_cents": None},
        subscription("x4", "premium_monthly", day) | {"id": "bad_sub_negative", "price_cents": -1000})

    run, reports = run_with_check_reports(sources, "day", "2026-01-05")
    assert run.success                                       # WARN check: the run still succeeds
    # only the good rows count: 10.00 charged, 0.30 fee, one subscription of 10/month
    expect_totals(totals(sources, ["gross_revenue", "store_fees", "net_revenue", "failed_payments",
                                   "new_subscriptions", "mrr", "mrr_new", "active_subscribers"],
                         "day", "2026-01-05"), {
        "gross_revenue": 10, "store_fees": 0.30, "net_revenue": 9.70, "failed_payments": 0,
        "new_subscriptions": 1, "mrr": 10, "mrr_new": 10, "active_subscribers": 1})
    assert nonzero(values(sources, "gross_revenue", "day", "provider")) == {("2026-01-05", "stripe"): usd(10)}
    assert_reported(reports,
                    ["bad_pay_currency", "bad_pay_negative", "bad_pay_provider", "bad_pay_null_kind",
                     "bad_pay_status", "bad_sub_currency", "bad_sub_interval", "bad_sub_null_price",
                     "bad_sub_negative"],
                    ["good_payment", "good_sub"])
