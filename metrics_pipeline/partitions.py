"""The project's partitions: hourly, daily, weekly (ISO weeks, Monday) and monthly.

All start at METRICS_START_DATE and cut periods in METRICS_TIMEZONE. Only closed periods exist as
partitions (no end offset), so nothing ever materializes a period that is still running.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from metrics_pipeline.settings import partition_settings

GRAINS = ("hour", "day", "week", "month")

_settings = partition_settings()
_start = _settings.start.isoformat()
_tz = _settings.timezone

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=f"{_start}-00:00", timezone=_tz)
daily_partitions = dg.DailyPartitionsDefinition(start_date=_start, timezone=_tz)
# day_offset=1: weeks start on Monday (ISO), not Dagster's default Sunday.
weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=_start, day_offset=1, timezone=_tz)
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=_start, timezone=_tz)

PARTITIONS: dict[str, dg.TimeWindowPartitionsDefinition] = {
    "hour": hourly_partitions,
    "day": daily_partitions,
    "week": weekly_partitions,
    "month": monthly_partitions,
}

GRAIN_ADJECTIVE = {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}


# How stale each grain's assets may get before the UI flags them: one schedule interval plus the
# time its run needs (schedules: hourly at :05, daily 01:00, weekly Monday 02:00, monthly 1st 04:00).
FRESHNESS = {
    "hour": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=2), warn_window=dt.timedelta(hours=1.5)),
    "day": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=27), warn_window=dt.timedelta(hours=25)),
    "week": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=7, hours=4),
                                           warn_window=dt.timedelta(days=7, hours=2)),
    "month": dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=31, hours=6),
                                            warn_window=dt.timedelta(days=31, hours=4)),
}
