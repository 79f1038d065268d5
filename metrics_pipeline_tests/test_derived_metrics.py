"""Cross-source metrics: exact ratios of other assets' totals, true lineage, loud on missing inputs."""

from __future__ import annotations

import dagster as dg
import pytest

from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.definitions import defs
from metrics_pipeline_tests.conftest import values


def _ad(date: str, spend_cents: int, channel: str = "meta_ads") -> dict:
    return {"date": date, "channel": channel, "campaign_id": f"c-{date}-{channel}", "spend_cents": spend_cents,
            "impressions": 100, "clicks": 10, "conversions": 1, "updated_at": f"{date} 23:00:00"}


def test_blended_cac_roas_and_matches_per_active_user(sources, materialize):
    sources.insert("ad_spend_daily", _ad("2026-01-05", 3000), _ad("2026-01-05", 1500, "google_ads"),
                   _ad("2026-01-06", 999))
    sources.insert("users", *({"created_at": "2026-01-05 09:00:00"} for _ in range(3)))
    sources.insert("payments", {"amount_cents": 9000, "created_at": "2026-01-05 10:00:00"},
                   {"amount_cents": 500, "created_at": "2026-01-06 10:00:00", "status": "refunded",
                    "refunded_at": "2026-01-07 00:00:00"})
    sources.insert("user_sessions", *({"user_id": u, "started_at": "2026-01-05 12:00:00"} for u in ("a", "b", "b", "c")))
    sources.insert("matches", *({"created_at": "2026-01-05 13:00:00"} for _ in range(6)))
    assert materialize(sources, "day", "2026-01-05", "2026-01-07").success
    # 2026-01-05: spend (3000 + 1500) / 100 = 45.00 USD; 3 new users; gross 90.00; 6 matches; 3 active users
    assert values(sources, "blended_cac", "day") == {"2026-01-05": 15.0, "2026-01-06": None, "2026-01-07": None}
    assert values(sources, "roas", "day") == {"2026-01-05": 2.0, "2026-01-06": pytest.approx(5.0 / 9.99),
                                              "2026-01-07": None}
    assert values(sources, "matches_per_active_user", "day")["2026-01-05"] == 2.0
    (row,) = [r for r in sources.warehouse().metric_rows(["blended_cac"], "day") if r["period_start"] == "2026-01-05"]
    assert (row["numerator"], row["denominator"], row["source"]) == (45.0, 3.0, "derived")
    # the week is divided from the week's own totals, not averaged from days
    assert materialize(sources, "week", "2026-01-05").success
    assert values(sources, "blended_cac", "week") == {"2026-01-05": pytest.approx(54.99 / 3)}


def test_derived_asset_fails_loudly_when_an_upstream_period_is_missing(sources):
    job = sources.defs().resolve_job_def("daily_metrics_job").get_subset(
        asset_selection={DERIVED_ASSETS["day"].key})
    result = job.execute_in_process(partition_key="2026-01-05", instance=dg.DagsterInstance.ephemeral(),
                                    raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "missing from metric_values" in error.message and "ad_spend@2026-01-05" in error.message


def test_derived_lineage_points_at_the_assets_divided():
    graph = defs.resolve_asset_graph()
    for grain, asset in DERIVED_ASSETS.items():
        expected = {METRIC_ASSETS[(d, grain)].key for d in ("activity", "interactions", "revenue", "marketing")}
        assert graph.get(asset.key).parent_keys == expected
