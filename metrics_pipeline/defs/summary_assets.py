"""Summary assets built from `metric_values` totals: `daily_kpi_summary` and `<grain>_analytics_snapshots`.

The logic lives in `metrics.summaries`; these assets read the window's totals, call it, and replace the
window's rows of their table in one transaction. Their deps are exactly the assets whose totals they
read, so lineage in the UI is true.
"""

import json

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.defs import beta
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.execution import FOLLOW_UPSTREAM, retry_transient
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS, OWNERS, table_schema, window_periods
from metrics_pipeline.metrics.catalog import domain_of
from metrics_pipeline.metrics.derived import DERIVED
from metrics_pipeline.metrics.periods import Period
from metrics_pipeline.metrics.summaries import (
    KPI_METRICS, kpi_rows, previous_period, snapshot_domains, snapshot_rows,
)
from metrics_pipeline.partitions import GRAIN_ADJECTIVE, PARTITIONS
from metrics_pipeline.warehouse_schema import analytics_snapshots, daily_kpi_summary

GROUP = "summaries"
SNAPSHOT_GRAINS = ("day", "week", "month")
_DERIVED_NAMES = {d.name for d in DERIVED}


def upstream_of(metric: str, grain: str) -> dg.AssetsDefinition:
    """The asset that writes `metric`'s rows at `grain`."""
    if metric in _DERIVED_NAMES:
        return DERIVED_ASSETS[grain]
    return METRIC_ASSETS[(domain_of(metric).name, grain)]


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "NULL"
    return f"{value:+.1%}" if pct else f"{value:,.4g}"


def _window_metadata(rows: list[dict], periods: list[Period]) -> dict:
    return {
        "rows_written": dg.MetadataValue.int(len(rows)),
        "periods": dg.MetadataValue.int(len(periods)),
        "first_period": periods[0].key,
        "last_period": periods[-1].key,
    }


# ---- daily_kpi_summary ---------------------------------------------------------------------------

KPI_UPSTREAM = sorted({upstream_of(m, "day").key for m in KPI_METRICS}, key=str)


def kpi_metadata(rows: list[dict], periods: list[Period]) -> dict:
    """Row count; for a single day the headline numbers as floats (the UI plots them across partitions)."""
    meta = _window_metadata(rows, periods)
    if len(periods) == 1 and rows:
        meta.update({m: dg.MetadataValue.float(rows[0][m]) for m in KPI_METRICS if rows[0][m] is not None})
    if rows:
        last = rows[-1]
        meta["preview"] = dg.MetadataValue.md("\n".join(
            [f"| metric | {last['date']} |", "|---|---|", *(f"| {m} | {_fmt(last[m])} |" for m in KPI_METRICS)]))
    return meta


@beta.asset(
    name="daily_kpi_summary",
    description="\n".join([
        "The company's headline numbers, one wide row per day in `daily_kpi_summary`: the table an analyst "
        "or a BI dashboard reads to answer 'how did yesterday go?' without pivoting `metric_values`.", "",
        "Columns (each the day's overall total of the metric of the same name in `metric_values`):",
        ", ".join(f"`{m}`" for m in KPI_METRICS) + ".", "",
        "Re-materializing a day replaces its row in one transaction. Fails, writing nothing, when an input "
        "total is missing (its upstream asset has not materialized that day).",
    ]),
    partitions_def=PARTITIONS["day"],
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=KPI_UPSTREAM,
    group_name=GROUP,
    kinds={"sql"},
    owners=OWNERS,
    tags={"grain": "day", "domain": GROUP},
    metadata={"metrics": ", ".join(KPI_METRICS), "dagster/column_schema": table_schema(daily_kpi_summary),
              "dagster/table_name": "daily_kpi_summary"},
    required_resource_keys={"warehouse"},
    automation_condition=FOLLOW_UPSTREAM,
)
@retry_transient
def daily_kpi_summary_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    periods = window_periods(context, "day")
    warehouse = context.resources.warehouse
    totals = warehouse.totals(KPI_METRICS, "day", periods[0].key, periods[-1].end_key)
    rows = kpi_rows(periods, totals)
    t = daily_kpi_summary.c
    written = warehouse.replace_rows(
        daily_kpi_summary, sa.and_(t.date >= periods[0].key, t.date < periods[-1].end_key),
        [r | {"run_id": context.run.run_id} for r in rows], lock="day")
    context.log.info(f"daily_kpi_summary: replaced {written} row(s) for {periods[0].key} .. {periods[-1].key}")
    return dg.MaterializeResult(metadata=kpi_metadata(rows, periods))


# ---- <grain>_analytics_snapshots -------------------------------------------------------------------

def snapshot_metadata(rows: list[dict], periods: list[Period], domains: dict[str, str]) -> dict:
    """Row count and metric count; for a single period the headline values and growths as floats."""
    meta = _window_metadata(rows, periods)
    meta["metrics"] = dg.MetadataValue.int(len(domains))
    if not rows:
        return meta
    doc = json.loads(rows[-1]["snapshot"])
    headline = [(domains[m], m) for m in KPI_METRICS if m in domains]
    if len(periods) == 1:
        for domain, m in headline:
            entry = doc[domain][m]
            if entry["value"] is not None:
                meta[m] = dg.MetadataValue.float(entry["value"])
            if entry["growth"] is not None:
                meta[f"{m}_growth"] = dg.MetadataValue.float(entry["growth"])
    meta["preview"] = dg.MetadataValue.md("\n".join([
        f"| metric ({rows[-1]['period_start']}) | value | previous | growth |", "|---|---|---|---|",
        *(f"| {m} | {_fmt(doc[d][m]['value'])} | {_fmt(doc[d][m]['previous'])} | "
          f"{_fmt(doc[d][m]['growth'], pct=True)} |" for d, m in headline)]))
    return meta


def build_snapshot_asset(grain: str) -> dg.AssetsDefinition:
    adjective = GRAIN_ADJECTIVE[grain]
    name = f"{adjective}_analytics_snapshots"
    domains = snapshot_domains(grain)
    upstream = [a for (_, g), a in METRIC_ASSETS.items() if g == grain] + [DERIVED_ASSETS[grain]]
    domain_names = sorted(set(domains.values()))

    @beta.asset(
        name=name,
        description="\n".join([
            f"One row per {grain} in `analytics_snapshots` (grain `{grain}`): a JSON document of every "
            f"{adjective} metric total, grouped by domain, with its growth against the previous {grain}, "
            f"so a report can say 'up 12% on last {grain}' without querying history.", "",
            '`{domain: {metric: {"value": v, "previous": p, "growth": (v - p) / p}}}`; growth is null when '
            f"the previous {grain} is 0 or not materialized, or the value is null. Domains: "
            + ", ".join(f"`{d}`" for d in domain_names) + ".", "",
            f"Re-materializing a {grain} replaces its row in one transaction. Fails, writing nothing, when a "
            f"total of the {grain} itself is missing.",
        ]),
        partitions_def=PARTITIONS[grain],
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=sorted((a.key for a in upstream), key=str),
        group_name=GROUP,
        kinds={"sql"},
        owners=OWNERS,
        tags={"grain": grain, "domain": GROUP},
        metadata={"domains": ", ".join(domain_names),
                  "dagster/column_schema": table_schema(analytics_snapshots),
                  "dagster/table_name": "analytics_snapshots"},
        required_resource_keys={"warehouse"},
        automation_condition=FOLLOW_UPSTREAM,
    )
    @retry_transient
    def _snapshots(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        periods = window_periods(context, grain)
        warehouse = context.resources.warehouse
        # the window's totals plus the period before it (the previous of the window's first period)
        totals = warehouse.totals(domains, grain, previous_period(periods[0]).key, periods[-1].end_key)
        rows = snapshot_rows(periods, totals, domains)
        s = analytics_snapshots.c
        written = warehouse.replace_rows(
            analytics_snapshots,
            sa.and_(s.grain == grain, s.period_start >= periods[0].key, s.period_start < periods[-1].end_key),
            [r | {"run_id": context.run.run_id} for r in rows], lock=grain)
        context.log.info(f"{name}: replaced {written} row(s) for {periods[0].key} .. {periods[-1].key}")
        return dg.MaterializeResult(metadata=snapshot_metadata(rows, periods, domains))

    return _snapshots


SNAPSHOT_ASSETS = {grain: build_snapshot_asset(grain) for grain in SNAPSHOT_GRAINS}

SUMMARY_ASSETS: dict[str, list[dg.AssetsDefinition]] = {
    "day": [daily_kpi_summary_asset, SNAPSHOT_ASSETS["day"]],
    "week": [SNAPSHOT_ASSETS["week"]],
    "month": [SNAPSHOT_ASSETS["month"]],
}

__all__ = ["SNAPSHOT_ASSETS", "SUMMARY_ASSETS", "daily_kpi_summary_asset", "table_schema"]
