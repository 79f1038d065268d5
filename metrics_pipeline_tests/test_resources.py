"""Sources are read-only and fail clearly; the warehouse creates and evolves its schema safely."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from metrics_pipeline.contract import TABLES

from metrics_pipeline.resources import SourceDatabase, SourceUnavailableError, Warehouse
from metrics_pipeline.resources.warehouse import ensure_schema
from metrics_pipeline.local_stack import free_port


def test_missing_sqlite_file_names_database_and_fix(tmp_path):
    db = SourceDatabase(name="app", url=f"sqlite:///{tmp_path}/nope.db")
    with pytest.raises(SourceUnavailableError, match=r"source database 'app'.*nope.db does not exist"):
        with db.connect(["users"]):
            pass


def test_unreachable_postgres_names_database_without_password():
    url = f"postgresql+psycopg2://analyst:s3cret@127.0.0.1:{free_port()}/app"
    with pytest.raises(SourceUnavailableError) as err:
        with SourceDatabase(name="app", url=url).connect():
            pass
    message = str(err.value)
    assert "cannot connect to source database 'app'" in message
    assert "s3cret" not in message and "analyst:***@127.0.0.1" in message


def test_missing_table_and_column_are_named(sources):
    db = SourceDatabase(name="app", url=sources.urls["app"])
    sources.execute("app", "DROP TABLE payments")
    with pytest.raises(SourceUnavailableError, match="source database 'app'.* has no table 'payments'"):
        with db.connect(["users", "payments"]):
            pass
    sources.execute("app", "ALTER TABLE users DROP COLUMN platform")
    with db.connect(["users"]):  # a dropped column fails only what reads it
        users = TABLES["users"].sa_table()
        assert "platform" not in users.c and "country" in users.c
        with pytest.raises(SourceUnavailableError, match="table 'users' lacks column platform, which these metrics"):
            with db.connect(["users"]):
                users.c["platform"]
    assert "platform" in TABLES["users"].sa_table().c  # outside a connection: the whole contract


def test_sources_are_opened_read_only(sources):
    with SourceDatabase(name="app", url=sources.urls["app"]).connect(["users"]) as conn:
        with pytest.raises(sa.exc.DBAPIError):
            conn.exec_driver_sql("DELETE FROM users")


def test_missing_table_fails_the_run_with_its_name(sources, materialize):
    sources.execute("interactions", "DROP TABLE swipes")
    run = materialize(sources, "day", "2026-01-05")
    assert not run.success
    assert any("daily_interactions_metrics" in e and "has no table 'swipes'" in e for e in run.errors), run.errors


def test_warehouse_schema_evolves_without_losing_rows(tmp_path):
    url = f"sqlite:///{tmp_path}/warehouse.db"
    old = sa.create_engine(url)
    with old.begin() as conn:  # an older metric_values without the `asset` column
        conn.exec_driver_sql(
            "CREATE TABLE metric_values (metric TEXT, grain TEXT, period_start TEXT, dimension TEXT, "
            "dimension_value TEXT, period_end TEXT, value REAL, numerator REAL, denominator REAL, source TEXT, "
            "computed_at TIMESTAMP, run_id TEXT, PRIMARY KEY (metric, grain, period_start, dimension, dimension_value))")
        conn.exec_driver_sql("INSERT INTO metric_values VALUES ('sessions','day','2026-01-01','','','2026-01-02',"
                             "5,NULL,NULL,'app','2026-01-02 00:00:00','r1')")
    ensure_schema(old)
    rows = Warehouse(url=url).metric_rows()
    assert len(rows) == 1 and rows[0]["value"] == 5 and rows[0]["asset"] is None
    ensure_schema(old)  # idempotent
    assert len(Warehouse(url=url).metric_rows()) == 1


def test_steps_creating_a_new_postgres_warehouse_at_once_all_succeed(postgres_url_factory):
    """The first steps of a fresh deployment each create the warehouse schema; they take turns."""
    import threading

    url = postgres_url_factory("fresh_warehouse")
    engines = [sa.create_engine(url) for _ in range(4)]
    errors: list[Exception] = []
    start = threading.Barrier(len(engines))

    def create(engine):
        start.wait()
        try:
            ensure_schema(engine)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []


def test_bulk_inserts_keep_text_nulls_and_numbers_exactly(sources):
    """Quotes, commas, newlines, backslashes, empty text vs NULL and floats survive the bulk path
    (COPY on PostgreSQL) exactly as a plain INSERT stores them."""
    import datetime as dt

    from metrics_pipeline.metrics.periods import periods_between
    from metrics_pipeline.metrics.spec import MetricRow

    warehouse = sources.warehouse()
    periods = periods_between("day", dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2), "UTC")
    p = periods[0]
    awkward = ['a,"b"\nc', "", "back\\slash", "N", "\\N", "naïve ✓", "NULL"]
    rows = [MetricRow("sessions", "day", p.key, p.end_key, "platform", text, value, numerator, denominator)
            for text, value, numerator, denominator in zip(awkward, [0.1, None, -2.5, 1e-300, 3.0, 7.0, 0.0],
                                                           [None, 1.0, None, 2.0, None, None, None],
                                                           [None, 3.0, None, 0.5, None, None, None])]
    warehouse.replace_metric_rows(rows, run_id="r1", grain="day", metrics=["sessions"], periods=periods,
                                  source="app", asset="daily_activity_metrics")
    stored = {r["dimension_value"]: r for r in warehouse.metric_rows(["sessions"], "day")}
    assert set(stored) == set(awkward)
    for row in rows:
        got = stored[row.dimension_value]
        assert (got["value"], got["numerator"], got["denominator"]) == (row.value, row.numerator, row.denominator)
        assert got["run_id"] == "r1" and got["source"] == "app" and got["computed_at"] is not None


def test_partition_replacement_is_one_transaction_of_bulk_inserts(sources):
    """24,000 rows replace a range in a handful of multi-row statements (one COPY on PostgreSQL); a bad
    row rolls all of it back and the rows already there stay; the DELETE of a range is an index range
    on SQLite."""
    import datetime as dt

    from metrics_pipeline.metrics.periods import periods_between
    from metrics_pipeline.metrics.spec import MetricRow

    warehouse = sources.warehouse()
    periods = periods_between("day", dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 4), "UTC")
    rows = [MetricRow("sessions", "day", p.key, p.end_key, "platform", str(i), float(i))
            for p in periods for i in range(8000)]
    statements = []
    sa.event.listen(warehouse.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement.split()[0]))
    replace = dict(grain="day", metrics=["sessions"], periods=periods, source="app", asset="daily_activity_metrics")
    assert warehouse.replace_metric_rows(rows, run_id="r1", **replace) == 24_000
    assert statements.count("DELETE") == 1
    if warehouse.engine.dialect.name == "postgresql":  # one COPY, through the driver's own cursor
        assert statements.count("INSERT") == 0
    else:
        assert 1 <= statements.count("INSERT") <= 30  # multi-row statements, not one per row

    broken = rows[:-1] + [MetricRow(None, "day", periods[0].key, periods[0].end_key, "", "", 1.0)]
    with pytest.raises(sa.exc.IntegrityError):
        warehouse.replace_metric_rows(broken, run_id="r2", **replace)
    kept = warehouse.metric_rows(["sessions"], "day")
    assert len(kept) == 24_000 and {r["run_id"] for r in kept} == {"r1"}

    if warehouse.engine.dialect.name == "sqlite":
        with warehouse.engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN DELETE FROM metric_values WHERE grain = 'day' AND metric IN ('sessions') "
                "AND period_start >= '2026-01-01' AND period_start < '2026-01-04'"))
        assert "USING INDEX" in plan and "period_start>?" in plan, plan
