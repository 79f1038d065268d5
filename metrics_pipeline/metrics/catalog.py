"""The metric catalogue: every domain, and lookups by metric name. Start here to find a metric."""

from __future__ import annotations

from metrics_pipeline.metrics.activity import ACTIVITY
from metrics_pipeline.metrics.interactions import INTERACTIONS
from metrics_pipeline.metrics.revenue import REVENUE
from metrics_pipeline.metrics.spec import Domain, MetricDef

DOMAINS: tuple[Domain, ...] = (ACTIVITY, INTERACTIONS, REVENUE)


def metric(name: str) -> MetricDef:
    for d in DOMAINS:
        for m in d.definitions:
            if m.name == name:
                return m
    raise KeyError(f"unknown metric {name!r}")


def domain_of(name: str) -> Domain:
    return next(d for d in DOMAINS if any(m.name == name for m in d.definitions))
