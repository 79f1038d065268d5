"""Exact values of the Marketing metrics (`marketing`) on small hand-built fixtures.

Every expectation is computed by hand from METRICS.md (arithmetic in the comment beside it), never
from the implementation. Each test runs on SQLite and on PostgreSQL (the `sources` fixture).
Calendar: Sun 2026-04-05 is in the week of Mon 03-30; the week of Mon 04-06 runs to Sun 04-12.
"""

from __future__ import annotations

import pytest

from metrics_pipeline_tests.conftest import every_source_kind, values
from metrics_pipeline_tests.test_activity_metrics import (
    approx, assert_reported, nonzero, relax_required_columns, row, run_with_check_reports, totals,
)
from metrics_pipeline_tests.test_revenue_metrics import expect_totals, usd

POST_METRICS = ["posts_created", "posts_published", "post_views", "post_likes", "post_comments", "post_shares",
                "engagement_rate"]
AD_METRICS = ["ad_spend", "ad_impressions", "ad_clicks", "ad_conversions", "ctr", "cpc", "cpa"]

pytestmark = every_source_kind  # primary keys only, contract indexes, timestamptz


def posts(sources, *specs):
    """specs: (platform, created_at, posted_at, (views, likes, comments, shares)[, {extra}])."""
    sources.insert("marketing_posts", *(
        {"platform": s[0], "created_at": s[1], "posted_at": s[2], "status": "posted" if s[2] else "draft",
         **dict(zip(("views", "likes", "comments", "shares"), s[3])), **(s[4] if len(s) > 4 else {})}
        for s in specs))


def ads(sources, *specs):
    """specs: (date, channel, campaign_id, spend_cents, impressions, clicks, conversions)."""
    sources.insert("ad_spend_daily", *(
        dict(zip(("date", "channel", "campaign_id", "spend_cents", "impressions", "clicks", "conversions"), s))
        for s in specs))


def cents(x):
    """cpc and cpa are money: right to the cent (the written value may be rounded to cents, edge rule 3)."""
    return pytest.approx(x, abs=0.005)


def ad_totals(spend, impressions, clicks, conversions, ctr, cpc, cpa) -> dict:
    """Expected totals of AD_METRICS: sums exact, ctr to 1e-9, cpc and cpa to the cent; None is NULL."""
    return {"ad_spend": usd(spend), "ad_impressions": impressions, "ad_clicks": clicks,
            "ad_conversions": conversions, "ctr": ctr if ctr is None else approx(ctr),
            "cpc": cpc if cpc is None else cents(cpc), "cpa": cpa if cpa is None else cents(cpa)}


def test_marketing_metrics_day_week_month(sources, materialize):
    # posts and ad spend live in different tables: one fixture, one run per grain, two sets of checks
    posts(sources,
          ("tiktok", "2026-03-31 23:59:59.999999", "2026-04-01 00:00:00", (50, 5, 5, 0)),          # p6
          ("tiktok", "2026-04-01 10:00:00", "2026-04-06 09:00:00", (1000, 100, 20, 5)),            # p1
          ("instagram", "2026-04-06 08:00:00", "2026-04-06 23:59:59.999999", (400, 30, 6, 4)),     # p2
          ("tiktok", "2026-04-06 12:00:00.000000", None, (0, 0, 0, 0)),                            # p3 draft
          ("youtube_shorts", "2026-04-05 23:00:00", "2026-04-07 00:00:00.000000", (0, 0, 0, 0)),   # p4
          ("instagram", "2026-04-05 10:00:00", "2026-04-05 11:00:00", (600, 12, 0, 0)),            # p5
          ("instagram", "2026-04-07 10:00:00", None, (0, 0, 0, 0), {"status": "failed"}))          # p7
    ads(sources,
        ("2026-03-31", "google_ads", "march", 99_900, 1000, 100, 10),        # March: in no April period
        ("2026-04-05", "apple_search_ads", "S", 1000, 100, 10, 1),          # Sunday
        ("2026-04-06", "meta_ads", "A", 12_345, 10_000, 250, 5),
        ("2026-04-06", "meta_ads", "B", 655, 2000, 50, 0),
        ("2026-04-06", "google_ads", "G", 5000, 0, 0, 0),                   # spend without results
        ("2026-04-07", "tiktok_ads", "T", 333, 1000, 3, 0))
    assert materialize(sources, "day", "2026-04-05", "2026-04-08").success
    assert materialize(sources, "week", "2026-04-06").success
    assert materialize(sources, "month", "2026-04-01").success
    check_posts(sources)
    check_ads(sources)


def check_posts(sources):
    """p1..p7 as numbered beside the fixture."""
    # created by created_at; published and counters by posted_at; engagement (likes+comments+shares)/views
    # 04-05: created p4, p5; published p5: 600 views, 12 likes -> 12/600 = 0.02
    # 04-06: created p2, p3; published p1, p2: views 1400, likes 130, comments 26, shares 9
    #        -> (130 + 26 + 9) / 1400 = 165/1400
    # 04-07: created p7; published p4 with 0 views -> engagement 0/0 = NULL
    # 04-08: nothing -> counts 0, engagement NULL
    expected = {
        "2026-04-05": [2, 1, 600, 12, 0, 0, 12 / 600],
        "2026-04-06": [2, 2, 1400, 130, 26, 9, 165 / 1400],
        "2026-04-07": [1, 1, 0, 0, 0, 0, None],
        "2026-04-08": [0, 0, 0, 0, 0, 0, None],
    }
    for day, want in expected.items():
        expect_totals(totals(sources, POST_METRICS, "day", day), dict(zip(POST_METRICS, want)))
    assert nonzero(values(sources, "posts_created", "day", "platform")) == {
        ("2026-04-05", "youtube_shorts"): 1, ("2026-04-05", "instagram"): 1,
        ("2026-04-06", "instagram"): 1, ("2026-04-06", "tiktok"): 1, ("2026-04-07", "instagram"): 1}
    assert nonzero(values(sources, "posts_published", "day", "platform")) == {
        ("2026-04-05", "instagram"): 1, ("2026-04-06", "tiktok"): 1, ("2026-04-06", "instagram"): 1,
        ("2026-04-07", "youtube_shorts"): 1}
    assert nonzero(values(sources, "post_views", "day", "platform")) == {
        ("2026-04-05", "instagram"): 600, ("2026-04-06", "tiktok"): 1000, ("2026-04-06", "instagram"): 400}
    # 04-06 tiktok (100 + 20 + 5) / 1000 = 0.125, instagram (30 + 6 + 4) / 400 = 0.1; youtube 0/0 NULL
    assert nonzero(values(sources, "engagement_rate", "day", "platform")) == {
        ("2026-04-05", "instagram"): approx(0.02), ("2026-04-06", "tiktok"): approx(0.125),
        ("2026-04-06", "instagram"): approx(0.1)}
    engagement = row(sources, "engagement_rate", "day", "2026-04-06")
    assert (engagement["numerator"], engagement["denominator"]) == (165, 1400)

    # week of 04-06 (Sunday 04-05 is the week before): created p2, p3, p7 = 3; published p1, p2, p4 = 3;
    # counters 1400, 130, 26, 9 -> 165/1400
    expect_totals(totals(sources, POST_METRICS, "week", "2026-04-06"),
                  dict(zip(POST_METRICS, [3, 3, 1400, 130, 26, 9, 165 / 1400])))
    # April: created p1, p2, p3, p4, p5, p7 = 6 (p6 on 03-31); published p6 (04-01 00:00), p1, p2, p4, p5 = 5;
    # views 50 + 1000 + 400 + 0 + 600 = 2050; likes 5 + 100 + 30 + 0 + 12 = 147; comments 5 + 20 + 6 = 31;
    # shares 5 + 4 = 9 -> (147 + 31 + 9) / 2050 = 187/2050
    expect_totals(totals(sources, POST_METRICS, "month", "2026-04-01"),
                  dict(zip(POST_METRICS, [6, 5, 2050, 147, 31, 9, 187 / 2050])))
    assert nonzero(values(sources, "posts_published", "month", "platform")) == {
        ("2026-04-01", "tiktok"): 2, ("2026-04-01", "instagram"): 2, ("2026-04-01", "youtube_shorts"): 1}
    # tiktok p6 + p1: (5 + 5 + 0 + 100 + 20 + 5) / 1050 = 135/1050; instagram p2 + p5: (40 + 12) / 1000
    assert nonzero(values(sources, "engagement_rate", "month", "platform")) == {
        ("2026-04-01", "tiktok"): approx(135 / 1050), ("2026-04-01", "instagram"): approx(52 / 1000)}


def check_ads(sources):
    # spend = cents / 100; ctr = clicks / impressions; cpc = spend / clicks; cpa = spend / conversions
    # 04-05: 10.00, 100, 10, 1 -> ctr 0.1, cpc 1.00, cpa 10.00
    # 04-06: (12345 + 655 + 5000) / 100 = 180.00, 12000, 300, 5 -> ctr 0.025, cpc 0.60, cpa 36.00
    # 04-07: 3.33, 1000, 3, 0 -> ctr 0.003, cpc 1.11, cpa 3.33/0 = NULL
    # 04-08: nothing -> sums 0, ratios NULL
    expected = {
        "2026-04-05": [10.00, 100, 10, 1, 0.1, 1.00, 10.00],
        "2026-04-06": [180.00, 12_000, 300, 5, 0.025, 0.60, 36.00],
        "2026-04-07": [3.33, 1000, 3, 0, 0.003, 1.11, None],
        "2026-04-08": [0, 0, 0, 0, None, None, None],
    }
    for day, want in expected.items():
        assert totals(sources, AD_METRICS, "day", day) == ad_totals(*want), day
    assert values(sources, "ad_spend", "day") == {
        "2026-04-05": usd(10.00), "2026-04-06": usd(180.00), "2026-04-07": usd(3.33), "2026-04-08": 0}
    assert nonzero(values(sources, "ad_spend", "day", "channel")) == {
        ("2026-04-05", "apple_search_ads"): usd(10.00), ("2026-04-06", "meta_ads"): usd(130.00),   # 123.45 + 6.55
        ("2026-04-06", "google_ads"): usd(50.00), ("2026-04-07", "tiktok_ads"): usd(3.33)}
    assert nonzero(values(sources, "ad_impressions", "day", "channel", "2026-04-06", "2026-04-07")) == {
        ("2026-04-06", "meta_ads"): 12_000}
    assert nonzero(values(sources, "ad_clicks", "day", "channel", "2026-04-06", "2026-04-07")) == {
        ("2026-04-06", "meta_ads"): 300}
    assert nonzero(values(sources, "ad_conversions", "day", "channel", "2026-04-06", "2026-04-07")) == {
        ("2026-04-06", "meta_ads"): 5}
    # 04-06 meta: ctr 300/12000 = 0.025, cpc 130/300, cpa 130/5 = 26; google: 0 impressions, clicks and
    # conversions -> NULL (or left out). 04-07 tiktok: cpa NULL.
    d6 = ("2026-04-06", "2026-04-08")
    assert nonzero(values(sources, "ctr", "day", "channel", *d6)) == {
        ("2026-04-06", "meta_ads"): approx(0.025), ("2026-04-07", "tiktok_ads"): approx(0.003)}
    assert nonzero(values(sources, "cpc", "day", "channel", *d6)) == {
        ("2026-04-06", "meta_ads"): cents(130 / 300), ("2026-04-07", "tiktok_ads"): cents(1.11)}
    assert nonzero(values(sources, "cpa", "day", "channel", *d6)) == {("2026-04-06", "meta_ads"): cents(26)}
    ctr = row(sources, "ctr", "day", "2026-04-06")
    assert (ctr["numerator"], ctr["denominator"]) == (300, 12_000)
    cpc = row(sources, "cpc", "day", "2026-04-06")                  # numerator: spend in USD
    assert (cpc["numerator"], cpc["denominator"]) == (usd(180.00), 300)

    # week of 04-06: 180.00 + 3.33 = 183.33, 13000, 303, 5 -> ctr 303/13000, cpc 183.33/303, cpa 183.33/5
    assert totals(sources, AD_METRICS, "week", "2026-04-06") == ad_totals(
        183.33, 13_000, 303, 5, 303 / 13_000, 183.33 / 303, 183.33 / 5)
    # April adds Sunday 04-05 (not 03-31): 193.33, 13100, 313, 6 -> 313/13100, 193.33/313, 193.33/6
    assert totals(sources, AD_METRICS, "month", "2026-04-01") == ad_totals(
        193.33, 13_100, 313, 6, 313 / 13_100, 193.33 / 313, 193.33 / 6)
    assert nonzero(values(sources, "ad_spend", "month", "channel")) == {
        ("2026-04-01", "apple_search_ads"): usd(10.00), ("2026-04-01", "meta_ads"): usd(130.00),
        ("2026-04-01", "google_ads"): usd(50.00), ("2026-04-01", "tiktok_ads"): usd(3.33)}
    # meta over the week: 13000 spend cents / 5 conversions = 26.00; tiktok: 3.33 / 0 -> NULL
    assert nonzero(values(sources, "cpa", "week", "channel")) == {("2026-04-06", "meta_ads"): cents(26)}


def test_contract_breaking_marketing_rows_are_excluded_and_reported(sources):
    relax_required_columns(sources, "marketing_posts")
    t = "2026-04-13 10:00:00"
    posts(sources,
          ("tiktok", t, t, (100, 10, 0, 0), {"id": "good_post"}),
          ("facebook", t, t, (900, 90, 0, 0), {"id": "bad_post_platform"}),       # unknown enum value
          ("tiktok", t, t, (-100, 10, 0, 0), {"id": "bad_post_negative_views"}),  # negative counter
          ("tiktok", t, t, (900, 90, 0, 0), {"id": "bad_post_null_category", "category": None}))
    # ad rows are keyed by (date, channel, campaign_id): the campaign ids name them
    ads(sources,
        ("2026-04-13", "meta_ads", "ok_campaign_a", 1000, 100, 10, 2),
        ("2026-04-13", "bing_ads", "bad_ad_channel", 5000, 100, 10, 2),         # first date of the window
        ("2026-04-14", "meta_ads", "ok_campaign_b", 2000, 400, 10, 0),
        ("2026-04-14", "meta_ads", "bad_ad_negative", -500, 100, 10, 2))        # last date of the window

    run, reports = run_with_check_reports(sources, "day", "2026-04-13", "2026-04-14")
    assert run.success, run.errors                           # WARN check: the run still succeeds
    # 04-13: only good_post (10/100 = 0.1) and ok_campaign_a (10.00, 100, 10, 2 -> 0.1, 1.00, 5.00)
    # 04-14: no post (counts 0, engagement NULL); ok_campaign_b 20.00, 400, 10, 0 -> 0.025, 2.00, NULL
    expect_totals(totals(sources, POST_METRICS, "day", "2026-04-13"),
                  dict(zip(POST_METRICS, [1, 1, 100, 10, 0, 0, 0.1])))
    expect_totals(totals(sources, POST_METRICS, "day", "2026-04-14"),
                  dict(zip(POST_METRICS, [0, 0, 0, 0, 0, 0, None])))
    assert totals(sources, AD_METRICS, "day", "2026-04-13") == ad_totals(10.00, 100, 10, 2, 0.1, 1.00, 5.00)
    assert totals(sources, AD_METRICS, "day", "2026-04-14") == ad_totals(20.00, 400, 10, 0, 0.025, 2.00, None)
    assert nonzero(values(sources, "posts_published", "day", "platform")) == {("2026-04-13", "tiktok"): 1}
    assert nonzero(values(sources, "ad_spend", "day", "channel")) == {
        ("2026-04-13", "meta_ads"): usd(10.00), ("2026-04-14", "meta_ads"): usd(20.00)}
    assert_reported(reports, ["bad_post_platform", "bad_post_negative_views", "bad_post_null_category"],
                    ["good_post"])
    assert_reported(reports, ["bad_ad_channel", "bad_ad_negative"], ["ok_campaign_a", "ok_campaign_b"])
