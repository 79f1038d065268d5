"""Monthly exports: CSV and Parquet to a real S3 API (moto in server mode) or a local folder.

Known rows go into the warehouse, the export is read back with boto3 / from disk (CSV with pandas,
Parquet with pyarrow) and compared with the warehouse; re-exports replace files and drop stale ones;
a failed write never leaves a partial file under a final name; bad configuration fails loudly.
"""

from __future__ import annotations

import datetime as dt
import io
import socket

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from metrics_pipeline import exports
from metrics_pipeline.defs.derived_assets import DERIVED_ASSETS
from metrics_pipeline.defs.export_assets import KPI_SUMMARY_KEY, monthly_export
from metrics_pipeline.defs.metric_assets import METRIC_ASSETS
from metrics_pipeline.exports import ExportError, LocalTarget, S3Target, target_from_uri, verify_month
from metrics_pipeline.partitions import PARTITIONS
from metrics_pipeline.resources import Warehouse
from metrics_pipeline.resources.exporter import ExportResource
from metrics_pipeline.settings import ConfigError
from metrics_pipeline.warehouse_schema import daily_kpi_summary, metric_values
from metrics_pipeline_tests.s3_server import MotoS3Server

JAN = "2026-01"
TABLES = {"metric_values": metric_values, "daily_kpi_summary": daily_kpi_summary}
FILES = sorted(f"{t}/month={JAN}/{name}" for t in TABLES for name in (f"{t}.csv", f"{t}.parquet", "_manifest.json"))


@pytest.fixture(scope="module")
def s3():
    server = MotoS3Server().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3):
    return s3.create_bucket()


# --- known warehouse contents ------------------------------------------------------------------------

def _mv(metric, grain, start, end, value, dimension="", dimension_value="", numerator=None, denominator=None):
    return {"metric": metric, "grain": grain, "period_start": start, "period_end": end, "dimension": dimension,
            "dimension_value": dimension_value, "value": value, "numerator": numerator,
            "denominator": denominator, "source": "app", "asset": "test_asset", "run_id": "run-1"}


def _metric_rows(version: int) -> list[dict]:
    bump = float(version)
    rows = [
        # January 2026: every grain, including a week that starts in January and ends in February
        _mv("new_users", "hour", "2026-01-31 23:00:00", "2026-02-01 00:00:00", 3.0 * bump),
        _mv("active_users", "day", "2026-01-01", "2026-01-02", 10.0 + bump),
        _mv("active_users", "day", "2026-01-01", "2026-01-02", 7.0, "platform", "ios"),
        _mv("active_users", "day", "2026-01-01", "2026-01-02", 3.0, "country", 'São "Paulo", BR'),
        _mv("delivery_rate", "day", "2026-01-15", "2026-01-16", None, "account_id", "acc1", 0.0, 0.0),
        _mv("gross_revenue", "week", "2026-01-26", "2026-02-02", 0.1 + 0.2),
        _mv("mrr", "month", "2026-01-01", "2026-02-01", 123456.789 + bump, numerator=None),
        # other months: never in January's export
        _mv("active_users", "week", "2025-12-29", "2026-01-05", 5.0),
        _mv("new_users", "day", "2025-12-31", "2026-01-01", 1.0),
        _mv("active_users", "month", "2026-02-01", "2026-03-01", 6.0),
        _mv("new_users", "hour", "2026-02-01 00:00:00", "2026-02-01 01:00:00", 2.0),
    ]
    if version == 1:
        rows.append(_mv("sessions", "day", "2026-01-20", "2026-01-21", 42.0))
    else:
        rows.append(_mv("matches", "day", "2026-01-21", "2026-01-22", 1e-7))
    return rows


def _kpi_rows(version: int) -> list[dict]:
    empty = {c.name: None for c in daily_kpi_summary.columns if c.name != "computed_at"}
    return [empty | r for r in [
        {"date": "2026-01-01", "active_users": 10.0 + version, "mrr": 1234.5, "retention_d1": None, "run_id": "r"},
        {"date": "2026-01-31", "new_users": 4.0, "blended_cac": 0.3333333333333333, "run_id": "r"},
        {"date": "2026-02-01", "active_users": 99.0, "run_id": "r"},
    ]]


def fill(warehouse: Warehouse, version: int = 1) -> None:
    warehouse.replace_rows(metric_values, sa.true(), _metric_rows(version), lock="test")
    warehouse.replace_rows(daily_kpi_summary, sa.true(), _kpi_rows(version), lock="test")


def expected(warehouse: Warehouse, table: str, month: str = JAN) -> list[dict]:
    """The month's rows straight from the warehouse, sorted by primary key, timestamps as UTC."""
    t = TABLES[table]
    first, following = f"{month}-01", exports.month_bounds(month)[2]
    col = t.c.period_start if table == "metric_values" else t.c.date
    with warehouse.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t).where(col >= first, col < following)).mappings()]
    for r in rows:
        r["computed_at"] = r["computed_at"].replace(tzinfo=dt.timezone.utc)
    return sorted(rows, key=lambda r: tuple(r[c.name] for c in t.primary_key.columns))


def read_parquet(body: bytes) -> list[dict]:
    return pq.read_table(io.BytesIO(body)).to_pylist()


def read_csv(body: bytes, table: str) -> list[dict]:
    t = TABLES[table]
    text = [c.name for c in t.columns if isinstance(c.type, sa.String)]
    floats = [c.name for c in t.columns if isinstance(c.type, sa.Float)]
    df = pd.read_csv(io.BytesIO(body), dtype={c: str for c in text}, keep_default_na=False,
                     na_values={c: [""] for c in floats}, float_precision="round_trip")
    assert list(df.columns) == [c.name for c in t.columns]
    out = []
    for rec in df.to_dict("records"):
        row = {k: (None if k in floats and pd.isna(v) else float(v) if k in floats else v) for k, v in rec.items()}
        row["computed_at"] = dt.datetime.fromisoformat(row["computed_at"])
        out.append(row)
    return out


def csv_view(rows: list[dict], table: str) -> list[dict]:
    """What CSV can say of rows: a NULL text is ''."""
    text = {c.name for c in TABLES[table].columns if isinstance(c.type, sa.String)}
    return [{k: "" if k in text and v is None else v for k, v in r.items()} for r in rows]


def assert_export_matches(get, warehouse: Warehouse, month: str = JAN) -> None:
    """`get(key) -> bytes` reads the export; every file equals the warehouse's rows of the month."""
    for table in TABLES:
        want = expected(warehouse, table, month)
        folder = f"{table}/month={month}"
        assert read_parquet(get(f"{folder}/{table}.parquet")) == want
        assert read_csv(get(f"{folder}/{table}.csv"), table) == csv_view(want, table)


def s3_getter(s3: MotoS3Server, bucket: str, prefix: str):
    client = s3.client()
    return lambda key: client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()


def s3_keys(s3: MotoS3Server, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def run_export(warehouse: Warehouse, exporter: ExportResource, first: str = "2026-01-01", last: str | None = None,
               raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Materialize monthly_export for one month, or a range of months as one run (single-run backfill)."""
    kwargs = ({"partition_key": first} if last is None else
              {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}})
    return dg.materialize([monthly_export], resources={"warehouse": warehouse, "exporter": exporter},
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=raise_on_error, **kwargs)


def sqlite_warehouse(tmp_path) -> Warehouse:
    return Warehouse(url=f"sqlite:///{tmp_path}/warehouse.db")


# --- tests -------------------------------------------------------------------------------------------

def test_round_trip_through_s3_server(sources, s3, bucket):
    warehouse = sources.warehouse()
    fill(warehouse)
    result = run_export(warehouse, ExportResource(uri=f"s3://{bucket}/exports/metrics",
                                                  s3_endpoint_url=s3.endpoint_url))
    assert result.success
    assert s3_keys(s3, bucket) == [f"exports/metrics/{k}" for k in FILES]
    assert_export_matches(s3_getter(s3, bucket, "exports/metrics"), warehouse)
    # January holds its hour, days, month, and the week starting 2026-01-26; never Dec 29's week or February
    jan = read_parquet(s3_getter(s3, bucket, "exports/metrics")(f"metric_values/month={JAN}/metric_values.parquet"))
    assert {(r["grain"], r["period_start"]) for r in jan} == {
        ("hour", "2026-01-31 23:00:00"), ("day", "2026-01-01"), ("day", "2026-01-15"), ("day", "2026-01-20"),
        ("week", "2026-01-26"), ("month", "2026-01-01")}
    target = target_from_uri(f"s3://{bucket}/exports/metrics", s3_endpoint_url=s3.endpoint_url)
    assert verify_month(target, "metric_values", JAN) == verify_month(target, "daily_kpi_summary", JAN) == []
    manifest = exports.read_manifest(target, "metric_values", JAN)
    assert [(f["name"], f["rows"]) for f in manifest["files"]] == [("metric_values.csv", 8),
                                                                 ("metric_values.parquet", 8)]
    meta = result.asset_materializations_for_node("monthly_export")[0].metadata
    assert meta["metric_values_rows"].value == 8 and meta["daily_kpi_summary_rows"].value == 2
    assert meta["files_written"].value == 6 and meta["export_root"].value == f"s3://{bucket}/exports/metrics"
    assert f"s3://{bucket}/exports/metrics/metric_values/month={JAN}/metric_values.parquet" in meta["file_uris"].value
    head = s3.client().head_object(Bucket=bucket, Key=f"exports/metrics/metric_values/month={JAN}/metric_values.csv")
    assert meta["bytes_written"].value > head["ContentLength"] > 0


def test_reexport_replaces_files_removes_stale_ones_and_is_byte_identical(tmp_path, s3, bucket):
    warehouse = sqlite_warehouse(tmp_path)
    fill(warehouse, version=1)
    target = target_from_uri(f"s3://{bucket}/x", s3_endpoint_url=s3.endpoint_url)
    client, get = s3.client(), s3_getter(s3, bucket, "x")
    with warehouse.engine.connect() as conn:
        exports.export_month(conn, target, "2026-01-01")
        exports.export_month(conn, target, "2026-02-01")
        first = {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in s3_keys(s3, bucket)}
        exports.export_month(conn, target, "2026-01-01")  # same data: same bytes
    assert {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in s3_keys(s3, bucket)} == first
    feb = get("metric_values/month=2026-02/metric_values.parquet")

    client.put_object(Bucket=bucket, Key=f"x/metric_values/month={JAN}/part-0000-old.csv", Body=b"stale")
    fill(warehouse, version=2)
    with warehouse.engine.connect() as conn:
        done = exports.export_month(conn, target, JAN)
    assert done.removed == [f"s3://{bucket}/x/metric_values/month={JAN}/part-0000-old.csv"]
    assert s3_keys(s3, bucket) == sorted([*(f"x/{k}" for k in FILES),
                                          *(f"x/{k.replace(JAN, '2026-02')}" for k in FILES)])
    assert_export_matches(get, warehouse)
    metrics = {r["metric"] for r in read_parquet(get(f"metric_values/month={JAN}/metric_values.parquet"))}
    assert "matches" in metrics and "sessions" not in metrics
    assert get("metric_values/month=2026-02/metric_values.parquet") == feb  # other months untouched
    assert verify_month(target, "metric_values", JAN) == []


def test_local_folder_is_the_default_and_leaves_no_temp_files(tmp_path, monkeypatch):
    monkeypatch.setenv("METRICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("METRICS_EXPORT_URI", raising=False)
    monkeypatch.delenv("METRICS_EXPORT_S3_ENDPOINT_URL", raising=False)
    exporter = ExportResource.from_env()
    root = tmp_path / "data" / "exports"
    assert exporter.uri == str(root) and exporter.s3_endpoint_url is None
    warehouse = sqlite_warehouse(tmp_path)
    fill(warehouse)
    assert run_export(warehouse, exporter).success
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == FILES
    assert_export_matches(lambda key: (root / key).read_bytes(), warehouse)
    # a file:// URI names the same folder
    same = target_from_uri(root.as_uri())
    assert isinstance(same, LocalTarget) and same.root == root and verify_month(same, "daily_kpi_summary", JAN) == []


def test_a_failed_local_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    warehouse = sqlite_warehouse(tmp_path)
    fill(warehouse, version=1)
    target = LocalTarget(tmp_path / "out")
    with warehouse.engine.connect() as conn:
        exports.export_month(conn, target, JAN)
    final = tmp_path / "out" / f"metric_values/month={JAN}/metric_values.csv"
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    fill(warehouse, version=2)
    seen = []

    def half_then_fail(fh, body):
        fh.write(body[: len(body) // 2])
        fh.flush()
        seen.append(final.read_bytes())  # mid-write, the final name still holds the previous whole file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exports, "_write_body", half_then_fail)
    with pytest.raises(ExportError, match=f"cannot write .*metric_values.csv.*No space left"):
        with warehouse.engine.connect() as conn:
            exports.export_month(conn, target, JAN)
    assert seen == [before[final]]
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before  # no temp file, nothing changed
    assert verify_month(target, "metric_values", JAN) == []

    monkeypatch.undo()
    with warehouse.engine.connect() as conn:
        exports.export_month(conn, target, JAN)
    assert_export_matches(lambda key: (tmp_path / "out" / key).read_bytes(), warehouse)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".")]


def test_an_interrupted_s3_export_is_detected_by_the_manifest(tmp_path, s3, bucket, monkeypatch):
    warehouse = sqlite_warehouse(tmp_path)
    fill(warehouse, version=1)
    target = target_from_uri(f"s3://{bucket}/m", s3_endpoint_url=s3.endpoint_url)
    with warehouse.engine.connect() as conn:
        exports.export_month(conn, target, JAN)
    get = s3_getter(s3, bucket, "m")
    parquet, manifest = (get(f"metric_values/month={JAN}/{n}") for n in ("metric_values.parquet", "_manifest.json"))
    fill(warehouse, version=2)
    put = S3Target.put

    def put_until_parquet(self, key, body, content_type):
        if key.endswith(".parquet"):
            raise ExportError("connection lost")
        put(self, key, body, content_type)

    monkeypatch.setattr(S3Target, "put", put_until_parquet)
    with pytest.raises(ExportError, match="connection lost"), warehouse.engine.connect() as conn:
        exports.export_month(conn, target, JAN)
    # the new CSV landed whole, the Parquet and the manifest are the previous ones: a reader checking the
    # manifest sees the month is mid-export instead of mixing two versions; no multipart upload lingers
    assert get(f"metric_values/month={JAN}/metric_values.parquet") == parquet
    assert get(f"metric_values/month={JAN}/_manifest.json") == manifest
    assert verify_month(target, "metric_values", JAN) == [
        f"sha256 mismatch for s3://{bucket}/m/metric_values/month={JAN}/metric_values.csv"]
    assert "Uploads" not in s3.client().list_multipart_uploads(Bucket=bucket)
    monkeypatch.undo()
    with warehouse.engine.connect() as conn:
        exports.export_month(conn, target, JAN)
    assert verify_month(target, "metric_values", JAN) == []
    assert_export_matches(get, warehouse)


@pytest.mark.parametrize("uri, message", [
    ("ftp://x", "METRICS_EXPORT_URI='ftp://x' has unsupported scheme 'ftp'"),
    ("s3://", "METRICS_EXPORT_URI='s3://' has no valid bucket name"),
    ("s3://Bad_Bucket/p", "no valid bucket name"),
    ("file://otherhost/tmp/x", "a file:// URI must be local"),
    ("  ", "METRICS_EXPORT_URI is empty"),
])
def test_bad_export_uri_names_the_variable(uri, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        target_from_uri(uri)


def test_bad_configuration_from_the_environment(monkeypatch):
    monkeypatch.setenv("METRICS_EXPORT_URI", "ftp://x")
    with pytest.raises(ConfigError, match="METRICS_EXPORT_URI='ftp://x'"):
        ExportResource.from_env().process_config_and_initialize().target()
    with pytest.raises(ConfigError, match="METRICS_EXPORT_URI='ftp://x'"):
        ExportResource.from_env().target()  # outside Dagster too
    monkeypatch.setenv("METRICS_EXPORT_URI", "s3://bucket/prefix")
    monkeypatch.setenv("METRICS_EXPORT_S3_ENDPOINT_URL", "localhost:9000")
    with pytest.raises(ConfigError, match="METRICS_EXPORT_S3_ENDPOINT_URL='localhost:9000' is not an http"):
        ExportResource.from_env().target()


def test_unreachable_endpoint_and_missing_bucket_fail_naming_the_uri(tmp_path, s3):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = ExportResource(uri="s3://metrics-exports/prod", s3_endpoint_url=closed, s3_max_attempts=1)
    with pytest.raises(ExportError, match=f"s3://metrics-exports/prod: the S3 endpoint is unreachable .*{closed}"):
        down.target().check()
    missing = ExportResource(uri="s3://no-such-bucket/prod", s3_endpoint_url=s3.endpoint_url)
    with pytest.raises(ExportError, match="bucket 'no-such-bucket' does not exist"):
        missing.target().check()
    # through Dagster, the run fails with that message
    warehouse = sqlite_warehouse(tmp_path)
    fill(warehouse)
    result = run_export(warehouse, down, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error.cause  # under Dagster's "error occurred while executing" wrapper
    assert error.cls_name == "ExportError"
    assert "s3://metrics-exports/prod" in error.message and closed in error.message


def test_asset_definition_lineage_and_single_run_backfill(tmp_path):
    graph = dg.Definitions(assets=[monthly_export], resources={
        "warehouse": sqlite_warehouse(tmp_path), "exporter": ExportResource(uri=str(tmp_path))}).resolve_asset_graph()
    monthly = {a.key for (_, grain), a in METRIC_ASSETS.items() if grain == "month"}
    assert graph.get(monthly_export.key).parent_keys == monthly | {DERIVED_ASSETS["month"].key, KPI_SUMMARY_KEY}
    assert monthly_export.partitions_def == PARTITIONS["month"]
    assert monthly_export.backfill_policy == dg.BackfillPolicy.single_run()
    assert monthly_export.group_names_by_key[monthly_export.key] == "exports"
    assert {"grain": "month", "domain": "exports"}.items() <= monthly_export.tags_by_key[monthly_export.key].items()
    assert {"warehouse", "exporter"} <= monthly_export.required_resource_keys

    warehouse = sqlite_warehouse(tmp_path)
    fill(warehouse)
    result = run_export(warehouse, ExportResource(uri=str(tmp_path / "out")), "2026-01-01", "2026-02-01")
    assert result.success
    meta = result.asset_materializations_for_node("monthly_export")[0].metadata
    assert (meta["months"].value, meta["first_month"].value, meta["last_month"].value) == (2, "2026-01", "2026-02")
    assert meta["metric_values_rows"].value == 8 + 2 and meta["daily_kpi_summary_rows"].value == 2 + 1
    target = LocalTarget(tmp_path / "out")
    for month in ("2026-01", "2026-02"):
        assert_export_matches(lambda key: (tmp_path / "out" / key).read_bytes(), warehouse, month)
        assert verify_month(target, "metric_values", month) == []


def test_same_rows_give_the_same_bytes_on_sqlite_and_postgresql(tmp_path, postgres_url_factory):
    """Rows are normalised and sorted in Python: the engine (types, collation) never shows in the files."""
    computed = dt.datetime(2026, 2, 1, 3, 4, 5, 678901)
    bodies = []
    for url in (f"sqlite:///{tmp_path}/w.db", postgres_url_factory("export")):
        warehouse = Warehouse(url=url)
        with warehouse.begin() as conn:
            conn.execute(metric_values.insert(), [r | {"computed_at": computed} for r in _metric_rows(1)])
            conn.execute(daily_kpi_summary.insert(), [r | {"computed_at": computed} for r in _kpi_rows(1)])
        with warehouse.engine.connect() as conn:
            bodies.append({f.key: f.body for f in exports.build_month(conn, JAN)})
        warehouse.engine.dispose()
    assert bodies[0] == bodies[1]
    assert b"2026-02-01 03:04:05.678901+00:00" in bodies[0][f"metric_values/month={JAN}/metric_values.csv"]


def test_an_empty_month_exports_header_only_files(tmp_path):
    warehouse = sqlite_warehouse(tmp_path)
    with warehouse.engine.connect() as conn:
        files = {f.key: f for f in exports.build_month(conn, "2025-06-01")}
    csv_file = files["metric_values/month=2025-06/metric_values.csv"]
    assert csv_file.rows == 0 and csv_file.body == (",".join(c.name for c in metric_values.columns) + "\n").encode()
    table = pq.read_table(io.BytesIO(files["daily_kpi_summary/month=2025-06/daily_kpi_summary.parquet"].body))
    assert table.num_rows == 0 and table.column_names == [c.name for c in daily_kpi_summary.columns]
