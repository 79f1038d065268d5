"""Weekly retention cohorts and the conversion funnel, on hand-built fixtures (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from metrics_pipeline.metrics.funnel import funnel
from metrics_pipeline.metrics.periods import periods_between
from metrics_pipeline.warehouse_schema import conversion_funnel, retention_cohorts
from metrics_pipeline_tests.conftest import every_source_kind, values

W0, W1, W4 = "2026-01-05", "2026-01-12", "2026-02-02"  # ISO weeks (Mondays)


def _table(sources, table, order):
    with sources.warehouse().engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*order)).mappings().all()
    return [{k: v for k, v in r.items() if k not in ("computed_at", "run_id")} for r in rows]


def _cohort_fixture(sources):
    sources.insert("users",
                   {"id": "u1", "created_at": "2026-01-05 00:00:00"},
                   {"id": "u2", "created_at": "2026-01-11 23:59:59.999999"},
                   {"id": "u3", "created_at": "2026-01-07 12:00:00", "deleted_at": "2026-01-20 00:00:00"},
                   {"id": "u4", "created_at": "2026-01-12 00:00:00.000000"})
    sources.insert("user_sessions",
                   {"user_id": "u2", "started_at": "2026-01-11 23:30:00", "ended_at": "2026-01-12 01:00:00"},
                   {"user_id": "u1", "started_at": "2026-01-12 10:00:00"},
                   {"user_id": "u3", "started_at": "2026-01-18 23:00:00"},
                   {"user_id": "u4", "started_at": "2026-01-19 08:00:00"},
                   {"user_id": "u1", "started_at": "2026-02-02 00:00:00.000000"})


@every_source_kind
def test_weekly_retention_cohorts_and_summary_rows(sources, materialize):
    _cohort_fixture(sources)
    assert materialize(sources, "week", W1, W4).success
    cells = {(r["cohort_week"], r["period_number"]): r for r in _table(sources, retention_cohorts,
                                                                       [retention_cohorts.c.measured_week])}
    # W0 cohort = u1, u2, u3 (deleted users stay); W1 cohort = u4; earlier cohorts are empty (no rows)
    assert cells[(W0, 1)]["cohort_size"] == 3 and cells[(W0, 1)]["users_returned"] == 2  # u1, u3 (u2's ran past midnight)
    assert cells[(W0, 1)]["retention_rate"] == pytest.approx(2 / 3)
    assert cells[(W1, 0)]["users_returned"] == 1 and cells[(W1, 0)]["retention_rate"] == 1.0  # period 0: all members
    assert cells[(W0, 2)]["users_returned"] == 0  # nobody of W0 in the week of 01-19
    assert cells[(W1, 1)]["users_returned"] == 1  # u4 on 01-19
    assert cells[(W0, 4)]["users_returned"] == 1  # u1 at 2026-02-02 00:00:00.000000
    assert cells[(W1, 3)]["users_returned"] == 0
    assert all(c["measured_week"] <= W4 for c in cells.values())
    assert len(cells) == 2 + 2 + 2 + 2  # weeks 01-12 .. 02-02 each measure the W0 and W1 cohorts
    # retention_w1 of W1 = cohort W0 in W1 = 2/3; of 01-19 = cohort W1 = 1/1; the cohorts of 01-19 and
    # 01-26 are empty, so 01-26 and W4 have no retention_w1 row (edge rule 11)
    assert values(sources, "retention_w1", "week") == {W1: pytest.approx(2 / 3), "2026-01-19": 1.0}
    # retention_w4 exists only for W4 (cohort W0): 1/3
    assert values(sources, "retention_w4", "week") == {W4: pytest.approx(1 / 3)}


@every_source_kind
def test_weekly_cohorts_single_run_equals_per_week_runs(sources, materialize):
    _cohort_fixture(sources)
    assert materialize(sources, "week", W1, W4).success
    ranged = _table(sources, retention_cohorts, [retention_cohorts.c.cohort_week, retention_cohorts.c.period_number])
    for week in (W1, "2026-01-19", "2026-01-26", W4):
        assert materialize(sources, "week", week).success  # re-materializing replaces, never duplicates
    assert _table(sources, retention_cohorts, [retention_cohorts.c.cohort_week, retention_cohorts.c.period_number]) == ranged


def _event(actor, name, at):
    return {"actor_id": actor, "event_name": name, "event_time": at}


def _funnel_fixture(sources):
    steps = ["app_open", "registration_start", "registration_complete", "first_session", "first_match",
             "first_message", "subscription_view", "subscription_purchase"]
    a_times = ["2026-03-02 08:00:00", "2026-03-02 09:00:00", "2026-03-02 09:05:00", "2026-03-03 10:00:00",
               "2026-03-05 10:00:00", "2026-03-06 10:00:00", "2026-03-10 10:00:00",
               "2026-03-16 08:00:00.000000"]  # purchase exactly 14 x 24 h after the first app_open: counts
    sources.insert("events", *(_event("a", s, t) for s, t in zip(steps, a_times)),
                   # b's first app_open is on 03-01, so b belongs to cohort 03-01 only
                   _event("b", "app_open", "2026-03-01 23:59:59.999999"), _event("b", "app_open", "2026-03-02 10:00:00"),
                   _event("b", "registration_start", "2026-03-02 11:00:00"),
                   # c: two app_opens on the day (counted once); registration_complete before registration_start
                   _event("c", "app_open", "2026-03-02 12:00:00"), _event("c", "app_open", "2026-03-02 13:00:00"),
                   _event("c", "registration_complete", "2026-03-02 12:30:00"),
                   _event("c", "registration_start", "2026-03-02 12:45:00"),
                   # d: registration_start 1 µs after the 14-day window: only step 1
                   _event("d", "app_open", "2026-03-02 14:00:00"),
                   _event("d", "registration_start", "2026-03-16 14:00:00.000001"))


@every_source_kind
def test_conversion_funnel_steps_in_order_within_14_days(sources, materialize):
    _funnel_fixture(sources)
    assert materialize(sources, "day", "2026-03-01", "2026-03-03").success
    rows = _table(sources, conversion_funnel, [conversion_funnel.c.cohort_date, conversion_funnel.c.step_index])
    day2 = [(r["step"], r["actors"]) for r in rows if r["cohort_date"] == "2026-03-02"]
    # cohort 03-02 = a, c, d; step 2: a, c; step 3..8: a only (c's registration_complete came first)
    assert day2 == [("app_open", 3), ("registration_start", 2), ("registration_complete", 1), ("first_session", 1),
                    ("first_match", 1), ("first_message", 1), ("subscription_view", 1), ("subscription_purchase", 1)]
    step3 = next(r for r in rows if r["cohort_date"] == "2026-03-02" and r["step_index"] == 3)
    assert step3["conversion_from_start"] == pytest.approx(1 / 3) and step3["conversion_from_previous"] == 0.5
    assert all(r["is_final"] for r in rows)  # 2026-03 cohorts closed long ago
    day1 = [(r["step_index"], r["actors"]) for r in rows if r["cohort_date"] == "2026-03-01"]
    assert day1[:3] == [(1, 1), (2, 1), (3, 0)]
    assert not [r for r in rows if r["cohort_date"] == "2026-03-03"]  # an empty cohort has no funnel rows
    # funnel_conversion = last step / first step, dated by the cohort day; NULL for an empty cohort
    assert values(sources, "funnel_conversion", "day") == {"2026-03-01": 0.0, "2026-03-02": pytest.approx(1 / 3),
                                                           "2026-03-03": None}


@pytest.mark.parametrize("as_of, final", [
    (dt.datetime(2026, 3, 10), False),
    (dt.datetime(2026, 3, 16, 23, 59, 59), False),
    (dt.datetime(2026, 3, 17), True),  # D + 15 days has begun: the whole window has closed
])
def test_funnel_cohort_is_provisional_until_its_window_closes(sources, as_of, final):
    _funnel_fixture(sources)
    days = periods_between("day", dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 3), "UTC")
    with sources.engines["interactions"].connect() as conn:
        steps, _ = funnel(conn, days, as_of)
    assert {s.is_final for s in steps} == {final}


def test_provisional_funnel_cohorts_are_recomputed_nightly_in_one_run():
    import dagster as dg

    from metrics_pipeline.definitions import defs

    schedule = defs.resolve_schedule_def("provisional_funnel_refresh")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 20, 1, 30, tzinfo=dt.timezone.utc),
        repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    # yesterday 03-19 back to 03-05: the 15 cohorts whose window has not closed by 03-20 (03-05 + 15 days)
    assert request.tags["dagster/asset_partition_range_start"] == "2026-03-05"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-03-19"
    assert request.run_key == "funnel:2026-03-05..2026-03-19"
