"""Tables the pipeline writes in the warehouse. `metric_values` is the contract (METRICS.md)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Money and rates need 8-byte floats: PostgreSQL `real` would lose cents.
Double = sa.Float(precision=53)

metric_values = sa.Table(
    "metric_values",
    metadata,
    sa.Column("metric", sa.String(64), primary_key=True, comment="catalogue name, snake_case"),
    sa.Column("grain", sa.String(8), primary_key=True, comment="hour, day, week or month"),
    sa.Column("period_start", sa.String(19), primary_key=True,
              comment="period start in METRICS_TIMEZONE: YYYY-MM-DD, or YYYY-MM-DD HH:MM:SS for hours"),
    sa.Column("dimension", sa.String(64), primary_key=True, comment="'' for the total, else the breakdown"),
    sa.Column("dimension_value", sa.String(255), primary_key=True, comment="'' for the total; NULL -> 'unknown'"),
    sa.Column("period_end", sa.String(19), nullable=False, comment="exclusive end, same format as period_start"),
    sa.Column("value", Double, comment="USD, fraction 0..1, seconds or a count; NULL for 0/0"),
    sa.Column("numerator", Double, comment="for ratio metrics, the sum value divides"),
    sa.Column("denominator", Double, comment="for ratio metrics, the sum value divides by"),
    sa.Column("source", sa.String(32), nullable=False, comment="source database, or 'derived'"),
    sa.Column("asset", sa.String(128), comment="Dagster asset that wrote the row"),
    sa.Column("computed_at", sa.DateTime, nullable=False, comment="UTC time the row was written"),
    sa.Column("run_id", sa.String(64), comment="Dagster run that wrote the row"),
    sa.Index("ix_metric_values_grain_period", "grain", "period_start"),
)
