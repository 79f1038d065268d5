"""Cross-source metrics: ratios of totals that other assets computed from different databases."""

from __future__ import annotations

from dataclasses import dataclass

from metrics_pipeline.metrics.periods import Period
from metrics_pipeline.metrics.spec import DAY_WEEK_MONTH, MetricDef, MetricRow, ratio_row


@dataclass(frozen=True)
class DerivedMetric(MetricDef):
    """value = total of `numerator` / total of `denominator`, both metrics of the same period."""

    numerator: str = ""
    denominator: str = ""


DERIVED = (
    DerivedMetric("blended_cac", DAY_WEEK_MONTH, "Blended customer acquisition cost: ad spend (USD) / new users.",
                  kind="ratio", numerator="ad_spend", denominator="new_users"),
    DerivedMetric("roas", DAY_WEEK_MONTH, "Return on ad spend: gross revenue / ad spend.",
                  kind="ratio", numerator="gross_revenue", denominator="ad_spend"),
    DerivedMetric("matches_per_active_user", DAY_WEEK_MONTH, "Matches / active users.",
                  kind="ratio", numerator="matches", denominator="active_users"),
)


class MissingInputError(LookupError):
    """An input total is not in the warehouse: its upstream asset has not materialized that period."""


def inputs(grain: str) -> list[str]:
    return sorted({name for d in DERIVED if grain in d.grains for name in (d.numerator, d.denominator)})


def derived_rows(grain: str, periods: list[Period], totals: dict[str, dict[str, float | None]]) -> list[MetricRow]:
    """Every derived metric of `grain` for `periods` from `totals[period_start][metric]`."""
    missing = [f"{name}@{p.key}" for p in periods for name in inputs(grain) if name not in totals.get(p.key, {})]
    if missing:
        raise MissingInputError(
            f"{len(missing)} input total(s) missing from metric_values (materialize the upstream assets first): "
            + ", ".join(missing[:10]))
    return [
        ratio_row(d.name, p, totals[p.key][d.numerator], totals[p.key][d.denominator])
        for p in periods for d in DERIVED if grain in d.grains
    ]
