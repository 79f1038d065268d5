"""`daily_kpi_summary` and `<grain>_analytics_snapshots`: hand-computed rows, growth, idempotency,
single-run ranges equal per-partition runs, loud failures on missing upstream totals, true lineage.

The pure logic (`metrics.summaries`) is tested without Dagster first; the assets then run on SQLite
and PostgreSQL (the `sources` fixture) inside their own Definitions (the summary assets plus every
metric and derived asset, one job per grain named like the project's jobs).
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
import sqlalchemy as sa

from metrics_pipeline.defs.automation import job_name
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.defs.resources import build_resources
from metrics_pipeline.defs.sources import SOURCE_ASSETS
from metrics_pipeline.defs.summary_assets import SNAPSHOT_ASSETS, SUMMARY_ASSETS, daily_kpi_summary_asset
from metrics_pipeline.metrics.catalog import DOMAINS
from metrics_pipeline.metrics.periods import make_period
from metrics_pipeline.metrics.summaries import (
    KPI_METRICS, MissingInputError, growth, kpi_rows, snapshot_document, snapshot_domains, snapshot_json,
    snapshot_rows,
)
from metrics_pipeline.partitions import PARTITIONS
from metrics_pipeline.runner import run_range
from metrics_pipeline.warehouse_schema import analytics_snapshots, daily_kpi_summary


def approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def day(key: str):
    return make_period("day", dt.datetime.fromisoformat(key), "UTC")


# ---------------------------------------------------------------------------------------------
# pure logic, no Dagster, no database


def test_growth_rules():
    assert growth(12.0, 10.0) == approx(0.2)
    assert growth(5.0, 10.0) == approx(-0.5)          # negative growth
    assert growth(5.0, 0.0) is None                   # previous 0
    assert growth(5.0, None) is None                  # previous missing / NULL
    assert growth(None, 10.0) is None                 # value NULL
    assert growth(0.0, 4.0) == -1.0


def test_kpi_rows_copy_day_totals_and_keep_nulls():
    totals = {"2026-01-05": {m: float(i) for i, m in enumerate(KPI_METRICS)}}
    totals["2026-01-05"]["retention_d30"] = None
    (r,) = kpi_rows([day("2026-01-05")], totals)
    assert list(r) == ["date", *KPI_METRICS]
    assert r["date"] == "2026-01-05" and r["active_users"] == 0.0 and r["blended_cac"] == float(len(KPI_METRICS) - 1)
    assert r["retention_d30"] is None


def test_kpi_rows_refuse_a_half_row_and_name_metric_and_day():
    totals = {"2026-01-05": {m: 1.0 for m in KPI_METRICS}, "2026-01-06": {m: 1.0 for m in KPI_METRICS}}
    del totals["2026-01-06"]["mrr"]
    with pytest.raises(MissingInputError, match=r"1 input total\(s\) missing.*mrr@2026-01-06"):
        kpi_rows([day("2026-01-05"), day("2026-01-06")], totals)


def test_snapshot_document_value_previous_growth():
    domains = {"new_users": "activity", "gross_revenue": "revenue", "messages_total": "messaging",
               "retention_d1": "activity", "blended_cac": "derived"}
    current = {"new_users": 3, "gross_revenue": 20.0, "messages_total": 3, "retention_d1": 0.5, "blended_cac": None}
    previous = {"new_users": 2, "gross_revenue": 50.0, "messages_total": 0, "blended_cac": 15.0}
    doc = snapshot_document(current, previous, domains)
    assert doc == {
        "activity": {"new_users": {"value": 3.0, "previous": 2.0, "growth": 0.5},
                     "retention_d1": {"value": 0.5, "previous": None, "growth": None}},   # previous missing
        "revenue": {"gross_revenue": {"value": 20.0, "previous": 50.0, "growth": approx(-0.6)}},  # negative
        "messaging": {"messages_total": {"value": 3.0, "previous": 0.0, "growth": None}},  # previous 0
        "derived": {"blended_cac": {"value": None, "previous": 15.0, "growth": None}},     # value NULL
    }
    # deterministic: sorted keys whatever the insertion order, no whitespace
    text = snapshot_json(doc)
    assert text == snapshot_json(dict(reversed(list(doc.items()))))
    assert text.startswith('{"activity":{"new_users":{"growth":0.5,"previous":2.0,"value":3.0}')


def test_snapshot_rows_take_previous_from_before_and_inside_the_window():
    domains = {"matches": "interactions"}
    totals = {"2026-01-04": {"matches": 4.0}, "2026-01-05": {"matches": 5.0}, "2026-01-06": {"matches": 10.0}}
    rows = snapshot_rows([day("2026-01-05"), day("2026-01-06")], totals, domains)
    assert [(r["grain"], r["period_start"], r["period_end"]) for r in rows] == [
        ("day", "2026-01-05", "2026-01-06"), ("day", "2026-01-06", "2026-01-07")]
    assert [json.loads(r["snapshot"])["interactions"]["matches"] for r in rows] == [
        {"value": 5.0, "previous": 4.0, "growth": 0.25}, {"value": 10.0, "previous": 5.0, "growth": 1.0}]
    # the window's own total missing: refuse, naming metric and day
    with pytest.raises(MissingInputError, match="matches@2026-01-07"):
        snapshot_rows([day("2026-01-07")], totals, domains)


def test_snapshot_domains_cover_every_catalogued_metric_of_the_grain():
    daily = snapshot_domains("day")
    assert set(daily.values()) == {d.name for d in DOMAINS} | {"derived"}
    assert daily["blended_cac"] == "derived" and daily["messages_total"] == "messaging"
    assert "retention_d1" in daily and "retention_d1" not in snapshot_domains("week")
    assert snapshot_domains("month")["stickiness"] == "activity"


# ---------------------------------------------------------------------------------------------
# Dagster wiring: lineage, groups, schema


def test_lineage_is_exactly_what_is_read():
    assets = [*SOURCE_ASSETS, *METRIC_ASSETS.values(), *DERIVED_ASSETS.values(),
              *(a for group in SUMMARY_ASSETS.values() for a in group)]
    graph = dg.Definitions(assets=assets, resources=build_resources()).resolve_asset_graph()
    kpi_parents = {METRIC_ASSETS[(d, "day")].key for d in ("activity", "interactions", "revenue", "messaging",
                                                            "marketing")} | {DERIVED_ASSETS["day"].key}
    assert graph.get(daily_kpi_summary_asset.key).parent_keys == kpi_parents
    for grain, asset in SNAPSHOT_ASSETS.items():
        expected = {a.key for (_, g), a in METRIC_ASSETS.items() if g == grain} | {DERIVED_ASSETS[grain].key}
        assert graph.get(asset.key).parent_keys == expected
    assert set(SUMMARY_ASSETS) == {"day", "week", "month"}
    for group in SUMMARY_ASSETS.values():
        for asset in group:
            spec = next(iter(asset.specs))
            assert spec.group_name == "summaries" and spec.tags["domain"] == "summaries"
            assert spec.owners and spec.description
            schema = spec.metadata["dagster/column_schema"]
            table = daily_kpi_summary if asset is daily_kpi_summary_asset else analytics_snapshots
            assert [c.name for c in schema.columns] == [c.name for c in table.columns]


# ---------------------------------------------------------------------------------------------
# assets on SQLite and PostgreSQL

SUMMARY_GRAINS = ("day", "week", "month")


def summary_defs(sources) -> dg.Definitions:
    """The metric, derived and summary assets, with one job per grain named like the project's jobs."""
    def of(grain):
        return ([a for (_, g), a in METRIC_ASSETS.items() if g == grain]
                + [DERIVED_ASSETS[grain], *SUMMARY_ASSETS[grain]])

    return dg.Definitions(
        assets=[*SOURCE_ASSETS, *METRIC_ASSETS.values(), *DERIVED_ASSETS.values(),
                *(a for group in SUMMARY_ASSETS.values() for a in group)],
        jobs=[dg.define_asset_job(job_name(g), selection=dg.AssetSelection.assets(*of(g)), tags={"grain": g})
              for g in SUMMARY_GRAINS],
        resources=sources.resources(),
    )


def run(defs, grain, first, last=None):
    keys = PARTITIONS[grain].get_partition_keys_in_range(dg.PartitionKeyRange(first, last or first))
    result = run_range(defs, grain, keys, dg.DagsterInstance.ephemeral())
    assert result.success, result.errors
    return result


def table_rows(sources, table: sa.Table, bookkeeping: bool = False) -> list[dict]:
    key = [c for c in table.primary_key.columns]
    with sources.warehouse().engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*key))]
    if not bookkeeping:
        rows = [{k: v for k, v in r.items() if k not in ("computed_at", "run_id")} for r in rows]
    return rows


def snapshots(sources, grain) -> dict[str, dict]:
    return {r["period_start"]: json.loads(r["snapshot"])
            for r in table_rows(sources, analytics_snapshots) if r["grain"] == grain}


def seed(sources):
    """Mon 2026-01-05 (D1) and Tue 2026-01-06 (D2), plus Tue 2026-01-13 in the next ISO week."""
    sources.insert("users", {"id": "u1", "created_at": "2026-01-05 09:00:00"},
                   {"id": "u2", "created_at": "2026-01-05 10:00:00"},
                   {"id": "u3", "created_at": "2026-01-06 08:00:00"},
                   {"id": "u4", "created_at": "2026-01-13 08:00:00"})
    sources.insert("user_sessions",
                   {"user_id": "u1", "started_at": "2026-01-05 10:00:00", "ended_at": "2026-01-05 10:10:00"},
                   {"user_id": "u2", "started_at": "2026-01-05 11:00:00", "ended_at": "2026-01-05 11:05:00"},
                   {"user_id": "u1", "started_at": "2026-01-06 12:00:00", "ended_at": "2026-01-06 12:20:00"},
                   {"user_id": "u3", "started_at": "2026-01-06 13:00:00", "ended_at": None},
                   {"user_id": "u3", "started_at": "2026-01-06 14:00:00", "ended_at": "2026-01-06 14:01:00"},
                   {"user_id": "u4", "started_at": "2026-01-13 09:00:00", "ended_at": "2026-01-13 09:00:30"})
    sources.insert("matches", *({"created_at": "2026-01-05 13:00:00"} for _ in range(4)),
                   {"created_at": "2026-01-06 13:00:00"})
    sources.insert("messages", *({"created_at": "2026-01-06 09:00:00"} for _ in range(3)))
    sources.insert("payments",
                   {"user_id": "u1", "amount_cents": 5000, "fee_cents": 500, "created_at": "2026-01-05 12:00:00"},
                   {"user_id": "u2", "amount_cents": 2000, "fee_cents": 0, "created_at": "2026-01-06 10:00:00"},
                   {"user_id": "u4", "amount_cents": 7500, "fee_cents": 0, "created_at": "2026-01-13 10:00:00"})
    sources.insert("subscriptions",
                   {"user_id": "u1", "plan": "premium_monthly", "billing_interval": "month", "price_cents": 1000,
                    "started_at": "2026-01-05 12:00:00"},
                   {"user_id": "u2", "plan": "premium_annual", "billing_interval": "year", "price_cents": 1000,
                    "started_at": "2026-01-06 09:00:00", "canceled_at": "2026-01-06 15:00:00"})
    sources.insert("ad_spend_daily", {"date": "2026-01-05", "channel": "meta_ads", "campaign_id": "c1",
                                      "spend_cents": 3000, "updated_at": "2026-01-05 23:00:00"})


# By hand (METRICS.md):
#   D1: new u1 u2 = 2; sessions 600 s + 300 s -> 2, avg 450, active 2; 4 matches; no message;
#       gross 50.00, net 50 - 5 fee = 45; s1 starts -> new_subscriptions 1, MRR at end 10.00;
#       retention cohorts (01-04, 12-29, 12-06) empty -> NULL; ad spend 30.00; blended CAC 30 / 2 = 15
#   D2: new u3 = 1; sessions 1200 s, open (no end), 60 s -> 3, avg (1200 + 60) / 2 = 630, active u1 u3 = 2;
#       1 match; 3 messages; gross = net = 20.00; s2 starts and is canceled (still paying): new 1,
#       canceled 1, MRR 10 + 10/12; retention_d1 = cohort D1 {u1, u2}, u1 back on D2 -> 0.5;
#       no ad spend -> 0, blended CAC 0 / 1 = 0
KPI_D1 = {"date": "2026-01-05", "active_users": 2, "new_users": 2, "sessions": 2,
          "avg_session_duration_seconds": 450, "matches": 4, "messages_total": 0, "gross_revenue": 50,
          "net_revenue": 45, "mrr": 10, "new_subscriptions": 1, "canceled_subscriptions": 0, "retention_d1": None,
          "retention_d7": None, "retention_d30": None, "ad_spend": 30, "blended_cac": 15}
KPI_D2 = {"date": "2026-01-06", "active_users": 2, "new_users": 1, "sessions": 3,
          "avg_session_duration_seconds": 630, "matches": 1, "messages_total": 3, "gross_revenue": 20,
          "net_revenue": 20, "mrr": approx(10 + 10 / 12), "new_subscriptions": 1, "canceled_subscriptions": 1,
          "retention_d1": 0.5, "retention_d7": None, "retention_d30": None, "ad_spend": 0, "blended_cac": 0}


def test_kpi_rows_and_daily_snapshots_hand_computed_idempotent_and_range_equals_partitions(sources):
    seed(sources)
    defs = summary_defs(sources)

    # one partition at a time, in order
    run(defs, "day", "2026-01-05")
    run(defs, "day", "2026-01-06")
    per_partition = (table_rows(sources, daily_kpi_summary), table_rows(sources, analytics_snapshots))
    assert per_partition[0] == [KPI_D1, KPI_D2]

    d1, d2 = snapshots(sources, "day")["2026-01-05"], snapshots(sources, "day")["2026-01-06"]
    assert set(d2) == {"activity", "interactions", "revenue", "ai", "messaging", "marketing", "derived"}
    assert {m for group in d2.values() for m in group} == set(snapshot_domains("day"))
    # D1's previous day was never materialized: previous and growth are null everywhere
    assert all(e["previous"] is None and e["growth"] is None for group in d1.values() for e in group.values())
    assert d2["activity"]["new_users"] == {"value": 1, "previous": 2, "growth": -0.5}
    assert d2["activity"]["sessions"] == {"value": 3, "previous": 2, "growth": 0.5}
    assert d2["activity"]["avg_session_duration_seconds"] == {"value": 630, "previous": 450, "growth": 0.4}
    assert d2["activity"]["retention_d1"] == {"value": 0.5, "previous": None, "growth": None}   # previous NULL
    assert d2["interactions"]["matches"] == {"value": 1, "previous": 4, "growth": -0.75}
    assert d2["messaging"]["messages_total"] == {"value": 3, "previous": 0, "growth": None}   # previous 0
    assert d2["revenue"]["gross_revenue"] == {"value": 20, "previous": 50, "growth": approx(-0.6)}
    assert d2["revenue"]["net_revenue"] == {"value": 20, "previous": 45, "growth": approx(-25 / 45)}
    assert d2["revenue"]["mrr"] == {"value": approx(10 + 10 / 12), "previous": 10, "growth": approx(1 / 12)}
    assert d2["marketing"]["ad_spend"] == {"value": 0, "previous": 30, "growth": -1}
    assert d2["derived"]["blended_cac"] == {"value": 0, "previous": 15, "growth": -1}
    assert d2["ai"]["ai_requests"] == {"value": 0, "previous": 0, "growth": None}
    raw = next(r["snapshot"] for r in table_rows(sources, analytics_snapshots) if r["period_start"] == "2026-01-06")
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))

    # the same two days as ONE run: identical rows
    first = table_rows(sources, daily_kpi_summary, bookkeeping=True)
    ranged = run(defs, "day", "2026-01-05", "2026-01-06")
    assert (table_rows(sources, daily_kpi_summary), table_rows(sources, analytics_snapshots)) == per_partition
    # and again: rows rewritten by the new run, never duplicated
    again = run(defs, "day", "2026-01-05", "2026-01-06")
    assert (table_rows(sources, daily_kpi_summary), table_rows(sources, analytics_snapshots)) == per_partition
    rewritten = table_rows(sources, daily_kpi_summary, bookkeeping=True)
    assert {r["run_id"] for r in first} != {ranged.run_id} and {r["run_id"] for r in rewritten} == {again.run_id}
    with sources.warehouse().engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(analytics_snapshots)).scalar_one() == 2


def test_weekly_snapshot_growth_against_the_previous_iso_week(sources):
    seed(sources)
    run(summary_defs(sources), "week", "2026-01-05", "2026-01-12")     # two weeks, one run
    w1, w2 = snapshots(sources, "week")["2026-01-05"], snapshots(sources, "week")["2026-01-12"]
    assert w1["activity"]["new_users"] == {"value": 3, "previous": None, "growth": None}
    # week 2: u4 only; 75.00 of payments; no message, no ad spend
    assert w2["activity"]["new_users"] == {"value": 1, "previous": 3, "growth": approx(-2 / 3)}
    assert w2["activity"]["active_users"] == {"value": 1, "previous": 3, "growth": approx(-2 / 3)}
    assert w2["revenue"]["gross_revenue"] == {"value": 75, "previous": 70, "growth": approx(5 / 70)}
    assert w2["messaging"]["messages_total"] == {"value": 0, "previous": 3, "growth": -1}
    assert w2["derived"]["blended_cac"] == {"value": 0, "previous": 10, "growth": -1}
    assert "retention_d1" not in w2["activity"]
    assert table_rows(sources, daily_kpi_summary) == []


def test_missing_upstream_totals_fail_clearly_and_write_nothing(sources):
    defs = summary_defs(sources)
    summary_only = defs.resolve_job_def(job_name("day")).get_subset(
        asset_selection={a.key for a in SUMMARY_ASSETS["day"]})

    # nothing upstream at all
    result = summary_only.execute_in_process(partition_key="2026-01-05", instance=dg.DagsterInstance.ephemeral(),
                                             raise_on_error=False)
    errors = step_errors(result)
    assert "missing from metric_values" in errors["daily_kpi_summary"]
    assert "active_users@2026-01-05" in errors["daily_kpi_summary"]
    assert "@2026-01-05" in errors["daily_analytics_snapshots"]

    # D1 fully materialized (its metadata shows the headline numbers), D2 never: a D1..D2 range writes
    # nothing, not even D1, and names D2
    seed(sources)
    day1 = defs.resolve_job_def(job_name("day")).execute_in_process(
        partition_key="2026-01-05", instance=dg.DagsterInstance.ephemeral())
    (kpi_meta,) = [m.metadata for m in day1.asset_materializations_for_node("daily_kpi_summary")]
    assert kpi_meta["rows_written"].value == 1 and kpi_meta["gross_revenue"].value == 50.0
    assert isinstance(kpi_meta["active_users"], dg.FloatMetadataValue) and "retention_d1" not in kpi_meta
    (snap_meta,) = [m.metadata for m in day1.asset_materializations_for_node("daily_analytics_snapshots")]
    assert snap_meta["rows_written"].value == 1 and snap_meta["mrr"].value == 10.0
    before = (table_rows(sources, daily_kpi_summary, True), table_rows(sources, analytics_snapshots, True))

    keys = ["2026-01-05", "2026-01-06"]
    ranged = run_range(dg.Definitions(assets=defs.assets, resources=sources.resources(), jobs=[
        dg.define_asset_job(job_name("day"), selection=dg.AssetSelection.assets(*SUMMARY_ASSETS["day"]))]),
        "day", keys, dg.DagsterInstance.ephemeral())
    assert not ranged.success
    kpi_error = next(e for e in ranged.errors if e.startswith("daily_kpi_summary"))
    assert "active_users@2026-01-06" in kpi_error and "@2026-01-05" not in kpi_error
    assert (table_rows(sources, daily_kpi_summary, True), table_rows(sources, analytics_snapshots, True)) == before


def step_errors(result) -> dict[str, str]:
    out = {}
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            out[event.step_key] = error.message
    return out
