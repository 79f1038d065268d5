"""Dagster-level behaviour: idempotent partition replacement, single-run ranges equal per-partition
runs, the blocking MRR identity check, the schedules, and the definitions' lineage."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from metrics_pipeline.contract import TABLES
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.defs.sources import source_key
from metrics_pipeline.definitions import defs
from metrics_pipeline.metrics.catalog import DOMAINS, all_metrics
from metrics_pipeline.warehouse_schema import metric_values
from metrics_pipeline_tests.conftest import values

VOLATILE = {"computed_at", "run_id"}


def _stable(rows):
    return sorted(tuple((k, v) for k, v in r.items() if k not in VOLATILE) for r in rows)


def _fill_month(sources):
    """A small but varied January 2026: signups, sessions, plans changing, payments, refunds."""
    sources.insert("users", *({"id": f"u{i}", "created_at": f"2026-01-{1 + i % 28:02d} {i % 24:02d}:00:00",
                               "platform": ("ios", "android", "web")[i % 3]} for i in range(40)))
    sources.insert("user_sessions", *({"user_id": f"u{i % 40}", "started_at": f"2026-01-{1 + i % 31:02d} 10:{i % 60:02d}:00",
                                       "ended_at": None if i % 7 == 0 else f"2026-01-{1 + i % 31:02d} 11:00:00.5"}
                                      for i in range(200)))
    sources.insert("subscriptions",
                   {"id": "s1", "user_id": "u1", "started_at": "2026-01-02 09:00:00", "ended_at": "2026-01-12 00:00:00"},
                   {"id": "s2", "user_id": "u1", "plan": "vip_annual", "billing_interval": "year", "price_cents": 14999,
                    "started_at": "2026-01-12 00:00:00"},
                   {"id": "s3", "user_id": "u2", "started_at": "2026-01-03 00:00:00", "trial_ends_at": "2026-01-10 00:00:00",
                    "ended_at": "2026-01-20 00:00:00"},
                   {"id": "s4", "user_id": "u2", "started_at": "2026-01-25 00:00:00"})
    sources.insert("payments", *({"user_id": f"u{i}", "amount_cents": 999 + i, "fee_cents": 150,
                                  "created_at": f"2026-01-{1 + i % 31:02d} 12:00:00",
                                  "status": ("succeeded", "failed", "refunded")[i % 3],
                                  "refunded_at": f"2026-01-{2 + i % 29:02d} 12:00:00" if i % 3 == 2 else None}
                                 for i in range(30)))


def test_rematerializing_replaces_rows_identically(sources, materialize):
    _fill_month(sources)
    assert materialize(sources, "day", "2026-01-01", "2026-01-31").success
    first = sources.warehouse().metric_rows()
    assert materialize(sources, "day", "2026-01-01", "2026-01-31").success
    again = sources.warehouse().metric_rows()
    assert len(again) == len(first) > 0
    assert _stable(again) == _stable(first)
    assert len({r["run_id"] for r in again}) == 1  # every row rewritten by the second run


def test_single_run_range_equals_one_run_per_partition(sources, materialize):
    _fill_month(sources)
    assert materialize(sources, "day", "2026-01-01", "2026-01-10").success
    ranged = sources.warehouse().metric_rows(grain="day")
    with sources.warehouse().begin() as conn:
        conn.execute(metric_values.delete())
    for day in range(1, 11):
        assert materialize(sources, "day", f"2026-01-{day:02d}").success
    assert _stable(sources.warehouse().metric_rows(grain="day")) == _stable(ranged)


def test_weekly_and_monthly_ranges(sources, materialize):
    _fill_month(sources)
    assert materialize(sources, "week", "2026-01-05", "2026-01-19").success
    assert materialize(sources, "month", "2026-01-01").success
    assert set(values(sources, "sessions", "week")) == {"2026-01-05", "2026-01-12", "2026-01-19"}
    assert values(sources, "sessions", "month") == {"2026-01-01": 200}
    # additive metrics agree whichever grain computes them
    assert materialize(sources, "day", "2026-01-01", "2026-01-31").success
    assert sum(values(sources, "sessions", "day").values()) == 200


def check_only(sources, asset_name, check_name, key):
    """Run just one daily check (no materialization) for one partition; its evaluation."""
    check_key = dg.AssetCheckKey(dg.AssetKey(asset_name), check_name)
    job = sources.defs().resolve_job_def("daily_metrics_job").get_subset(
        asset_selection=set(), asset_check_selection={check_key})
    result = job.execute_in_process(partition_key=key, instance=dg.DagsterInstance.ephemeral(),
                                    raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def _identity_check_only(sources, key):
    return check_only(sources, METRIC_ASSETS[("revenue", "day")].key.to_user_string(), "mrr_identity", key)


def test_mrr_identity_check_fails_on_corrupted_movements(sources, materialize):
    _fill_month(sources)
    run = materialize(sources, "day", "2026-01-10", "2026-01-12")
    assert run.success and not run.failed_checks
    assert _identity_check_only(sources, "2026-01-12").passed
    with sources.warehouse().begin() as conn:
        conn.execute(metric_values.update()
                     .where(metric_values.c.metric == "mrr_expansion", metric_values.c.period_start == "2026-01-12",
                            metric_values.c.dimension == "")
                     .values(value=metric_values.c.value + 0.01))
    evaluation = _identity_check_only(sources, "2026-01-12")
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failed_partitions"].value == ["2026-01-12"]
    assert evaluation.metadata["severity"].value == "critical"


def test_invalid_source_rows_are_reported_not_counted(sources, materialize):
    sources.insert("payments",
                   {"id": "ok", "amount_cents": 500, "created_at": "2026-01-05 10:00:00"},
                   {"id": "eur", "amount_cents": 700, "currency": "EUR", "created_at": "2026-01-05 11:00:00"},
                   {"id": "neg", "amount_cents": -5, "created_at": "2026-01-05 12:00:00"})
    run = materialize(sources, "day", "2026-01-05")
    assert run.success  # a WARN check, not a crash
    assert values(sources, "gross_revenue", "day") == {"2026-01-05": 5.0}


@pytest.mark.parametrize("name, at, key, job", [
    ("hourly_metrics_schedule", dt.datetime(2026, 3, 10, 13, 5), "2026-03-10-12:00", "hourly_metrics_job"),
    ("daily_metrics_schedule", dt.datetime(2026, 3, 10, 1, 0), "2026-03-09", "daily_metrics_job"),
    ("weekly_metrics_schedule", dt.datetime(2026, 3, 9, 2, 0), "2026-03-02", "weekly_metrics_job"),  # a Monday
    ("monthly_metrics_schedule", dt.datetime(2026, 3, 1, 4, 0), "2026-02-01", "monthly_metrics_job"),
])
def test_each_grain_schedule_requests_its_last_closed_period_once(name, at, key, job):
    schedule = defs.resolve_schedule_def(name)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING and schedule.job_name == job
    context = dg.build_schedule_context(scheduled_execution_time=at.replace(tzinfo=dt.timezone.utc),
                                        repository_def=defs.get_repository_def())
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == key
    assert request.run_key.endswith(key)  # a tick that runs again asks for the same run key: never run twice
    assert request.tags["trigger"] == "schedule"


def test_default_crons_and_overrides(monkeypatch):
    from metrics_pipeline.settings import ConfigError, schedule_cron

    assert [defs.resolve_schedule_def(f"{a}_metrics_schedule").cron_schedule
            for a in ("hourly", "daily", "weekly", "monthly")] == ["5 * * * *", "0 1 * * *", "0 2 * * 1", "0 4 1 * *"]
    monkeypatch.setenv("METRICS_DAILY_CRON", "30 3 * * *")
    assert schedule_cron("day") == "30 3 * * *"
    monkeypatch.setenv("METRICS_WEEKLY_CRON", "every monday")
    with pytest.raises(ConfigError, match="METRICS_WEEKLY_CRON='every monday' is not a valid cron"):
        schedule_cron("week")


def test_last_closed_periods_across_dst_in_new_york():
    from metrics_pipeline.metrics.periods import last_closed, partition_key

    tz = "America/New_York"  # 2026-03-08: 02:00 EST jumps to 03:00 EDT
    day = last_closed("day", dt.datetime(2026, 3, 9, 5, 0, tzinfo=dt.timezone.utc), tz)  # 01:00 EDT on the 9th
    assert (day.key, day.start_utc, day.end_utc) == ("2026-03-08", dt.datetime(2026, 3, 8, 5), dt.datetime(2026, 3, 9, 4))
    hour = last_closed("hour", dt.datetime(2026, 3, 8, 7, 5, tzinfo=dt.timezone.utc), tz)  # 03:05 EDT
    assert partition_key(hour) == "2026-03-08-01:00" and hour.end_utc - hour.start_utc == dt.timedelta(hours=1)
    week = last_closed("week", dt.datetime(2026, 3, 9, 6, 0, tzinfo=dt.timezone.utc), tz)  # Monday 02:00 EDT
    assert week.key == "2026-03-02" and week.end_utc - week.start_utc == dt.timedelta(days=7, hours=-1)


def test_lineage_is_exactly_what_each_asset_reads():
    graph = defs.resolve_asset_graph()
    for (domain_name, grain), asset in METRIC_ASSETS.items():
        domain = next(d for d in DOMAINS if d.name == domain_name)
        deps = graph.get(asset.key).parent_keys
        assert deps == {source_key(t) for t in domain.tables_for(grain)}, asset.key
        assert all(TABLES[t].database == domain.database for t in domain.tables_for(grain))


DWM = {"day", "week", "month"}
# METRICS.md, section by section: metric -> grains (cohort and funnel summary rows come with their tables)
CATALOGUE = {
    **{m: {"hour", *DWM} for m in ("new_users", "active_users")},
    **{m: DWM for m in ("sessions", "avg_session_duration_seconds", "swipes", "matches", "video_calls",
                        "video_call_minutes")},
    "stickiness": {"month"}, **{f"retention_d{k}": {"day"} for k in (1, 7, 30)}, "events": {"hour", "day"},
    **{m: DWM for m in ("gross_revenue", "store_fees", "refunds", "net_revenue", "failed_payments",
                        "new_subscriptions", "canceled_subscriptions", "trial_conversions", "mrr", "arr",
                        "active_subscribers", "mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction",
                        "mrr_churned", "arpu")},
    **{m: {"week", "month"} for m in ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate")},
    "net_revenue_retention": {"month"}, "clv": {"month"},
    **{m: DWM for m in ("ai_requests", "ai_tokens", "ai_cost", "ai_success_rate", "ai_latency_p95_ms")},
    **{m: DWM for m in ("messages_total", "messages_sent", "messages_delivered", "messages_read",
                        "messages_failed", "messages_replied", "delivery_rate", "read_rate", "reply_rate",
                        "failure_rate", "campaigns_started", "campaigns_completed", "campaigns_failed",
                        "campaign_recipients", "new_contacts", "blocked_contacts", "total_contacts",
                        "active_contacts", "conversations_opened", "conversations_closed", "open_conversations",
                        "avg_first_response_seconds")},
    **{m: DWM for m in ("posts_created", "posts_published", "post_views", "post_likes", "post_comments",
                        "post_shares", "engagement_rate", "ad_spend", "ad_impressions", "ad_clicks",
                        "ad_conversions", "ctr", "cpc", "cpa")},
    **{m: DWM for m in ("blended_cac", "roas", "matches_per_active_user")},
    "retention_w1": {"week"}, "retention_w4": {"week"}, "funnel_conversion": {"day"},
}


@pytest.mark.parametrize("grain", ["hour", "day", "week", "month"])
def test_every_catalogue_metric_is_produced_by_exactly_one_asset(grain):
    produced = [m.name for m in all_metrics() if grain in m.grains]
    assert len(produced) == len(set(produced))
    assert set(produced) == {m for m, grains in CATALOGUE.items() if grain in grains}


def test_single_run_backfill_policy_and_tags():
    for (domain_name, grain), asset in METRIC_ASSETS.items():
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        spec = next(iter(asset.specs))
        assert spec.tags["grain"] == grain and spec.tags["domain"] == domain_name
        assert spec.group_name == domain_name


def test_source_assets_grouped_by_database():
    graph = defs.resolve_asset_graph()
    sources = {key for key in graph.get_all_asset_keys() if len(key.path) == 2}
    assert sources == {source_key(t) for t in TABLES}
    assert all(graph.get(k).group_name == f"{k.path[0]}_source" and graph.get(k).is_observable for k in sources)


def test_observing_sources_reports_row_count_and_watermark(sources):
    sources.insert("users", {"created_at": "2026-01-05 10:00:00", "updated_at": "2026-01-05 10:00:00"},
                   {"created_at": "2026-01-05 11:00:00", "updated_at": "2026-01-09 08:30:00.250000"})
    instance = dg.DagsterInstance.ephemeral()
    job = sources.defs().resolve_job_def("observe_sources_job")
    assert job.execute_in_process(instance=instance).success
    event = instance.fetch_observations(source_key("users"), limit=1).records[0].asset_observation
    assert event.metadata["row_count"].value == 2
    assert event.metadata["newest_updated_at"].value.startswith("2026-01-09 08:30:00.25")


def test_range_runs_put_each_partitions_values_on_its_materialization(sources):
    from metrics_pipeline.runner import run_range

    sources.insert("users", {"created_at": "2026-01-05 10:00:00"}, {"created_at": "2026-01-06 10:00:00"},
                   {"created_at": "2026-01-06 11:00:00"})
    instance = dg.DagsterInstance.ephemeral()
    assert run_range(sources.defs(), "day", ["2026-01-05", "2026-01-06"], instance).success
    records = instance.fetch_materializations(dg.AssetKey("daily_activity_metrics"), limit=10).records
    plotted = {r.partition_key: r.asset_materialization.metadata["new_users"].value for r in records}
    assert plotted == {"2026-01-05": 1.0, "2026-01-06": 2.0}
    assert instance.fetch_observations(dg.AssetKey("daily_activity_metrics"), limit=10).records == []


# Ticks of each schedule as the daemon computes them (dagster's cron iterator in METRICS_TIMEZONE),
# across both 2026 DST changes in New York, and the partition each tick requests. Partitions are cut
# at import, so this runs in a process whose METRICS_TIMEZONE is America/New_York.
_DST_TICKS = """
import datetime as dt, json
import dagster as dg
from dagster._utils.schedules import cron_string_iterator
from metrics_pipeline.definitions import defs

def ticks(name, first, count):
    schedule = defs.resolve_schedule_def(name)
    start = dt.datetime.fromisoformat(first).timestamp()
    out = []
    for at, _ in zip(cron_string_iterator(start, schedule.cron_schedule, schedule.execution_timezone), range(count)):
        context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=defs.get_repository_def())
        (request,) = schedule.evaluate_tick(context).run_requests
        out.append([at.astimezone(dt.timezone.utc).strftime("%m-%d %H:%M"), request.partition_key, request.run_key])
    return out

print(json.dumps({
    "daily_spring": ticks("daily_metrics_schedule", "2026-03-07T00:00:00+00:00", 3),
    "daily_fall": ticks("daily_metrics_schedule", "2026-10-31T00:00:00+00:00", 3),
    "hourly_spring": ticks("hourly_metrics_schedule", "2026-03-08T05:00:00+00:00", 3),
    "weekly_spring": ticks("weekly_metrics_schedule", "2026-03-02T00:00:00+00:00", 2),
    "monthly_fall": ticks("monthly_metrics_schedule", "2026-10-01T12:00:00+00:00", 2),
}))
"""


def test_schedules_tick_once_per_closed_period_across_dst_in_new_york(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "METRICS_TIMEZONE": "America/New_York", "METRICS_START_DATE": "2026-01-01",
           "METRICS_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _DST_TICKS], env=env, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # 01:00 local is 06:00 UTC in EST and 05:00 UTC in EDT; each day requested once, none skipped
    assert got["daily_spring"] == [["03-07 06:00", "2026-03-06", "day:2026-03-06"],
                                   ["03-08 06:00", "2026-03-07", "day:2026-03-07"],
                                   ["03-09 05:00", "2026-03-08", "day:2026-03-08"]]  # the 23-hour day
    assert got["daily_fall"] == [["10-31 05:00", "2026-10-30", "day:2026-10-30"],
                                 ["11-01 06:00", "2026-10-31", "day:2026-10-31"],  # 01:00 occurs twice: one tick
                                 ["11-02 06:00", "2026-11-01", "day:2026-11-01"]]  # the 25-hour day
    # 02:05 does not exist on 2026-03-08: the 01:00 hour is requested at 03:05 EDT, nothing skipped
    assert got["hourly_spring"] == [["03-08 05:05", "2026-03-07-23:00", "hour:2026-03-07-23:00"],
                                    ["03-08 06:05", "2026-03-08-00:00", "hour:2026-03-08-00:00"],
                                    ["03-08 07:05", "2026-03-08-01:00", "hour:2026-03-08-01:00"]]
    assert got["weekly_spring"] == [["03-02 07:00", "2026-02-23", "week:2026-02-23"],
                                    ["03-09 06:00", "2026-03-02", "week:2026-03-02"]]  # the 167-hour week
    assert got["monthly_fall"] == [["11-01 09:00", "2026-10-01", "month:2026-10-01"],
                                   ["12-01 09:00", "2026-11-01", "month:2026-11-01"]]
