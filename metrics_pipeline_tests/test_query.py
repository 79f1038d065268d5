"""`metrics-pipeline query`: latest, roll-up of additive metrics, growth, dimension filter, formats."""

from __future__ import annotations

import json

import pytest

from metrics_pipeline import cli
from metrics_pipeline.metrics.catalog import metric
from metrics_pipeline.metrics.spec import MetricRow
from metrics_pipeline.query import latest, rollup, with_growth
from metrics_pipeline.resources import Warehouse
from metrics_pipeline.settings import ConfigError


def _row(name, start, end, value, grain="day", dim="", dim_value=""):
    return {"metric": name, "grain": grain, "period_start": start, "period_end": end, "dimension": dim,
            "dimension_value": dim_value, "value": value}


DAYS = [_row("sessions", "2026-01-30", "2026-01-31", 2.0), _row("sessions", "2026-01-31", "2026-02-01", 3.0),
        _row("sessions", "2026-02-01", "2026-02-02", 5.0)]


def test_rollup_sums_additive_metrics_into_coarser_periods():
    months = rollup(DAYS, metric("sessions"), "month")
    assert [(r["period_start"], r["period_end"], r["value"]) for r in months] == [
        ("2026-01-01", "2026-02-01", 5.0), ("2026-02-01", "2026-03-01", 5.0)]
    weeks = rollup(DAYS, metric("sessions"), "week")  # Fri 01-30, Sat 01-31, Sun 02-01: all in the week of 01-26
    assert [(r["period_start"], r["period_end"], r["value"]) for r in weeks] == [("2026-01-26", "2026-02-02", 10.0)]


@pytest.mark.parametrize("name", ["active_users", "mrr", "delivery_rate"])
def test_rollup_refuses_distinct_counts_balances_and_ratios(name):
    with pytest.raises(ConfigError, match="not additive"):
        rollup([_row(name, "2026-01-01", "2026-01-02", 1.0)], metric(name), "week")


def test_growth_against_the_previous_period():
    rows = with_growth([*DAYS, _row("sessions", "2026-02-03", "2026-02-04", 4.0)])
    assert [(r["previous"], r["growth"]) for r in rows] == [
        (None, None), (2.0, 0.5), (3.0, pytest.approx(2 / 3)), (None, None)]  # 02-02 missing -> NULL
    zero = with_growth([_row("x", "2026-01-01", "2026-01-02", 0.0), _row("x", "2026-01-02", "2026-01-03", 4.0)])
    assert zero[1]["growth"] is None  # previous 0 -> NULL
    assert latest(rows) == [rows[-1]]


def test_cli_query_formats_and_filters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("METRICS_WAREHOUSE_URL", f"sqlite:///{tmp_path}/warehouse.db")
    from metrics_pipeline.metrics.periods import periods_between
    import datetime as dt

    periods = periods_between("day", dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 3), "UTC")
    rows = [MetricRow("new_users", "day", p.key, p.end_key, dim, val, v)
            for p, base in zip(periods, (10, 20)) for dim, val, v in
            (("", "", base), ("platform", "ios", base - 4), ("platform", "web", 4))]
    Warehouse(url=f"sqlite:///{tmp_path}/warehouse.db").replace_metric_rows(
        rows, grain="day", metrics=["new_users"], periods=periods, source="app", asset="t", run_id="r")
    assert cli.main(["query", "--metric", "new_users", "--grain", "day", "--dimension", "platform",
                     "--value", "ios", "--growth", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["period_start"], r["value"], r["growth"]) for r in out] == [
        ("2026-01-01", 6.0, None), ("2026-01-02", 16.0, pytest.approx(10 / 6))]
    assert cli.main(["query", "--metric", "new_users", "--latest", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "new_users,day,2026-01-02,2026-01-03,,,20.0"
    assert cli.main(["query", "--metric", "new_users", "--grain", "day", "--rollup", "month"]) == 0
    assert "30" in capsys.readouterr().out
    assert cli.main(["query", "--metric", "stickiness", "--grain", "day"]) == 2
    assert "stickiness has no grain 'day'" in capsys.readouterr().err
