"""Data-quality alerts: stored when checks evaluate, deduplicated on re-run, resolved when fixed."""

from __future__ import annotations

import json

import pytest

from metrics_pipeline import cli
from metrics_pipeline.alerts import Alert
from metrics_pipeline.warehouse_schema import metric_values


def _open(sources, **match):
    return [a for a in sources.warehouse().alerts(open_only=True)
            if all(a[k] == v for k, v in match.items())]


def test_contract_breaking_rows_raise_one_alert_per_rule_and_partition(sources, materialize):
    sources.insert("users", {"id": "u1", "created_at": "2026-01-01 10:00:00"})
    sources.insert("payments", *({"user_id": "u1"} | p for p in (
                   {"id": "ok", "amount_cents": 500, "created_at": "2026-01-05 10:00:00"},
                   {"id": "eur1", "amount_cents": 700, "currency": "EUR", "created_at": "2026-01-05 11:00:00"},
                   {"id": "eur2", "amount_cents": 900, "currency": "GBP", "created_at": "2026-01-06 09:00:00"},
                   {"id": "neg", "amount_cents": -5, "created_at": "2026-01-06 12:00:00"})))
    assert materialize(sources, "day", "2026-01-05", "2026-01-06").success
    alerts = _open(sources, alert_type="invalid_data")
    assert sorted((a["partition_key"], a["source_table"], a["column_name"], a["actual_value"]) for a in alerts) == [
        ("2026-01-05", "payments", "currency", 1), ("2026-01-06", "payments", "amount_cents", 1),
        ("2026-01-06", "payments", "currency", 1)]
    eur = next(a for a in alerts if a["partition_key"] == "2026-01-05")
    assert eur["severity"] == "medium" and eur["check_name"] == "source_expectations"
    assert eur["asset"] == "daily_revenue_metrics" and "eur1" in eur["message"] and "'USD'" in eur["message"]
    assert eur["period_start"] == "2026-01-05" and eur["period_end"] == "2026-01-06"

    # the same problem found again updates its row instead of adding one
    assert materialize(sources, "day", "2026-01-05", "2026-01-06").success
    again = _open(sources, alert_type="invalid_data")
    assert len(again) == 3 and {a["occurrences"] for a in again} == {2}

    # fixed at the source: re-materializing the partition resolves its alerts, and only its
    sources.execute("app", "UPDATE payments SET currency = 'USD' WHERE id = 'eur1'")
    assert materialize(sources, "day", "2026-01-05").success
    assert {a["partition_key"] for a in _open(sources, alert_type="invalid_data")} == {"2026-01-06"}
    resolved = [a for a in sources.warehouse().alerts() if a["is_resolved"]]
    assert [(a["partition_key"], a["column_name"]) for a in resolved] == [("2026-01-05", "currency")]
    assert resolved[0]["resolved_at"] is not None


def test_broken_mrr_identity_is_a_critical_invariant_alert(sources, materialize):
    from metrics_pipeline_tests.test_pipeline import _fill_month, _identity_check_only

    _fill_month(sources)
    assert materialize(sources, "day", "2026-01-12").success
    with sources.warehouse().begin() as conn:
        conn.execute(metric_values.update().where(metric_values.c.metric == "mrr_churned",
                                                  metric_values.c.dimension == "")
                     .values(value=metric_values.c.value + 1))
    assert not _identity_check_only(sources, "2026-01-12").passed
    (alert,) = _open(sources, alert_type="invariant_violation")
    assert (alert["severity"], alert["partition_key"], alert["metric"]) == ("critical", "2026-01-12", "mrr")
    assert "MRR identity broken for day 2026-01-12" in alert["message"]


def test_alert_rejects_unknown_type_or_severity():
    with pytest.raises(ValueError, match="unknown alert type"):
        Alert("oops", "low", "m", "2026-01-01")
    with pytest.raises(ValueError, match="unknown severity"):
        Alert("freshness", "urgent", "m", "2026-01-01")


def test_cli_lists_alerts_by_status_and_severity(tmp_path, monkeypatch, capsys):
    from metrics_pipeline.resources import Warehouse

    url = f"sqlite:///{tmp_path}/warehouse.db"
    monkeypatch.setenv("METRICS_WAREHOUSE_URL", url)
    warehouse = Warehouse(url=url)
    warehouse.record_check_alerts(
        [Alert("invalid_data", "medium", "2 bad rows", "2026-01-05", source_table="payments"),
         Alert("invariant_violation", "critical", "identity broken", "2026-01-06", metric="mrr")],
        asset="daily_revenue_metrics", check_name="some_check", partition_keys=["2026-01-05", "2026-01-06"],
        run_id="r1")
    assert cli.main(["alerts", "--open", "--severity", "high"]) == 0
    out = capsys.readouterr().out
    assert "1 alert(s) open at or above high" in out and "identity broken" in out and "2 bad rows" not in out
    assert cli.main(["alerts", "--format", "json"]) == 0
    assert {a["alert_type"] for a in json.loads(capsys.readouterr().out)} == {"invalid_data", "invariant_violation"}
