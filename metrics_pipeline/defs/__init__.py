"""Dagster wiring: assets, checks, jobs, schedules and resources built from the pure modules."""
