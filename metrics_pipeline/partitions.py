"""The project's partitions: hourly, daily, weekly (ISO weeks, Monday) and monthly.

All start at METRICS_START_DATE and cut periods in METRICS_TIMEZONE. Only closed periods exist as
partitions (no end offset), so nothing ever materializes a period that is still running.
"""

from __future__ import annotations

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
