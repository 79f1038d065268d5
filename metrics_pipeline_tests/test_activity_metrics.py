"""Exact values of the Activity metrics (`app` and `interactions`) on small hand-built fixtures.

Every expectation is computed by hand from METRICS.md (arithmetic in the comment beside it), never
from the implementation. Each test runs on SQLite and on PostgreSQL (the `sources` fixture).
Timestamps at period boundaries use both SQLite spellings ('... 00:00:00' and '... 00:00:00.000000').
"""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from metrics_pipeline_tests.conftest import every_source_kind, values

pytestmark = every_source_kind  # primary keys only, contract indexes, timestamptz

# ---------------------------------------------------------------------------------------------
# helpers (also used by test_revenue_metrics.py)


def approx(x, rel=1e-9):
    """Float comparison for values that involve a division."""
    return pytest.approx(x, rel=rel, abs=1e-9)


def nonzero(d: dict) -> dict:
    """Breakdown rows whose value is 0 or NULL may be left out (edge rule 2): compare the others."""
    return {k: v for k, v in d.items() if v}


def totals(sources, metrics, grain, period_start) -> dict:
    """{metric: value} of the total rows (dimension '') of one period; a missing row is absent."""
    rows = sources.warehouse().metric_rows(metrics, grain, dimension="")
    return {r["metric"]: r["value"] for r in rows if r["period_start"] == period_start}


def row(sources, metric, grain, period_start, dimension="", dimension_value="") -> dict:
    """The full metric_values row (all columns) of one metric/period/dimension value."""
    rows = [r for r in sources.warehouse().metric_rows([metric], grain, dimension=dimension)
            if r["period_start"] == period_start and r["dimension_value"] == dimension_value]
    assert len(rows) == 1, rows
    return rows[0]


def run_with_check_reports(sources, grain, first, last=None):
    """Like the `materialize` fixture, but also returns the `source_expectations` evaluations of the run."""
    from metrics_pipeline.partitions import PARTITIONS
    from metrics_pipeline.runner import run_range

    instance = dg.DagsterInstance.ephemeral()
    keys = PARTITIONS[grain].get_partition_keys_in_range(dg.PartitionKeyRange(first, last or first))
    run = run_range(sources.defs(), grain, keys, instance)
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.asset_check_evaluation_data for r in records]
    # the check's result for the whole window (a range run also logs one result per partition)
    return run, [e for e in evaluations if e.check_name == "source_expectations" and (len(keys) == 1 or e.partition is None)]


def assert_reported(evaluations, bad_ids, good_ids=()):
    """The WARN check `source_expectations` failed and names every bad row id (and no good one).

    Fixtures leave parents out (a session's user, a payment's subscription), so reference
    expectations fail too; only the contract rules of edge rule 13 are asserted here.
    """
    failing = [e for e in evaluations if not e.passed]
    assert failing, "source_expectations reported nothing"
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in failing)
    reported = {i for e in failing for f in e.metadata["failures"].data if "match an id" not in f["requirement"]
                for i in f["sample_ids"]}
    text = " ".join(reported)  # composite keys read "2026-04-13|bing_ads|campaign"
    for bad in bad_ids:
        assert bad in text, f"bad row {bad} not reported: {reported}"
    for good in good_ids:
        assert good not in text, f"valid row {good} reported: {reported}"


def relax_required_columns(sources, table):
    """Recreate the (still empty) table without NOT NULL so that a contract-breaking NULL can be stored."""
    from metrics_pipeline.contract import TABLES

    t = TABLES[table]
    engine = sources.engines[t.database]
    strict = t.sa_table(sa.MetaData())
    relaxed = sa.Table(table, sa.MetaData(),
                       *(sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=not c.primary_key)
                         for c in strict.columns))
    with engine.begin() as conn:
        strict.drop(conn)
        relaxed.create(conn)


def users(sources, *specs):
    """specs: (id, created_at) or (id, created_at, {extra columns})."""
    sources.insert("users", *({"id": s[0], "created_at": s[1], **(s[2] if len(s) > 2 else {})} for s in specs))


def sessions(sources, *specs):
    """specs: (user_id, started_at, ended_at, platform)."""
    sources.insert("user_sessions", *({"user_id": u, "started_at": st, "ended_at": en, "platform": p}
                                      for u, st, en, p in specs))


# ---------------------------------------------------------------------------------------------
# new_users


def test_new_users_hour_day_week_with_platform_and_country(sources, materialize):
    users(sources,
          ("u0", "2026-01-04 23:59:59.999999"),                       # Sunday: day 01-04, week 12-29
          ("u1", "2026-01-05 00:00:00", {"platform": "ios", "country": "US"}),
          ("u2", "2026-01-05 00:59:59.999999", {"platform": "android", "country": None}),
          ("u3", "2026-01-05 01:00:00.000000", {"platform": "web", "country": "FR",
                                                "deleted_at": "2026-01-05 02:00:00"}),  # deleted: still new
          ("u4", "2026-01-06 00:00:00.000000", {"platform": "ios", "country": "US"}))
    assert materialize(sources, "hour", "2026-01-05-00:00", "2026-01-05-02:00").success
    assert materialize(sources, "day", "2026-01-04", "2026-01-07").success
    assert materialize(sources, "week", "2025-12-29", "2026-01-05").success

    # hour 00: u1, u2; hour 01: u3; hour 02: none (total row still exists)
    assert values(sources, "new_users", "hour") == {
        "2026-01-05 00:00:00": 2, "2026-01-05 01:00:00": 1, "2026-01-05 02:00:00": 0}
    assert nonzero(values(sources, "new_users", "hour", "platform")) == {
        ("2026-01-05 00:00:00", "ios"): 1, ("2026-01-05 00:00:00", "android"): 1,
        ("2026-01-05 01:00:00", "web"): 1}
    # day 04: u0; day 05: u1 + u2 + u3 = 3; day 06: u4; day 07: empty -> 0
    assert values(sources, "new_users", "day") == {
        "2026-01-04": 1, "2026-01-05": 3, "2026-01-06": 1, "2026-01-07": 0}
    assert nonzero(values(sources, "new_users", "day", "country", "2026-01-05", "2026-01-06")) == {
        ("2026-01-05", "US"): 1, ("2026-01-05", "unknown"): 1, ("2026-01-05", "FR"): 1}
    assert nonzero(values(sources, "new_users", "day", "platform", "2026-01-05", "2026-01-06")) == {
        ("2026-01-05", "ios"): 1, ("2026-01-05", "android"): 1, ("2026-01-05", "web"): 1}
    # week of Mon 12-29: u0; week of Mon 01-05: u1..u4 = 4
    assert values(sources, "new_users", "week") == {"2025-12-29": 1, "2026-01-05": 4}
    assert nonzero(values(sources, "new_users", "week", "country", "2026-01-05")) == {
        ("2026-01-05", "US"): 2, ("2026-01-05", "unknown"): 1, ("2026-01-05", "FR"): 1}


# ---------------------------------------------------------------------------------------------
# active_users and sessions


def test_active_users_and_sessions_all_grains_by_session_platform(sources, materialize):
    # the users' own platform is 'web' for ua: the breakdown must use the session's platform
    users(sources, ("ua", "2025-06-01 00:00:00", {"platform": "web"}), ("ub", "2025-06-01 00:00:00"),
          ("uc", "2025-06-01 00:00:00"))
    sessions(sources,
             ("ua", "2026-01-05 10:00:00", None, "android"),
             ("ua", "2026-01-05 10:30:00", None, "ios"),
             ("ua", "2026-01-06 09:00:00", None, "ios"),
             ("ub", "2026-01-05 10:59:59.999999", None, "web"),
             ("ub", "2026-01-07 00:00:00", None, "web"),
             ("uc", "2026-01-04 23:59:59", None, "ios"),                # Sunday: week of 12-29
             ("uc", "2026-01-12 00:00:00.000000", None, "android"))     # next week
    assert materialize(sources, "hour", "2026-01-05-10:00", "2026-01-05-11:00").success
    assert materialize(sources, "day", "2026-01-04", "2026-01-07").success
    assert materialize(sources, "week", "2025-12-29", "2026-01-05").success
    assert materialize(sources, "month", "2026-01-01").success

    # hour 10: ua (2 sessions), ub -> 2 distinct; hour 11: nobody
    assert values(sources, "active_users", "hour") == {"2026-01-05 10:00:00": 2, "2026-01-05 11:00:00": 0}
    assert nonzero(values(sources, "active_users", "hour", "platform")) == {
        ("2026-01-05 10:00:00", "android"): 1, ("2026-01-05 10:00:00", "ios"): 1,
        ("2026-01-05 10:00:00", "web"): 1}
    # day 04: uc; 05: ua, ub; 06: ua; 07: ub (started exactly 00:00)
    assert values(sources, "active_users", "day") == {
        "2026-01-04": 1, "2026-01-05": 2, "2026-01-06": 1, "2026-01-07": 1}
    assert values(sources, "sessions", "day") == {
        "2026-01-04": 1, "2026-01-05": 3, "2026-01-06": 1, "2026-01-07": 1}
    assert nonzero(values(sources, "active_users", "day", "platform", "2026-01-05", "2026-01-06")) == {
        ("2026-01-05", "android"): 1, ("2026-01-05", "ios"): 1, ("2026-01-05", "web"): 1}
    assert nonzero(values(sources, "sessions", "day", "platform", "2026-01-05", "2026-01-06")) == {
        ("2026-01-05", "android"): 1, ("2026-01-05", "ios"): 1, ("2026-01-05", "web"): 1}
    # week 12-29: uc; week 01-05: distinct {ua, ub} = 2 (the sum of its days would be 2+1+1 = 4);
    # sessions week 01-05: ua 3 + ub 2 = 5
    assert values(sources, "active_users", "week") == {"2025-12-29": 1, "2026-01-05": 2}
    assert values(sources, "sessions", "week") == {"2025-12-29": 1, "2026-01-05": 5}
    # month Jan: {ua, ub, uc} = 3; 7 sessions; by platform: ios {ua, uc}, android {ua, uc}, web {ub}
    assert values(sources, "active_users", "month") == {"2026-01-01": 3}
    assert values(sources, "sessions", "month") == {"2026-01-01": 7}
    assert nonzero(values(sources, "active_users", "month", "platform")) == {
        ("2026-01-01", "ios"): 2, ("2026-01-01", "android"): 2, ("2026-01-01", "web"): 1}
    assert nonzero(values(sources, "sessions", "month", "platform")) == {
        ("2026-01-01", "ios"): 3, ("2026-01-01", "android"): 2, ("2026-01-01", "web"): 2}


def test_avg_session_duration_excludes_open_sessions_and_is_microsecond_exact(sources, materialize):
    sessions(sources,
             ("s", "2026-01-05 08:00:00", "2026-01-05 08:00:10.250000", "ios"),          # 10.25 s
             ("s", "2026-01-05 09:00:00.500000", "2026-01-05 09:01:00", "android"),      # 59.5 s
             ("s", "2026-01-05 10:00:00", None, "ios"),                                   # open: excluded
             ("s", "2026-01-05 23:59:59.999999", "2026-01-06 00:00:00.000001", "ios"),   # 0.000002 s
             ("s", "2026-01-06 00:00:00", "2026-01-06 00:00:30.000001", "web"),          # 30.000001 s
             ("s", "2026-01-07 00:00:00.000000", None, "ios"))                           # open only
    assert materialize(sources, "day", "2026-01-05", "2026-01-07").success
    assert materialize(sources, "week", "2026-01-05").success

    avg = values(sources, "avg_session_duration_seconds", "day")
    assert avg == {
        "2026-01-05": approx((10.25 + 59.5 + 0.000002) / 3),   # 23.250000666...
        "2026-01-06": approx(30.000001),
        "2026-01-07": None,                                     # only an open session: average over nothing
    }
    by_platform = values(sources, "avg_session_duration_seconds", "day", "platform", "2026-01-05", "2026-01-06")
    assert nonzero(by_platform) == {
        ("2026-01-05", "ios"): approx((10.25 + 0.000002) / 2),  # 5.125001
        ("2026-01-05", "android"): approx(59.5)}
    assert values(sources, "sessions", "day") == {"2026-01-05": 4, "2026-01-06": 1, "2026-01-07": 1}
    # week: all 4 ended sessions together, (69.750002 + 30.000001) / 4 = 24.93750075
    # (not the mean of the daily means, (23.25000067 + 30.000001) / 2 = 26.625...)
    week = row(sources, "avg_session_duration_seconds", "week", "2026-01-05")
    assert week["value"] == approx(99.750003 / 4)
    assert week["denominator"] == 4
    assert week["numerator"] == approx(99.750003)
    assert week["value"] == approx(week["numerator"] / week["denominator"])


def test_stickiness_averages_over_every_day_of_the_month(sources, materialize):
    sessions(sources,
             ("A", "2026-02-01 00:00:00", None, "ios"), ("A", "2026-02-02 12:00:00", None, "ios"),
             ("A", "2026-02-03 12:00:00", None, "ios"),
             ("B", "2026-02-02 13:00:00", None, "ios"), ("B", "2026-02-02 14:00:00", None, "ios"),
             ("C", "2026-02-28 23:59:59.999999", None, "ios"), ("C", "2026-03-01 00:00:00.000000", None, "ios"),
             ("D", "2026-01-31 23:59:59", None, "ios"))
    assert materialize(sources, "month", "2026-02-01", "2026-04-01").success

    # Feb: daily actives 1 (Feb 1) + 2 (Feb 2) + 1 (Feb 3) + 1 (Feb 28) = 5 over 28 days; MAU {A, B, C} = 3
    #   -> (5 / 28) / 3 = 5/84 (idle days excluded would give (5/4)/3 = 0.4167)
    # Mar: 1 active day (C on Mar 1) over 31 days; MAU 1 -> 1/31; Apr: no activity -> NULL
    assert values(sources, "stickiness", "month") == {
        "2026-02-01": approx(5 / 84), "2026-03-01": approx(1 / 31), "2026-04-01": None}
    assert values(sources, "active_users", "month") == {"2026-02-01": 3, "2026-03-01": 1, "2026-04-01": 0}


# ---------------------------------------------------------------------------------------------
# retention


def test_retention_d1_d7_d30(sources, materialize):
    users(sources,
          ("r1", "2026-01-09 00:00:00"),
          ("r2", "2026-01-09 23:59:59.999999", {"deleted_at": "2026-01-10 12:00:00"}),  # deleted: stays in cohort
          ("r3", "2026-01-09 12:00:00"),
          ("r4", "2026-01-10 00:00:00"),
          ("w1", "2026-01-03 05:00:00"), ("w2", "2026-01-03 23:00:00"),
          ("m1", "2025-12-11 00:00:00.000000"), ("m2", "2025-12-10 23:59:59.999999"))
    sessions(sources,
             ("r1", "2026-01-10 00:00:00.000000", None, "ios"),
             ("r2", "2026-01-10 08:00:00", "2026-01-10 08:10:00", "ios"),
             ("r3", "2026-01-09 23:30:00", "2026-01-10 01:00:00", "ios"),  # began on D-1: not retained
             ("r4", "2026-01-10 09:00:00", None, "ios"),
             ("w1", "2026-01-10 05:00:00", None, "ios"),
             ("w2", "2026-01-11 00:00:00", None, "ios"),
             ("m1", "2026-01-10 23:59:59.999999", None, "ios"),
             ("m2", "2026-01-10 10:00:00", None, "ios"))
    assert materialize(sources, "day", "2026-01-10", "2026-01-11").success

    # D = 01-10: d1 cohort (created 01-09) {r1, r2, r3}, retained r1, r2 -> 2/3
    #            d7 cohort (created 01-03) {w1, w2}, retained w1 -> 1/2
    #            d30 cohort (created 12-11) {m1} (m2 is 12-10), retained m1 -> 1/1
    # D = 01-11: d1 cohort {r4}, no session on 01-11 -> 0/1 = 0; d7 (01-04) and d30 (12-12) empty -> NULL
    assert values(sources, "retention_d1", "day") == {"2026-01-10": approx(2 / 3), "2026-01-11": 0}
    assert values(sources, "retention_d7", "day") == {"2026-01-10": approx(1 / 2), "2026-01-11": None}
    assert values(sources, "retention_d30", "day") == {"2026-01-10": 1, "2026-01-11": None}
    d1 = row(sources, "retention_d1", "day", "2026-01-10")
    assert (d1["numerator"], d1["denominator"]) == (2, 3)
    assert d1["period_end"] == "2026-01-11"
    empty = row(sources, "retention_d7", "day", "2026-01-11")
    assert empty["value"] is None and empty["denominator"] in (0, None)


# ---------------------------------------------------------------------------------------------
# interactions: swipes, matches, video calls, events


def test_swipes_matches_video_calls(sources, materialize):
    sources.insert("swipes", *({"action": a, "created_at": t} for a, t in [
        ("like", "2026-01-04 23:59:59.999999"),   # Sunday: only in the month
        ("like", "2026-01-05 00:00:00"), ("like", "2026-01-05 12:00:00.000000"),
        ("pass", "2026-01-05 13:00:00"), ("superlike", "2026-01-05 23:59:59.999999"),
        ("pass", "2026-01-06 00:00:00.000000")]))
    sources.insert("matches", *({"created_at": t} for t in [
        "2026-01-05 08:00:00", "2026-01-05 09:00:00.000000", "2026-01-07 00:00:00"]))
    sources.insert("video_calls", *({"started_at": t, "duration_seconds": d} for t, d in [
        ("2026-01-05 10:00:00", 90), ("2026-01-05 23:59:59", None),   # live call: counted, 0 minutes
        ("2026-01-06 00:00:00.000000", 45), ("2026-01-20 12:00:00", 30)]))
    assert materialize(sources, "day", "2026-01-05", "2026-01-07").success
    assert materialize(sources, "week", "2026-01-05").success
    assert materialize(sources, "month", "2026-01-01").success

    assert values(sources, "swipes", "day") == {"2026-01-05": 4, "2026-01-06": 1, "2026-01-07": 0}
    assert nonzero(values(sources, "swipes", "day", "action")) == {
        ("2026-01-05", "like"): 2, ("2026-01-05", "pass"): 1, ("2026-01-05", "superlike"): 1,
        ("2026-01-06", "pass"): 1}
    assert values(sources, "swipes", "week") == {"2026-01-05": 5}          # 4 + 1
    assert nonzero(values(sources, "swipes", "week", "action")) == {
        ("2026-01-05", "like"): 2, ("2026-01-05", "pass"): 2, ("2026-01-05", "superlike"): 1}
    assert values(sources, "swipes", "month") == {"2026-01-01": 6}         # + the Sunday like
    assert nonzero(values(sources, "swipes", "month", "action")) == {
        ("2026-01-01", "like"): 3, ("2026-01-01", "pass"): 2, ("2026-01-01", "superlike"): 1}

    assert values(sources, "matches", "day") == {"2026-01-05": 2, "2026-01-06": 0, "2026-01-07": 1}
    assert values(sources, "matches", "week") == {"2026-01-05": 3}
    assert values(sources, "matches", "month") == {"2026-01-01": 3}

    assert values(sources, "video_calls", "day") == {"2026-01-05": 2, "2026-01-06": 1, "2026-01-07": 0}
    assert values(sources, "video_call_minutes", "day") == {
        "2026-01-05": approx(90 / 60), "2026-01-06": approx(45 / 60), "2026-01-07": 0}
    assert values(sources, "video_calls", "week") == {"2026-01-05": 3}
    assert values(sources, "video_call_minutes", "week") == {"2026-01-05": approx((90 + 45) / 60)}  # 2.25
    assert values(sources, "video_calls", "month") == {"2026-01-01": 4}
    assert values(sources, "video_call_minutes", "month") == {"2026-01-01": approx((90 + 45 + 30) / 60)}  # 2.75


def test_events_hour_and_day_by_event_name_and_platform(sources, materialize):
    sources.insert("events", *({"event_name": n, "platform": p, "event_time": t} for n, p, t in [
        ("registration_start", "ios", "2026-01-05 09:59:59.999999"),
        ("app_open", "ios", "2026-01-05 10:00:00"),
        ("app_open", "android", "2026-01-05 10:59:59.999999"),
        ("first_match", "ios", "2026-01-05 11:00:00.000000"),
        ("app_open", "web", "2026-01-06 00:00:00")]))
    assert materialize(sources, "hour", "2026-01-05-10:00", "2026-01-05-12:00").success
    assert materialize(sources, "day", "2026-01-05", "2026-01-06").success

    h10, h11, h12 = "2026-01-05 10:00:00", "2026-01-05 11:00:00", "2026-01-05 12:00:00"
    assert values(sources, "events", "hour") == {h10: 2, h11: 1, h12: 0}  # hour 12: no events, total 0
    assert nonzero(values(sources, "events", "hour", "event_name")) == {(h10, "app_open"): 2, (h11, "first_match"): 1}
    assert nonzero(values(sources, "events", "hour", "platform")) == {
        (h10, "ios"): 1, (h10, "android"): 1, (h11, "ios"): 1}
    assert values(sources, "events", "day") == {"2026-01-05": 4, "2026-01-06": 1}
    assert nonzero(values(sources, "events", "day", "event_name")) == {
        ("2026-01-05", "registration_start"): 1, ("2026-01-05", "app_open"): 2,
        ("2026-01-05", "first_match"): 1, ("2026-01-06", "app_open"): 1}
    assert nonzero(values(sources, "events", "day", "platform")) == {
        ("2026-01-05", "ios"): 3, ("2026-01-05", "android"): 1, ("2026-01-06", "web"): 1}


# ---------------------------------------------------------------------------------------------
# empty periods and contract-breaking rows


def test_empty_periods_have_every_total(sources, materialize):
    # (empty hours are covered by the new_users, active_users and events tests)
    assert materialize(sources, "day", "2026-01-05").success
    assert materialize(sources, "month", "2026-01-01").success

    zero, null = 0, None
    assert totals(sources, [
        "new_users", "active_users", "sessions", "avg_session_duration_seconds", "retention_d1",
        "retention_d7", "retention_d30", "swipes", "matches", "video_calls", "video_call_minutes", "events",
    ], "day", "2026-01-05") == {
        "new_users": zero, "active_users": zero, "sessions": zero, "avg_session_duration_seconds": null,
        "retention_d1": null, "retention_d7": null, "retention_d30": null, "swipes": zero, "matches": zero,
        "video_calls": zero, "video_call_minutes": zero, "events": zero}
    assert totals(sources, [
        "new_users", "active_users", "sessions", "avg_session_duration_seconds", "stickiness", "swipes",
        "matches", "video_calls", "video_call_minutes"], "month", "2026-01-01") == {
        "new_users": zero, "active_users": zero, "sessions": zero, "avg_session_duration_seconds": null,
        "stickiness": null, "swipes": zero, "matches": zero, "video_calls": zero, "video_call_minutes": zero}


def test_contract_breaking_rows_are_excluded_and_reported(sources):
    relax_required_columns(sources, "users")
    users(sources,
          ("good_user", "2026-01-05 10:00:00"),
          ("bad_user_platform", "2026-01-05 11:00:00", {"platform": "windows"}),  # unknown enum value
          ("bad_user_email", "2026-01-05 12:00:00", {"email": None}))             # NULL in a required column
    sources.insert("user_sessions",
                   {"id": "good_session", "user_id": "good_user", "started_at": "2026-01-05 10:00:00"},
                   {"id": "bad_session", "user_id": "other", "started_at": "2026-01-05 12:00:00",
                    "screens_viewed": -1})                                           # negative counter
    sources.insert("swipes", {"id": "good_swipe", "action": "like", "created_at": "2026-01-05 10:00:00"},
                   {"id": "bad_swipe", "action": "maybe", "created_at": "2026-01-05 10:00:00"})
    sources.insert("video_calls", {"id": "bad_call", "started_at": "2026-01-05 10:00:00", "duration_seconds": -60})

    run, reports = run_with_check_reports(sources, "day", "2026-01-05")
    assert run.success                                       # WARN check: the run still succeeds
    assert totals(sources, ["new_users", "active_users", "sessions", "swipes", "video_calls",
                            "video_call_minutes"], "day", "2026-01-05") == {
        "new_users": 1, "active_users": 1, "sessions": 1, "swipes": 1, "video_calls": 0,
        "video_call_minutes": 0}
    assert nonzero(values(sources, "swipes", "day", "action")) == {("2026-01-05", "like"): 1}
    assert nonzero(values(sources, "new_users", "day", "platform")) == {("2026-01-05", "ios"): 1}
    assert_reported(reports, ["bad_user_platform", "bad_user_email", "bad_session", "bad_swipe", "bad_call"],
                    ["good_user", "good_session", "good_swipe"])
