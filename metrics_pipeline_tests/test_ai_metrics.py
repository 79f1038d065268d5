"""Exact values of the AI usage metrics (`app.ai_requests`) on small hand-built fixtures.

Every expectation is computed by hand from METRICS.md (arithmetic in the comment beside it), never
from the implementation. Each test runs on SQLite and on PostgreSQL (the `sources` fixture).
Calendar: Sun 2026-02-01 is in the week of Mon 01-26 but in the month of February; the week of
Mon 02-02 runs to Sun 02-08.
"""

from __future__ import annotations

from metrics_pipeline_tests.conftest import every_source_kind, values
from metrics_pipeline_tests.test_activity_metrics import (
    approx, assert_reported, nonzero, relax_required_columns, row, run_with_check_reports, totals,
)
from metrics_pipeline_tests.test_revenue_metrics import usd

AI_METRICS = ["ai_requests", "ai_tokens", "ai_cost", "ai_success_rate", "ai_latency_p95_ms"]

pytestmark = every_source_kind  # primary keys only, contract indexes, timestamptz


def requests(sources, *specs):
    """specs: (created_at, model, status, duration_ms, input_tokens, output_tokens, cost_micros[, {extra}])."""
    sources.insert("ai_requests", *(
        {"created_at": s[0], "model": s[1], "status": s[2], "duration_ms": s[3], "input_tokens": s[4],
         "output_tokens": s[5], "cost_micros": s[6], **(s[7] if len(s) > 7 else {})}
        for s in specs))


# 20 completed gpt calls on Mon 02-02 with durations 10, 20, ..., 200 ms, inserted out of order
GPT_DURATIONS = [70, 200, 10, 150, 30, 190, 110, 50, 20, 180, 90, 130, 40, 170, 60, 160, 100, 140, 80, 120]


def test_ai_metrics_day_week_month(sources, materialize):
    coach = {"feature": "coach"}
    requests(
        sources,
        # Sun 02-01 (week of 01-26, month of Feb)
        ("2026-02-01 00:00:00", "claude", "completed", 3000, 1000, 500, 125_000, coach),
        ("2026-02-01 23:59:59.999999", "claude", "completed", 2000, 10, 5, 375_000, coach),
        # Mon 02-02: 20 gpt completed (150 tokens and 2500 micros = 0.25 cent each), then the rest
        *((f"2026-02-02 {i:02d}:00:00{'.000000' if i % 2 else ''}", "gpt", "completed", d, 100, 50, 2500)
          for i, d in enumerate(GPT_DURATIONS)),
        ("2026-02-02 12:30:00", "claude", "completed", 777, 40, 60, 1_000_000),
        ("2026-02-02 20:00:00", "gpt", "failed", 5000, 100, 0, 0),                 # slow, but not completed
        ("2026-02-02 23:59:59.999999", "gpt", "timeout", 9000, 100, 0, 0),
        # Tue 02-03
        ("2026-02-03 08:00:00", "claude", "completed", 1000, 5, 5, 10_000, coach),
        ("2026-02-03 09:00:00", "claude", "timeout", 30, 5, 0, 0, coach),
        # Wed 02-04: only a failed call; Thu 02-05: nothing
        ("2026-02-04 00:00:00.000000", "gpt", "failed", 300, 7, 0, 0),
        # Sun 03-01 00:00: March, in no materialized period
        ("2026-03-01 00:00:00", "gpt", "completed", 99_999, 1, 1, 1))
    assert materialize(sources, "day", "2026-02-01", "2026-02-05").success
    assert materialize(sources, "week", "2026-02-02").success
    assert materialize(sources, "month", "2026-02-01").success

    # --- day -----------------------------------------------------------------------------------
    # 02-01: 2 calls; 02-02: 20 + 1 + 1 + 1 = 23; 02-03: 2; 02-04: 1; 02-05: 0
    assert values(sources, "ai_requests", "day") == {
        "2026-02-01": 2, "2026-02-02": 23, "2026-02-03": 2, "2026-02-04": 1, "2026-02-05": 0}
    assert nonzero(values(sources, "ai_requests", "day", "model", "2026-02-02", "2026-02-05")) == {
        ("2026-02-02", "gpt"): 22, ("2026-02-02", "claude"): 1,                    # 20 + failed + timeout
        ("2026-02-03", "claude"): 2, ("2026-02-04", "gpt"): 1}
    assert nonzero(values(sources, "ai_requests", "day", "status", "2026-02-02", "2026-02-05")) == {
        ("2026-02-02", "completed"): 21, ("2026-02-02", "failed"): 1, ("2026-02-02", "timeout"): 1,
        ("2026-02-03", "completed"): 1, ("2026-02-03", "timeout"): 1, ("2026-02-04", "failed"): 1}
    # tokens: 02-01 1500 + 15 = 1515; 02-02 gpt 20 x 150 + 100 + 100 = 3200, claude 40 + 60 = 100 -> 3300;
    # 02-03 10 + 5 = 15; 02-04 7
    assert values(sources, "ai_tokens", "day") == {
        "2026-02-01": 1515, "2026-02-02": 3300, "2026-02-03": 15, "2026-02-04": 7, "2026-02-05": 0}
    assert nonzero(values(sources, "ai_tokens", "day", "model", "2026-02-02", "2026-02-03")) == {
        ("2026-02-02", "gpt"): 3200, ("2026-02-02", "claude"): 100}
    # cost: 02-01 (125000 + 375000) / 1e6 = 0.50; 02-02 gpt 20 x 2500 = 50000 -> 0.05 (rounding each call
    # to cents would give 0), claude 1.00 -> 1.05; 02-03 0.01; 02-04 0
    assert values(sources, "ai_cost", "day") == {
        "2026-02-01": usd(0.50), "2026-02-02": usd(1.05), "2026-02-03": usd(0.01), "2026-02-04": 0,
        "2026-02-05": 0}
    assert nonzero(values(sources, "ai_cost", "day", "model", "2026-02-02", "2026-02-04")) == {
        ("2026-02-02", "gpt"): usd(0.05), ("2026-02-02", "claude"): usd(1.00), ("2026-02-03", "claude"): usd(0.01)}
    assert nonzero(values(sources, "ai_cost", "day", "feature", "2026-02-01", "2026-02-04")) == {
        ("2026-02-01", "coach"): usd(0.50), ("2026-02-02", "chat"): usd(1.05), ("2026-02-03", "coach"): usd(0.01)}
    # success: 02-01 2/2; 02-02 21/23; 02-03 1/2; 02-04 0/1 = 0 (not NULL); 02-05 0/0 -> NULL
    assert values(sources, "ai_success_rate", "day") == {
        "2026-02-01": 1, "2026-02-02": approx(21 / 23), "2026-02-03": approx(1 / 2), "2026-02-04": 0,
        "2026-02-05": None}
    success = row(sources, "ai_success_rate", "day", "2026-02-02")
    assert (success["numerator"], success["denominator"]) == (21, 23)
    assert nonzero(values(sources, "ai_success_rate", "day", "model", "2026-02-02", "2026-02-03")) == {
        ("2026-02-02", "gpt"): approx(20 / 22), ("2026-02-02", "claude"): 1}
    # p95 = value at rank ceil(0.95 n) of the sorted completed durations:
    # 02-01 {2000, 3000}: n 2, rank 2 -> 3000
    # 02-02 10..200 and 777: n 21, rank ceil(19.95) = 20 -> 200 (with failed 5000 and timeout 9000,
    #   n 23, rank 22 would give 5000)
    # 02-03 {1000}: n 1 -> 1000 (the timeout's 30 is excluded); 02-04 no completed call -> NULL; 02-05 NULL
    assert values(sources, "ai_latency_p95_ms", "day") == {
        "2026-02-01": 3000, "2026-02-02": 200, "2026-02-03": 1000, "2026-02-04": None, "2026-02-05": None}
    # by model on 02-02: gpt 10..200, n 20, rank 19 -> 190; claude {777}, n 1 -> 777
    assert nonzero(values(sources, "ai_latency_p95_ms", "day", "model", "2026-02-02", "2026-02-05")) == {
        ("2026-02-02", "gpt"): 190, ("2026-02-02", "claude"): 777, ("2026-02-03", "claude"): 1000}

    # --- week of 02-02 (02-02 .. 02-08; Sunday 02-01 is the week before) ---------------------------
    # requests 23 + 2 + 1 = 26; tokens 3300 + 15 + 7 = 3322; cost 1.05 + 0.01 = 1.06; success 22/26
    # p95 over the whole week: 10..200, 777, 1000: n 22, rank ceil(20.9) = 21 -> 777
    #   (not the mean of the daily p95s (200 + 1000) / 2 = 600, nor their max 1000)
    assert totals(sources, AI_METRICS, "week", "2026-02-02") == {
        "ai_requests": 26, "ai_tokens": 3322, "ai_cost": usd(1.06), "ai_success_rate": approx(22 / 26),
        "ai_latency_p95_ms": 777}
    assert nonzero(values(sources, "ai_requests", "week", "model")) == {
        ("2026-02-02", "gpt"): 23, ("2026-02-02", "claude"): 3}                    # 22 + 1; 1 + 2
    assert nonzero(values(sources, "ai_requests", "week", "status")) == {
        ("2026-02-02", "completed"): 22, ("2026-02-02", "failed"): 2, ("2026-02-02", "timeout"): 2}
    assert nonzero(values(sources, "ai_tokens", "week", "model")) == {
        ("2026-02-02", "gpt"): 3207, ("2026-02-02", "claude"): 115}                # 3200 + 7; 100 + 15
    assert nonzero(values(sources, "ai_cost", "week", "feature")) == {
        ("2026-02-02", "chat"): usd(1.05), ("2026-02-02", "coach"): usd(0.01)}
    assert nonzero(values(sources, "ai_success_rate", "week", "model")) == {
        ("2026-02-02", "gpt"): approx(20 / 23), ("2026-02-02", "claude"): approx(2 / 3)}
    # gpt: n 20, rank 19 -> 190; claude {777, 1000}: n 2, rank ceil(1.9) = 2 -> 1000
    assert nonzero(values(sources, "ai_latency_p95_ms", "week", "model")) == {
        ("2026-02-02", "gpt"): 190, ("2026-02-02", "claude"): 1000}

    # --- month of February (with Sunday 02-01, without 03-01 00:00) ----------------------------------
    # requests 26 + 2 = 28; tokens 3322 + 1515 = 4837; cost 1.06 + 0.50 = 1.56; success 24/28
    # p95: 10..200 (ranks 1-20), 777, 1000, 2000, 3000: n 24, rank ceil(22.8) = 23 -> 2000
    #   (with the March call of 99999 ms, n 25 and rank 24 would give 3000)
    assert totals(sources, AI_METRICS, "month", "2026-02-01") == {
        "ai_requests": 28, "ai_tokens": 4837, "ai_cost": usd(1.56), "ai_success_rate": approx(24 / 28),
        "ai_latency_p95_ms": 2000}
    assert nonzero(values(sources, "ai_cost", "month", "model")) == {
        ("2026-02-01", "gpt"): usd(0.05), ("2026-02-01", "claude"): usd(1.51)}      # 1.00 + 0.01 + 0.50
    assert nonzero(values(sources, "ai_cost", "month", "feature")) == {
        ("2026-02-01", "chat"): usd(1.05), ("2026-02-01", "coach"): usd(0.51)}      # 0.50 + 0.01
    # claude {777, 1000, 2000, 3000}: n 4, rank ceil(3.8) = 4 -> 3000; gpt 190
    assert nonzero(values(sources, "ai_latency_p95_ms", "month", "model")) == {
        ("2026-02-01", "gpt"): 190, ("2026-02-01", "claude"): 3000}
    assert nonzero(values(sources, "ai_success_rate", "month", "model")) == {
        ("2026-02-01", "gpt"): approx(20 / 23), ("2026-02-01", "claude"): approx(4 / 5)}


def test_contract_breaking_ai_requests_are_excluded_and_reported(sources):
    relax_required_columns(sources, "ai_requests")
    day = "2026-02-09 10:00:00"
    requests(sources,
             (day, "gpt", "completed", 100, 10, 10, 1_000_000, {"id": "good_ai"}),
             (day, "gpt", "cancelled", 9000, 10, 10, 1_000_000, {"id": "bad_ai_status"}),      # unknown enum
             (day, "gpt", "completed", 9000, 10, 10, -500_000, {"id": "bad_ai_negative_cost"}),
             (day, "gpt", "completed", 9000, -10, 10, 1_000_000, {"id": "bad_ai_negative_tokens"}),
             (day, None, "completed", 9000, 10, 10, 1_000_000, {"id": "bad_ai_null_model"}))   # NULL required

    run, reports = run_with_check_reports(sources, "day", "2026-02-09")
    assert run.success                                       # WARN check: the run still succeeds
    # only good_ai: 1 call, 20 tokens, 1.00 USD, 1/1 completed, p95 of {100} = 100
    assert totals(sources, AI_METRICS, "day", "2026-02-09") == {
        "ai_requests": 1, "ai_tokens": 20, "ai_cost": usd(1.00), "ai_success_rate": 1, "ai_latency_p95_ms": 100}
    assert nonzero(values(sources, "ai_requests", "day", "model")) == {("2026-02-09", "gpt"): 1}
    assert nonzero(values(sources, "ai_requests", "day", "status")) == {("2026-02-09", "completed"): 1}
    assert_reported(reports, ["bad_ai_status", "bad_ai_negative_cost", "bad_ai_negative_tokens",
                              "bad_ai_null_model"], ["good_ai"])
