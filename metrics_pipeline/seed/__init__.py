"""Deterministic synthetic data for the four source databases (the demo and load-test generator)."""

from metrics_pipeline.seed.loader import seed_sources

__all__ = ["seed_sources"]
