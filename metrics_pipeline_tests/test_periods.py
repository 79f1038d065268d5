"""Period boundaries in METRICS_TIMEZONE, and timestamp comparisons exact on both SQLite spellings."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from metrics_pipeline.metrics.periods import periods_between, periods_subquery, shifted
from metrics_pipeline.metrics.sqltime import duration_micros, scanned, ts_norm


def test_iso_weeks_start_on_monday_and_months_are_calendar_months():
    weeks = periods_between("week", dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 19), "UTC")
    assert [w.key for w in weeks] == ["2026-01-05", "2026-01-12"]  # 2026-01-01 is a Thursday
    assert weeks[0].end_key == "2026-01-12"
    (feb,) = periods_between("month", dt.datetime(2026, 2, 1), dt.datetime(2026, 3, 1), "UTC")
    assert (feb.key, feb.end_key) == ("2026-02-01", "2026-03-01")


def test_days_follow_local_midnight_across_dst():
    days = periods_between("day", dt.datetime(2026, 3, 7), dt.datetime(2026, 3, 10), "America/New_York")
    spring = next(d for d in days if d.key == "2026-03-08")
    assert spring.start_utc == dt.datetime(2026, 3, 8, 5) and spring.end_utc == dt.datetime(2026, 3, 9, 4)
    assert spring.end_utc - spring.start_utc == dt.timedelta(hours=23)
    assert days[0].end_utc == days[1].start_utc  # contiguous, no gap or overlap


def test_hour_keys_and_shifts():
    (hour,) = periods_between("hour", dt.datetime(2026, 1, 5, 13), dt.datetime(2026, 1, 5, 14), "UTC")
    assert (hour.key, hour.end_key) == ("2026-01-05 13:00:00", "2026-01-05 14:00:00")
    (day,) = periods_between("day", dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 2), "UTC")
    assert shifted(day, -30).key == "2026-01-30" and shifted(day, 1).key == "2026-03-02"


def test_sqlite_comparisons_treat_both_spellings_as_one_instant():
    engine = sa.create_engine("sqlite://")
    (day,) = periods_between("day", dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 6), "UTC")
    p = periods_subquery([day], "sqlite")
    t = sa.table("t", sa.column("ts"), sa.column("other"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (ts TEXT, other TEXT)")
        conn.exec_driver_sql(
            "INSERT INTO t VALUES ('2026-01-05 00:00:00', '2026-01-05 00:00:00.000000'),"
            "('2026-01-05 00:00:00.000000', '2026-01-05 00:00:01.5'), ('2026-01-06 00:00:00', '2026-01-06 00:00:00'),"
            "('2026-01-06 00:00:00.000000', '2026-01-06 00:00:00'), ('2026-01-05 23:59:59.999999', '2026-01-06 00:00:00')")
        in_day = conn.execute(sa.select(sa.func.count()).select_from(p.join(
            t, sa.and_(t.c.ts >= p.c.lo, t.c.ts < p.c.hi)))).scalar_one()
        at_or_before_end = conn.execute(sa.select(sa.func.count()).select_from(p.join(
            t, t.c.ts < p.c.hi_next))).scalar_one()
        same = conn.execute(sa.select(sa.func.count()).where(ts_norm(t.c.ts) == ts_norm(t.c.other))).scalar_one()
        micros = conn.execute(sa.select(duration_micros(t.c.other, t.c.ts))).scalars().all()
    assert in_day == 3  # both spellings of midnight of the 5th, and 23:59:59.999999
    assert at_or_before_end == 5  # `<= end` includes both spellings of the 6th's midnight
    assert same == 3
    assert micros == [0, 1_500_000, 0, 0, 1]



def test_a_bound_over_all_history_reads_the_table_in_order_and_keeps_other_indexes():
    """`scanned(ts) < bound` selects the same rows as `ts < bound`, by a scan of the table instead of a
    walk of the index on `ts`; an index on another column of the statement still serves it."""
    engine = sa.create_engine("sqlite://")
    t = sa.table("t", sa.column("ts"), sa.column("stop"))
    bound = sa.literal_column("'2026-01-06 00:00:00'")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, ts DATETIME, stop DATETIME)")
        conn.exec_driver_sql("CREATE INDEX ix_ts ON t (ts)")
        conn.exec_driver_sql("INSERT INTO t (ts, stop) VALUES ('2026-01-05 00:00:00', NULL), "
                             "('2026-01-05 23:59:59.999999', '2026-01-07 00:00:00'), ('2026-01-06 00:00:00', NULL)")

        def count_and_plan(*where):
            q = sa.select(sa.func.count(t.c.stop) + sa.func.count()).select_from(t).where(*where)
            sql = q.compile(conn, compile_kwargs={"literal_binds": True})
            return conn.execute(q).scalar_one(), " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))

        assert count_and_plan(t.c.ts < bound) == (3, "SEARCH t USING INDEX ix_ts (ts<?)")
        assert count_and_plan(scanned(t.c.ts) < bound) == (3, "SCAN t")
        conn.exec_driver_sql("CREATE INDEX ix_stop ON t (stop)")
        n, plan = count_and_plan(scanned(t.c.ts) < bound, t.c.stop.is_(None))
        assert n == 1 and "USING INDEX ix_stop" in plan


@pytest.mark.parametrize("sources", ["sqlite", "sqlite-indexed"], indirect=True)
def test_statements_cover_a_chunk_of_periods_only_where_an_index_serves_it(sources):
    """SQLite computes hours a week per statement when the time columns are indexed, and the whole
    range in one statement when not (each chunk would scan the table); both give the same rows."""
    import datetime as dt

    from metrics_pipeline.metrics.activity import ACTIVITY
    from metrics_pipeline.metrics.engine import compute_domain, time_columns_indexed
    from metrics_pipeline.metrics.periods import periods_between
    from metrics_pipeline.resources import SourceDatabase

    sources.insert("users", *({"id": f"u{i}", "created_at": f"2026-01-0{1 + i % 9} 0{i % 10}:30:00"} for i in range(12)))
    sources.insert("user_sessions", *(
        {"user_id": f"u{i % 5}", "started_at": f"2026-01-{5 + i % 9:02d} {i % 24:02d}:15:00",
         "ended_at": f"2026-01-{5 + i % 9:02d} {i % 24:02d}:45:00.500000", "platform": ("ios", "android")[i % 2]}
        for i in range(40)))
    periods = periods_between("hour", dt.datetime(2026, 1, 4), dt.datetime(2026, 1, 16), "UTC")
    with SourceDatabase(name="app", url=sources.urls["app"]).connect(ACTIVITY.tables_for("hour")) as conn:
        indexed = time_columns_indexed(conn, ACTIVITY, "hour")
        whole, weekly = (compute_domain(conn, ACTIVITY, "hour", periods, dt.datetime(2026, 2, 1), strategy=s)
                         for s in ("whole", "week"))

    def by_key(rows):
        return sorted(rows, key=lambda r: (r.metric, r.period_start, r.dimension, r.dimension_value))

    assert indexed == (sources.indexes == "contract")
    assert len(whole) > len(periods) and by_key(whole) == by_key(weekly)
    assert sum(r.value for r in whole if r.metric == "new_users" and r.dimension == "") == 6  # created 01-04 .. 01-09


def test_a_total_summed_from_its_breakdown_equals_the_total_read_again(sources, monkeypatch):
    """Where every measure adds up, the total is the sum of the first breakdown's rows (users: by
    country, NULL read as 'unknown') instead of a second pass; it gives exactly the rows the pass gave."""
    import datetime as dt

    from metrics_pipeline.metrics import engine
    from metrics_pipeline.metrics.activity import ACTIVITY
    from metrics_pipeline.metrics.periods import periods_between
    from metrics_pipeline.resources import SourceDatabase

    countries = ["DE", None, "FR", "DE", None, "US", "DE"]
    sources.insert("users", *({"id": f"u{i}", "created_at": f"2026-01-0{5 + i % 2} 1{i}:00:00", "country": c,
                               "platform": ("ios", "android")[i % 2]} for i, c in enumerate(countries)))
    days = periods_between("day", dt.datetime(2026, 1, 4), dt.datetime(2026, 1, 8), "UTC")

    def new_users():
        with SourceDatabase(name="app", url=sources.urls["app"]).connect(ACTIVITY.tables_for("day")) as conn:
            rows = engine.compute_domain(conn, ACTIVITY, "day", days, dt.datetime(2026, 2, 1))
        return sorted((r.period_start, r.dimension, r.dimension_value, r.value) for r in rows
                      if r.metric == "new_users")

    summed = new_users()
    monkeypatch.setattr(engine, "_totals_from_first_dim", lambda specs: False)
    assert summed == new_users()
    totals = {p: v for p, d, _, v in summed if d == ""}
    assert totals == {"2026-01-04": 0, "2026-01-05": 4, "2026-01-06": 3, "2026-01-07": 0}
    assert {(p, v) for p, d, dv, v in summed if (d, dv) == ("country", "unknown")} == {("2026-01-05", 1),
                                                                                    ("2026-01-06", 1)}


def test_sqlite_cuts_a_utc_period_key_from_the_text_and_places_rows_as_the_map_does(sources, monkeypatch):
    """Consecutive UTC hours, days and months on SQLite take their key from the timestamp's text
    (no bucket map); the rows are those the map gives, bounds and both fraction spellings included."""
    import datetime as dt

    from metrics_pipeline.metrics import periods as periods_module
    from metrics_pipeline.metrics.activity import ACTIVITY
    from metrics_pipeline.metrics.engine import compute_domain
    from metrics_pipeline.metrics.periods import periods_between, text_key
    from metrics_pipeline.resources import SourceDatabase

    def between(grain, a, b, tz="UTC"):
        return periods_between(grain, dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b), tz)

    assert text_key(between("hour", "2026-01-05", "2026-01-06"), "sqlite") == (13, ":00:00")
    assert text_key(between("day", "2026-01-05", "2026-02-01"), "sqlite") == (10, "")
    assert text_key(between("month", "2026-01-01", "2026-04-01"), "sqlite") == (8, "01")
    assert text_key(between("day", "2026-01-05", "2026-02-01"), "postgresql") is None
    assert text_key(between("week", "2026-01-05", "2026-02-02"), "sqlite") is None
    assert text_key(between("day", "2026-01-05", "2026-02-01", "Asia/Kolkata"), "sqlite") is None
    assert text_key([*between("day", "2026-01-05", "2026-01-07"), *between("day", "2026-01-09", "2026-01-10")],
                    "sqlite") is None  # a gap: rows between would have a key of no period

    stamps = ["2026-01-31 23:59:59.999999", "2026-02-01 00:00:00", "2026-02-01 00:00:00.000000",
              "2026-02-01 00:59:59", "2026-02-28 23:00:00.5", "2026-03-01 00:00:00"]
    sources.insert("users", *({"id": f"u{i}", "created_at": ts} for i, ts in enumerate(stamps)))
    sources.insert("user_sessions", *({"user_id": f"u{i}", "started_at": ts, "platform": "ios"}
                                      for i, ts in enumerate(stamps)))

    def rows(grain, a, b):
        with SourceDatabase(name="app", url=sources.urls["app"]).connect(ACTIVITY.tables_for(grain)) as conn:
            got = compute_domain(conn, ACTIVITY, grain, between(grain, a, b), dt.datetime(2026, 4, 1))
        return sorted((r.metric, r.period_start, r.dimension, r.dimension_value, r.value) for r in got)

    cases = [("hour", "2026-01-31 23:00", "2026-02-01 02:00"), ("day", "2026-01-31", "2026-03-02"),
             ("month", "2026-01-01", "2026-04-01")]
    cut = {grain: rows(grain, a, b) for grain, a, b in cases}
    monkeypatch.setattr(periods_module, "text_key", lambda periods, dialect: None)
    assert cut == {grain: rows(grain, a, b) for grain, a, b in cases}
    assert ("new_users", "2026-02-01", "", "", 4) in cut["month"]  # 02-01 00:00 (both spellings) .. 02-28 23:00
    assert ("new_users", "2026-02-01 00:00:00", "", "", 3) in cut["hour"]
