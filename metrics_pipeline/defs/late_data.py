"""Late-arriving data: re-materialize exactly the closed partitions whose source rows changed.

`late_data_sensor` keeps each source table's newest `updated_at` in its cursor. Every tick it reads
only the rows changed since (an index range scan on `updated_at`), takes the days their timestamps
fall on (every timestamp column: a refund changes the day of `refunded_at`, not of `created_at`),
and requests, for each affected day within `METRICS_LATE_DATA_LOOKBACK_DAYS` (default 35), the day and the week
and month containing it, for the assets reading the changed tables and what is downstream of them.
The first tick only records the watermarks; nothing changed means nothing requested.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections import defaultdict

import dagster as dg
import sqlalchemy as sa

from metrics_pipeline.contract import DATABASES, TABLES, tables_of
from metrics_pipeline.defs.automation import JOBS, assets_of
from metrics_pipeline.defs.resources import resource_key
from metrics_pipeline.metrics.periods import last_closed, partition_key, period_containing
from metrics_pipeline.metrics.sqltime import naive_utc
from metrics_pipeline.partitions import PARTITIONS
from metrics_pipeline.resources.database import SourceNotSeededError
from metrics_pipeline.settings import LOOKBACK_ENV, late_data_interval_seconds, late_data_lookback_days, timezone_name


def changed_since(conn: sa.Connection, table: str, watermark: str | None) -> tuple[str | None, set[str]]:
    """(new watermark, UTC minutes 'YYYY-MM-DD HH:MM' of the changed rows' timestamps) of a table."""
    newest = conn.execute(sa.text(f"SELECT max(updated_at) FROM {table}")).scalar()
    newest = None if newest is None else str(naive_utc(newest))
    if watermark is None or newest is None or newest <= watermark:
        return newest or watermark, set()
    columns = [c for c in TABLES[table].columns if c.kind in ("ts", "date") and c.name != "updated_at"]
    minutes: set[str] = set()
    for c in columns:
        part = f"substr(CAST({c.name} AS TEXT), 1, {10 if c.kind == 'date' else 16})"
        rows = conn.execute(sa.text(f"SELECT DISTINCT {part} FROM {table} WHERE updated_at > :wm "
                                    f"AND {c.name} IS NOT NULL"), {"wm": watermark})
        minutes |= {r[0] if c.kind != "date" else f"{r[0]} date" for r in rows}
    return newest, minutes


def affected_days(minutes: set[str], tz: str) -> set[dt.date]:
    """Local days of UTC minutes ('... date' marks a DATE column, already a local calendar day)."""
    zone = zoneinfo.ZoneInfo(tz)
    days = set()
    for m in minutes:
        if m.endswith(" date"):
            days.add(dt.date.fromisoformat(m[:10]))
        else:
            utc = dt.datetime.fromisoformat(m).replace(tzinfo=dt.timezone.utc)
            days.add(utc.astimezone(zone).date())
    return days


def _readers(grain: str, tables: set[str]) -> list[dg.AssetKey]:
    """Assets of `grain` reading `tables` (directly), and everything downstream of them in the grain."""
    source_keys = {dg.AssetKey([TABLES[t].database, t]) for t in tables}
    chosen: set[dg.AssetKey] = set()
    for asset in assets_of(grain):  # dependency order
        deps = asset.asset_deps[asset.key]
        if deps & source_keys or deps & chosen:
            chosen.add(asset.key)
    return sorted(chosen, key=lambda k: k.to_user_string())


def run_requests(days_by_table: dict[str, set[dt.date]], now: dt.datetime, tz: str, lookback: float) -> list:
    """One run request per (grain, closed partition) touched, for the assets reading what changed."""
    grains = ("day", "week", "month")
    bounds = {g: (PARTITIONS[g].start.replace(tzinfo=None), last_closed(g, now, tz).start) for g in grains}
    tables_by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    oldest = (now.astimezone(zoneinfo.ZoneInfo(tz)) - dt.timedelta(days=lookback)).date()
    for table, days in days_by_table.items():
        for day in (d for d in days if d >= oldest):
            for grain in grains:
                period = period_containing(grain, dt.datetime.combine(day, dt.time()), tz)
                first, newest_closed = bounds[grain]
                if first <= period.start <= newest_closed:
                    tables_by_key[(grain, partition_key(period))].add(table)
    requests = []
    for (grain, key), tables in sorted(tables_by_key.items()):
        assets = _readers(grain, tables)
        if assets:
            requests.append(dg.RunRequest(
                run_key=f"late:{grain}:{key}:{','.join(sorted(tables))}:{now:%Y%m%dT%H%M}", job_name=JOBS[grain].name,
                partition_key=key, asset_selection=assets,
                tags={"grain": grain, "trigger": "late_data", "late_tables": ",".join(sorted(tables))}))
    return requests


@dg.sensor(
    minimum_interval_seconds=late_data_interval_seconds(), default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[JOBS[g] for g in ("day", "week", "month")],
    required_resource_keys={resource_key(db) for db in DATABASES},
    description="Re-materializes the closed day, week and month partitions whose source rows were inserted or "
                f"changed (updated_at past the watermark in the cursor), within {LOOKBACK_ENV} days (default 35).",
)
def late_data_sensor(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {}
    days_by_table: dict[str, set[dt.date]] = {}
    tz = timezone_name()
    for db in DATABASES:
        try:
            with getattr(context.resources, resource_key(db)).connect([t.name for t in tables_of(db)]) as conn:
                for table in tables_of(db):
                    cursor[table.name], minutes = changed_since(conn, table.name, cursor.get(table.name))
                    if minutes:
                        days_by_table[table.name] = affected_days(minutes, tz)
        except SourceNotSeededError as e:  # a fresh clone before `make demo`: nothing to watch yet
            return dg.SkipReason(str(e))
    requests = run_requests(days_by_table, dt.datetime.now(dt.timezone.utc), tz, late_data_lookback_days())
    context.update_cursor(json.dumps(cursor))
    if not requests:
        return dg.SkipReason("no source rows changed in closed partitions since the last tick")
    return requests
