"""Matching and behaviour metrics from the `interactions` database."""

from __future__ import annotations

from metrics_pipeline.metrics.spec import DAY_WEEK_MONTH, Domain, MetricSpec, count, total

INTERACTIONS = Domain(
    name="interactions",
    database="interactions",
    description="How people use the product: swipes, matches, video calls and analytics events.",
    specs=(
        MetricSpec("swipes", DAY_WEEK_MONTH, "Swipes made in the period, by action.",
                   dims=("action",), table="swipes"),
        MetricSpec("matches", DAY_WEEK_MONTH, "Matches made in the period.", table="matches"),
        MetricSpec("video_calls", DAY_WEEK_MONTH, "Video calls started in the period.",
                   table="video_calls", time="started_at"),
        MetricSpec("video_call_minutes", DAY_WEEK_MONTH,
                   "Minutes of the video calls started in the period (live calls count 0 until they end).",
                   table="video_calls", time="started_at", measure=total("duration_seconds"), scale=60),
        MetricSpec("events", ("hour", "day"), "Product analytics events in the period.",
                   dims=("event_name", "platform"), table="events", time="event_time", measure=count()),
    ),
)
