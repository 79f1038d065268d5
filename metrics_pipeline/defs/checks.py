"""Asset checks on the metric assets. Each evaluates every partition of the run's window and names
the failing partitions in its metadata (a single-run backfill runs a check once for the range).

Severity follows the project's four alert levels, mapped onto Dagster's WARN/ERROR.
"""

from collections import defaultdict

import dagster as dg

from metrics_pipeline.alerts import Alert

from metrics_pipeline.contract import TABLES
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS, window_periods
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.metrics.catalog import DOMAINS
from metrics_pipeline.metrics.periods import Period, partition_key
from metrics_pipeline.metrics.revenue import CENT, MOVEMENTS, mrr_at, mrr_identity_breaks
from metrics_pipeline.metrics.spec import Domain
from metrics_pipeline.metrics.validity import invalid_rows_by_period
from metrics_pipeline.partitions import PARTITIONS

DAGSTER_SEVERITY = {"low": dg.AssetCheckSeverity.WARN, "medium": dg.AssetCheckSeverity.WARN,
                    "high": dg.AssetCheckSeverity.ERROR, "critical": dg.AssetCheckSeverity.ERROR}
MAX_LISTED = 20


def store_alerts(context: dg.AssetCheckExecutionContext, periods: list[Period], alerts: list[Alert]) -> None:
    """Record what this check found in `data_quality_alerts` (whatever launched the run: CLI, UI,
    schedule); open alerts of its partitions that were not found again are resolved."""
    check_key = context.check_specs[0].key
    counts = context.resources.warehouse.record_check_alerts(
        alerts, asset=check_key.asset_key.to_user_string(), check_name=check_key.name,
        partition_keys=[partition_key(p) for p in periods], run_id=context.run.run_id)
    context.log.info(f"{check_key.name}: alerts {counts}")


def _result(passed: bool, severity: str, description: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=passed, severity=DAGSTER_SEVERITY[severity], description=description,
        metadata={"severity": severity, **metadata})


def build_mrr_identity_check(grain: str) -> dg.AssetChecksDefinition:
    asset = METRIC_ASSETS[("revenue", grain)]

    @dg.asset_check(
        asset=asset, name="mrr_identity", blocking=True, partitions_def=PARTITIONS[grain],
        required_resource_keys={resource_key("app"), "warehouse"},
        description="mrr(end) = mrr(start) + new + reactivation + expansion - contraction - churned, to the "
                    "cent, for every partition; MRR at start is recomputed from `app.subscriptions`. Blocking: "
                    "a break means the movements are wrong and must not spread downstream.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        periods = window_periods(context, grain)
        with getattr(context.resources, resource_key("app")).connect(["subscriptions"]) as conn:
            start_mrr = mrr_at(conn, periods, "start")
        totals: dict[str, dict] = defaultdict(dict)
        for r in context.resources.warehouse.metric_rows(
                ("mrr", *MOVEMENTS), grain, periods[0].key, periods[-1].end_key, dimension=""):
            totals[r["period_start"]][r["metric"]] = r["value"]
        breaks = mrr_identity_breaks(totals, start_mrr)
        by_key = {period.key: period for period in periods}
        store_alerts(context, periods, [
            Alert("invariant_violation", "critical", partition_key=partition_key(by_key[b["period"]]),
                  period_start=b["period"], period_end=by_key[b["period"]].end_key, metric="mrr",
                  actual_value=b.get("mrr_end"), expected_value=b.get("start_plus_movements"), threshold=CENT,
                  message=f"MRR identity broken for {grain} {b['period']}: " + (
                      b["problem"] if "problem" in b else
                      f"mrr(end) {b['mrr_end']} != mrr(start) {b['mrr_start']} + movements = "
                      f"{b['start_plus_movements']} (difference {b['difference']})"))
            for b in breaks])
        return _result(
            not breaks, "critical",
            f"MRR identity holds for all {len(periods)} partition(s)" if not breaks else
            f"MRR identity broken in {len(breaks)} of {len(periods)} partition(s)",
            partitions_checked=len(periods),
            failed_partitions=dg.MetadataValue.json([b["period"] for b in breaks][:MAX_LISTED]),
            breaks=dg.MetadataValue.json(breaks[:MAX_LISTED]),
        )

    return _check


def _time_columns(domain: Domain, grain: str, table: str) -> list[str]:
    used = sorted({s.time for s in domain.specs if s.table == table and grain in s.grains})
    return used or [next(c.name for c in TABLES[table].columns if c.kind == "ts")]


def build_valid_rows_check(domain: Domain, grain: str) -> dg.AssetChecksDefinition:
    asset = METRIC_ASSETS[(domain.name, grain)]
    tables = domain.tables_for(grain)

    @dg.asset_check(
        asset=asset, name="source_rows_valid", partitions_def=PARTITIONS[grain],
        required_resource_keys={resource_key(domain.database), "warehouse"},
        description="Source rows of the window that break the contract (NULL in a required column, unknown "
                    "enum value, negative amount, non-USD currency). They are left out of every metric; this "
                    "check names table, rule and row ids so they can be fixed at the source.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        periods = window_periods(context, grain)
        found = []
        with getattr(context.resources, resource_key(domain.database)).connect(tables) as conn:
            for name in tables:
                found += invalid_rows_by_period(conn, TABLES[name], _time_columns(domain, grain, name), periods)
        by_key = {period.key: period for period in periods}
        store_alerts(context, periods, [
            Alert("invalid_data", "medium", partition_key=partition_key(by_key[v.period]), period_start=v.period,
                  period_end=by_key[v.period].end_key, source_table=v.table, column_name=v.column, rule=v.rule,
                  actual_value=v.rows, threshold=0,
                  message=f"{v.table}: {v.rows} row(s) of {grain} {v.period} where {v.message} "
                          f"(ids {', '.join(v.sample_ids)}); left out of every metric")
            for v in found])
        bad_rows = sum(v.rows for v in found)
        return _result(
            not found, "medium",
            "All source rows of the window follow the contract" if not found else
            "; ".join(f"{v.table} {v.period}: {v.rows} row(s) where {v.message} (e.g. {', '.join(v.sample_ids)})"
                      for v in found[:MAX_LISTED]),
            invalid_rows=bad_rows,
            violations=dg.MetadataValue.json([v.__dict__ | {"sample_ids": list(v.sample_ids)} for v in found]),
        )

    return _check


ASSET_CHECKS = [
    *(build_mrr_identity_check(g) for g in next(d for d in DOMAINS if d.name == "revenue").grains),
    *(build_valid_rows_check(d, g) for d in DOMAINS for g in d.grains),
]
