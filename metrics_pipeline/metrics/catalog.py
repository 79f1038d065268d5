"""The metric catalogue: every domain, and lookups by metric name. Start here to find a metric."""

from __future__ import annotations

from metrics_pipeline.metrics.activity import ACTIVITY
from metrics_pipeline.metrics.ai import AI
from metrics_pipeline.metrics.cohorts import SUMMARY_METRICS
from metrics_pipeline.metrics.funnel import SUMMARY_METRIC as FUNNEL_METRIC
from metrics_pipeline.metrics.derived import DERIVED
from metrics_pipeline.metrics.interactions import INTERACTIONS
from metrics_pipeline.metrics.marketing import MARKETING
from metrics_pipeline.metrics.messaging import MESSAGING
from metrics_pipeline.metrics.revenue import REVENUE
from metrics_pipeline.metrics.spec import Domain, MetricDef

DOMAINS: tuple[Domain, ...] = (ACTIVITY, INTERACTIONS, REVENUE, AI, MESSAGING, MARKETING)


def all_metrics() -> list[MetricDef]:
    """Every metric written to metric_values, including the cohort and funnel summary rows."""
    return [*(m for d in DOMAINS for m in d.definitions), *DERIVED, *SUMMARY_METRICS, FUNNEL_METRIC]


def metric(name: str) -> MetricDef:
    for m in all_metrics():
        if m.name == name:
            return m
    raise KeyError(f"unknown metric {name!r}")


def domain_of(name: str) -> Domain:
    return next(d for d in DOMAINS if any(m.name == name for m in d.definitions))
