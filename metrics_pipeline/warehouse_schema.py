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


def _bookkeeping() -> list[sa.Column]:
    return [sa.Column("computed_at", sa.DateTime, nullable=False, comment="UTC time the row was written"),
            sa.Column("run_id", sa.String(64), comment="Dagster run that wrote the row")]


retention_cohorts = sa.Table(
    "retention_cohorts",
    metadata,
    sa.Column("cohort_week", sa.String(10), primary_key=True, comment="Monday of the signup week (ISO week)"),
    sa.Column("period_number", sa.Integer, primary_key=True, comment="weeks since the cohort week, 0..12"),
    sa.Column("measured_week", sa.String(10), nullable=False, comment="cohort_week + period_number weeks"),
    sa.Column("cohort_size", sa.Integer, nullable=False, comment="users created in the cohort week"),
    sa.Column("users_returned", sa.Integer, nullable=False, comment="cohort users with a session in the measured week"),
    sa.Column("retention_rate", Double, comment="users_returned / cohort_size"),
    *_bookkeeping(),
    sa.Index("ix_retention_cohorts_measured", "measured_week"),
)

conversion_funnel = sa.Table(
    "conversion_funnel",
    metadata,
    sa.Column("cohort_date", sa.String(10), primary_key=True, comment="day of the actors' first app_open"),
    sa.Column("step_index", sa.Integer, primary_key=True, comment="1..8 in funnel order"),
    sa.Column("step", sa.String(32), nullable=False, comment="the step's event name"),
    sa.Column("actors", sa.Integer, nullable=False, comment="cohort actors who reached the step within 14 days"),
    sa.Column("conversion_from_start", Double, comment="actors / actors of step 1"),
    sa.Column("conversion_from_previous", Double, comment="actors / actors of the previous step"),
    sa.Column("is_final", sa.Boolean, nullable=False, comment="the cohort's 14-day window has closed"),
    *_bookkeeping(),
)

daily_kpi_summary = sa.Table(
    "daily_kpi_summary",
    metadata,
    sa.Column("date", sa.String(10), primary_key=True, comment="the day, in METRICS_TIMEZONE"),
    *(sa.Column(name, Double, comment=f"total `{name}` of the day (metric_values)")
      for name in ("active_users", "new_users", "sessions", "avg_session_duration_seconds", "matches",
                   "messages_total", "gross_revenue", "net_revenue", "mrr", "new_subscriptions",
                   "canceled_subscriptions", "retention_d1", "retention_d7", "retention_d30", "ad_spend",
                   "blended_cac")),
    *_bookkeeping(),
)

analytics_snapshots = sa.Table(
    "analytics_snapshots",
    metadata,
    sa.Column("grain", sa.String(8), primary_key=True),
    sa.Column("period_start", sa.String(19), primary_key=True),
    sa.Column("period_end", sa.String(19), nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False,
              comment="JSON: {domain: {metric: {value, previous, growth}}} of the period's totals"),
    *_bookkeeping(),
)

data_quality_alerts = sa.Table(
    "data_quality_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_key", sa.String(512), nullable=False, unique=True,
              comment="what makes two detections the same problem: type, check, asset, partition, table, column, rule"),
    sa.Column("alert_type", sa.String(32), nullable=False,
              comment="missing_data, data_spike, data_drop, schema_change, invalid_data, invariant_violation, "
                      "freshness, pipeline_failure"),
    sa.Column("severity", sa.String(8), nullable=False, comment="low, medium, high or critical"),
    sa.Column("asset", sa.String(128)),
    sa.Column("check_name", sa.String(128)),
    sa.Column("partition_key", sa.String(32)),
    sa.Column("period_start", sa.String(19)),
    sa.Column("period_end", sa.String(19)),
    sa.Column("source_table", sa.String(64)),
    sa.Column("column_name", sa.String(64)),
    sa.Column("metric", sa.String(64)),
    sa.Column("dimension", sa.String(64)),
    sa.Column("threshold", Double),
    sa.Column("actual_value", Double),
    sa.Column("expected_value", Double),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(64), comment="run of the latest detection"),
    sa.Column("detected_at", sa.DateTime, nullable=False, comment="first detection (UTC)"),
    sa.Column("last_detected_at", sa.DateTime, nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False, comment="detections so far"),
    sa.Column("is_resolved", sa.Boolean, nullable=False),
    sa.Column("resolved_at", sa.DateTime),
    sa.Column("notified_at", sa.DateTime, comment="when the webhook received it (NULL: not yet, or re-opened)"),
    sa.Column("notify_attempts", sa.Integer, comment="failed webhook deliveries so far"),
    sa.Column("notify_error", sa.Text, comment="why the last delivery failed"),
    sa.Index("ix_dq_alerts_scope", "check_name", "asset", "partition_key"),
)

source_schema_snapshots = sa.Table(
    "source_schema_snapshots",
    metadata,
    sa.Column("database", sa.String(32), primary_key=True, comment="app, interactions, messaging or marketing"),
    sa.Column("table_name", sa.String(64), primary_key=True),
    sa.Column("column_name", sa.String(64), primary_key=True),
    sa.Column("data_type", sa.String(64), nullable=False, comment="the column's type as the database reports it"),
    sa.Column("computed_at", sa.DateTime, nullable=False, comment="UTC time of the snapshot"),
    comment="The last seen columns of every source table, to detect schema changes against.",
)
