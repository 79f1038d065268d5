"""Asset checks on the metric assets. Each evaluates every partition of the run's window and names
the failing partitions in its metadata (a single-run backfill runs a check once for the range), and
stores what it found in `data_quality_alerts` whatever launched the run.

| check | on | finds | alert type | blocking |
|---|---|---|---|---|
| `metric_integrity` | every asset writing metric_values | NULL/duplicate keys, negative amounts, rates > 1, week/month != sum of days | invariant_violation | yes |
| `mrr_identity` | revenue assets | MRR identity broken to the cent | invariant_violation | yes |
| `source_expectations` | daily domain assets | source rows failing their Great Expectations suite | invalid_data | no |
| `source_volume` | daily domain assets | source rows or a dimension value absent against history | missing_data | no |
| `metric_anomalies` | daily and weekly domain assets | spikes and drops of headline totals | data_spike, data_drop | no |

Severity follows the project's four alert levels, mapped onto Dagster's WARN/ERROR.
"""


from collections import defaultdict

import dagster as dg

from metrics_pipeline.defs import beta
from metrics_pipeline.alerts import SEVERITIES, Alert
from metrics_pipeline.defs.cohort_assets import daily_conversion_funnel, weekly_retention_cohorts
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.execution import retry_transient, source_pool
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS, window_periods
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.defs.source_scans import EXPECTATIONS, GAPS, scan_result
from metrics_pipeline.instance_storage import log_evaluations
from metrics_pipeline.metrics import cohorts, funnel
from metrics_pipeline.metrics.catalog import DOMAINS
from metrics_pipeline.metrics.derived import DERIVED
from metrics_pipeline.metrics.periods import Period, partition_key, with_history
from metrics_pipeline.metrics.revenue import CENT, MOVEMENTS, mrr_at, mrr_identity_breaks
from metrics_pipeline.metrics.spec import Domain, MetricDef
from metrics_pipeline.partitions import PARTITIONS
from metrics_pipeline.quality import anomaly, integrity

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
    if len(periods) > 1 and periods[0].grain != "hour":
        log_partition_results(context, periods, alerts)


def log_partition_results(context: dg.AssetCheckExecutionContext, periods: list[Period], alerts: list[Alert]) -> None:
    """One evaluation per partition of a range run, passed unless the partition has alerts.

    Dagster runs a check once for a whole single-run range and records that result against no
    partition, so the UI would show every partition's check as skipped; these give each its own.
    Hourly ranges are left out: thousands of evaluations for partitions nobody inspects one by one;
    the range result lists their failures. Only blocking checks give a partition an error: whether
    the run failed is the range result's to say.
    """
    spec = context.check_specs[0]
    by_partition: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        by_partition[a.partition_key].append(a)
    evaluations = []
    for period in periods:
        key = partition_key(period)
        found = by_partition.get(key, [])
        worst = max((a.severity for a in found), key=SEVERITIES.index, default="low")
        severity = DAGSTER_SEVERITY[worst] if spec.blocking else dg.AssetCheckSeverity.WARN
        evaluations.append(dg.AssetCheckEvaluation(
            asset_key=spec.asset_key, check_name=spec.name, passed=not found, partition=key,
            severity=severity, blocking=spec.blocking,
            description=f"{len(found)} alert(s): " + "; ".join(a.message for a in found[:3]) if found else "passed",
            metadata={"severity": worst if found else "none", "alerts": len(found)}))
    log_evaluations(context, evaluations)


def _result(passed: bool, severity: str, description: str, **metadata) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=passed, severity=DAGSTER_SEVERITY[severity], description=description,
        metadata={"severity": severity, **metadata})


def _alert(kind: str, severity: str, period: Period, message: str, **fields) -> Alert:
    return Alert(kind, severity, message, partition_key(period), period_start=period.key,
                 period_end=period.end_key, **fields)


def _failed_partitions(alerts: list[Alert]) -> dg.MetadataValue:
    return dg.MetadataValue.json(sorted({a.partition_key for a in alerts})[:MAX_LISTED])


# ---- integrity of what the assets wrote -----------------------------------------------------------

def build_integrity_check(asset: dg.AssetsDefinition, metrics: list[MetricDef], grain: str) -> dg.AssetChecksDefinition:
    @beta.asset_check(
        asset=asset, name="metric_integrity", blocking=True, partitions_def=PARTITIONS[grain],
        required_resource_keys={"warehouse"},
        description="The rows written to `metric_values` are sound: required keys present, the unique key "
                    "unique, counts and money not negative, bounded rates within [0, 1], weekly and monthly "
                    "additive metrics equal to the sum of their days. Blocking: wrong numbers must not spread.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        periods = window_periods(context, grain)
        with context.resources.warehouse.engine.connect() as conn:
            found = integrity.violations(conn, metrics, grain, periods)
        by_key = {p.key: p for p in periods}
        alerts = [_alert("invariant_violation", "critical", by_key.get(v.period, periods[0]), v.message,
                         metric=v.metric, dimension=v.dimension, rule=v.rule, actual_value=v.actual,
                         expected_value=v.expected) for v in found]
        store_alerts(context, periods, alerts)
        return _result(not found, "critical",
                       f"All {len(periods)} partition(s) sound" if not found else
                       f"{len(found)} integrity violation(s): " + "; ".join(v.message for v in found[:5]),
                       partitions_checked=len(periods), failed_partitions=_failed_partitions(alerts),
                       violations=dg.MetadataValue.json([v.__dict__ for v in found[:MAX_LISTED]]))

    return _check


def build_mrr_identity_check(grain: str) -> dg.AssetChecksDefinition:
    asset = METRIC_ASSETS[("revenue", grain)]

    @beta.asset_check(
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
            _alert("invariant_violation", "critical", by_key[b["period"]], metric="mrr",
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


# ---- the source rows behind a day ------------------------------------------------------------------

def _daily_source_check(domain: Domain, name: str, description: str):
    """The decorator of a check on a domain's daily asset that reads the domain's source database
    (in that database's pool, transient errors retried)."""
    check = beta.asset_check(asset=METRIC_ASSETS[(domain.name, "day")], name=name, partitions_def=PARTITIONS["day"],
                           required_resource_keys={resource_key(domain.database), "warehouse"},
                           description=description, pool=source_pool(domain.database))
    return lambda compute: check(retry_transient(compute))


def build_expectations_check(domain: Domain) -> dg.AssetChecksDefinition:
    tables = domain.tables_for("day")

    @_daily_source_check(
        domain, "source_expectations",
        f"Great Expectations suites over each day's rows of {', '.join(tables)}: required columns not "
        "NULL, enumerated values known, amounts and counters not negative, currency 'USD', ended_at "
        "not before started_at, references resolving. Failing rows are left out of every metric; "
        "alerts name table, column, expectation, bad rows and sample ids.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        periods = window_periods(context, "day")
        failures, summary = scan_result(context, EXPECTATIONS, domain, periods)
        by_key = {p.key: p for p in periods}
        alerts = [_alert("invalid_data", "medium", by_key[f.period],
                         f"{f.table}: {f.rows} row(s) of day {f.period} fail {f.expectation} ({f.requirement}; "
                         f"ids {', '.join(f.sample_ids)}); left out of every metric",
                         source_table=f.table, column_name=f.column, rule=f.expectation, actual_value=f.rows,
                         threshold=0) for f in failures]
        store_alerts(context, periods, alerts)
        return _result(
            not failures, "medium",
            "Every source row of the window meets its expectations" if not failures else
            "; ".join(a.message for a in alerts[:MAX_LISTED]),
            invalid_rows=sum(f.rows for f in failures), failed_partitions=_failed_partitions(alerts),
            tables=dg.MetadataValue.json(summary),
            failures=dg.MetadataValue.json([f.__dict__ | {"sample_ids": list(f.sample_ids)}
                                            for f in failures[:MAX_LISTED]]))

    return _check


def build_volume_check(domain: Domain) -> dg.AssetChecksDefinition:
    tables = domain.tables_for("day")

    @_daily_source_check(
        domain, "source_volume",
        f"Days whose rows of {', '.join(tables)} are absent, or lack a platform, channel or other "
        "breakdown value, where the previous week always had plenty (missing_data).",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        periods = window_periods(context, "day")
        gaps = scan_result(context, GAPS, domain, periods)
        by_key = {p.key: p for p in periods}
        alerts = [_alert(
            "missing_data", "high" if g.column is None else "medium", by_key[g.period],
            f"{g.table}: no rows on {g.period}" + ("" if g.column is None else f" with {g.column} = '{g.value}'")
            + f", where each of the previous 7 days had at least {g.expected:,.0f}",
            source_table=g.table, column_name=g.column, dimension=None if g.column is None else f"{g.column}={g.value}",
            actual_value=0, expected_value=g.expected) for g in gaps]
        store_alerts(context, periods, alerts)
        return _result(not gaps, "high" if any(g.column is None for g in gaps) else "medium",
                       "Every day has the rows its history promises" if not gaps else
                       "; ".join(a.message for a in alerts[:MAX_LISTED]),
                       failed_partitions=_failed_partitions(alerts),
                       gaps=dg.MetadataValue.json([g.__dict__ for g in gaps[:MAX_LISTED]]))

    return _check


# ---- spikes and drops of the headline values --------------------------------------------------------

def metric_tables(domain: Domain) -> dict[str, set[str]]:
    """{metric: source tables it reads} of a domain (formulas read all of them)."""
    out = {s.name: {s.table} for s in domain.specs}
    for c in domain.custom:
        out.update({m.name: set(c.tables) for m in c.metrics})
    every = {t for tables in out.values() for t in tables}
    return {m.name: out.get(m.name, every) for m in domain.definitions}


def _series(rows: list[dict], keys: list[str], metric: MetricDef) -> list[anomaly.Observation | None]:
    by_period = {r["period_start"]: r for r in rows if r["value"] is not None}
    return [None if k not in by_period else anomaly.Observation(
        by_period[k]["value"], by_period[k]["denominator"] if metric.kind == "ratio" else None,
        is_count=metric.kind in ("additive", "distinct")) for k in keys]


def build_anomaly_check(domain: Domain, grain: str) -> dg.AssetChecksDefinition:
    metrics = domain.metrics_for(grain)
    reads = metric_tables(domain)

    @beta.asset_check(
        asset=METRIC_ASSETS[(domain.name, grain)], name="metric_anomalies", partitions_def=PARTITIONS[grain],
        required_resource_keys={resource_key(domain.database), "warehouse"},
        description="Spikes and drops of every total of this asset against prior "
                    + ("same weekdays (day-of-week seasonality)" if grain == "day" else "weeks")
                    + "; parameters per metric in metrics_pipeline/quality/anomaly.py and METRICS_ANOMALY_RULES. "
                      "Days whose source rows are missing are reported as missing_data instead.",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        periods = window_periods(context, grain)
        rules = {m.name: anomaly.rule_for(m.name, grain) for m in metrics}
        history = max(anomaly.history_needed(rule, grain) for rule in rules.values())
        every = with_history(periods, history)
        keys = [p.key for p in every]
        explained: set[tuple[str, str]] = set()
        if grain == "day":
            explained = {(g.period, g.table) for g in scan_result(context, GAPS, domain, periods)}
        rows: dict[str, list[dict]] = defaultdict(list)
        for r in context.resources.warehouse.metric_rows([m.name for m in metrics], grain, keys[0],
                                                         periods[-1].end_key, dimension=""):
            rows[r["metric"]].append(r)
        alerts, scored = [], 0
        for m in metrics:
            series = _series(rows[m.name], keys, m)
            rule = rules[m.name]
            for i in range(history, len(every)):
                if any((keys[i], t) in explained for t in reads[m.name]):
                    continue
                scored += 1
                found = anomaly.score(series, i, rule, grain)
                if found:
                    alerts.append(_alert(
                        found.kind, "high" if abs(found.change) >= 0.5 else "medium", every[i],
                        anomaly.sentence(m.name, grain, keys[i], found), metric=m.name,
                        actual_value=found.value, expected_value=found.expected, threshold=rule.sensitivity))
        store_alerts(context, periods, alerts)
        return _result(not alerts, "medium",
                       f"No spike or drop in {scored} scored value(s)" if not alerts else
                       "; ".join(a.message for a in alerts[:MAX_LISTED]),
                       values_scored=scored, failed_partitions=_failed_partitions(alerts),
                       anomalies=dg.MetadataValue.json([a.record() for a in alerts[:MAX_LISTED]]))

    return _check


ASSET_CHECKS = [
    *(build_integrity_check(asset, d.metrics_for(g), g) for d in DOMAINS for g in d.grains
      if (asset := METRIC_ASSETS[(d.name, g)])),
    *(build_integrity_check(asset, [m for m in DERIVED if g in m.grains], g) for g, asset in DERIVED_ASSETS.items()),
    build_integrity_check(weekly_retention_cohorts, list(cohorts.SUMMARY_METRICS), "week"),
    build_integrity_check(daily_conversion_funnel, [funnel.SUMMARY_METRIC], "day"),
    *(build_mrr_identity_check(g) for g in next(d for d in DOMAINS if d.name == "revenue").grains),
    *(build_expectations_check(d) for d in DOMAINS if "day" in d.grains),
    *(build_volume_check(d) for d in DOMAINS if "day" in d.grains),
    *(build_anomaly_check(d, g) for d in DOMAINS for g in ("day", "week") if g in d.grains),
]
