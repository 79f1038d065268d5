"""Monthly exports of `metric_values` and `daily_kpi_summary` as CSV and Parquet (pure logic, no Dagster).

Where: an `ExportTarget` built from a URI (`METRICS_EXPORT_URI`):

- `s3://bucket/prefix`: an S3 bucket, or any S3-compatible store whose endpoint is given by
  `METRICS_EXPORT_S3_ENDPOINT_URL` (AWS itself when unset). The boto3 client comes from dagster-aws's
  `S3Resource`, so credentials follow the usual AWS chain (environment, profile, instance role).
- `file:///absolute/path` or a plain folder path; the default is `$METRICS_DATA_DIR/exports`, that is
  `./data/exports`.

Layout under the root, one folder per table and month (Hive-style, so Spark, DuckDB and Athena read
`month` as a partition column):

    metric_values/month=2026-01/metric_values.csv
    metric_values/month=2026-01/metric_values.parquet
    metric_values/month=2026-01/_manifest.json
    daily_kpi_summary/month=2026-01/daily_kpi_summary.csv  (.parquet, _manifest.json)

Which rows a month holds: the `metric_values` rows whose `period_start` falls in the calendar month,
every grain (its hours, days and the month itself; a week belongs to the month it *starts* in, so the
ISO week of Monday 2026-01-26 is exported with 2026-01 although it ends in February), and the
`daily_kpi_summary` rows whose `date` is in the month. Every row is in exactly one month's export.

Atomic for readers: each file is written whole or not at all. Locally it is written to a hidden temp
file in the same folder and renamed over the final name (`os.replace`); on S3 it is one PutObject of
the complete body (never a multipart upload), which S3 makes visible only once complete. The
manifest, listing every file with its row count, size and sha256, is written last: a reader that
checks files against it (`verify_month`) never mixes two exports of a month. Re-exporting a month
overwrites the same names, then removes every other file of that month's folders (stale files).

Byte-identical re-exports for identical data: columns in the table's declared order, rows sorted by
the primary key in Python (not by the database's collation), CSV written with the csv module (UTF-8,
`\\n`, empty field for NULL, floats as shortest round-trip repr, `computed_at` as
`YYYY-MM-DD HH:MM:SS.ffffff+00:00`), Parquet through pyarrow with an explicit schema and no write
time inside. CSV cannot tell NULL from '' (the dimension of a total): read it with
`keep_default_na=False` for text columns and `float_precision="round_trip"`, or read the Parquet.
"""

from __future__ import annotations

import abc
import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from metrics_pipeline.settings import EXPORT_S3_ENDPOINT_ENV, EXPORT_URI_ENV, ConfigError
from metrics_pipeline.warehouse_schema import daily_kpi_summary, metric_values

MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1
FORMATS = ("csv", "parquet")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
                 "json": "application/json"}
CHUNK_SIZE = 1 << 20
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class ExportError(RuntimeError):
    """The export target cannot be reached or written; the message names its URI."""


# --------------------------------------------------------------------------------------------------
# Configuration (environment variables, embedded default)


# --------------------------------------------------------------------------------------------------
# Targets


class ExportTarget(abc.ABC):
    """A root (folder or bucket prefix) that files are written to by relative key (`a/b/c.csv`)."""

    uri: str

    @abc.abstractmethod
    def uri_of(self, key: str) -> str:
        """The full URI of a key, as shown to users."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ExportError unless the target can be written (folder creatable, bucket reachable)."""

    @abc.abstractmethod
    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write `body` under `key` atomically: readers see the previous file or the whole new one."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes stored under `key`, or None when there is none."""

    @abc.abstractmethod
    def list(self, folder: str) -> list[str]:
        """Keys of the files directly or indirectly under `folder`, sorted."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (no error when it is already gone)."""


def _write_body(fh, body: bytes) -> None:
    """Write `body` to an open binary file in chunks (a seam for tests that fail a write midway)."""
    view = memoryview(body)
    for i in range(0, len(view), CHUNK_SIZE):
        fh.write(view[i:i + CHUNK_SIZE])


@dataclass
class LocalTarget(ExportTarget):
    """A local folder; each file goes to a temp file in its own folder, then `os.replace`."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def uri_of(self, key: str) -> str:
        return self._path(key).as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"cannot create the export folder {self.uri}: {e}") from e
        if not os.access(self.root, os.W_OK):
            raise ExportError(f"the export folder {self.uri} is not writable")

    def put(self, key: str, body: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as e:
            raise ExportError(f"cannot write {self.uri_of(key)}: {e}") from e
        try:
            with os.fdopen(fd, "wb") as fh:
                _write_body(fh, body)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; exports are meant to be read by others
            os.replace(tmp, path)
        except BaseException as e:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise ExportError(f"cannot write {self.uri_of(key)}: {e}") from e
            raise
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, folder: str) -> list[str]:
        base = self._path(folder)
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class S3Target(ExportTarget):
    """`s3://bucket/prefix` through a boto3 S3 client; one PutObject per file (atomic for readers)."""

    client: object
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        self.prefix = self.prefix.strip("/")
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_of(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn botocore errors into an ExportError naming the URI and the endpoint."""
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

        where = f"endpoint {self.endpoint_url}" if self.endpoint_url else "AWS S3"
        try:
            yield
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                raise ExportError(f"cannot {what}: bucket {self.bucket!r} does not exist at {where} "
                                  f"({EXPORT_URI_ENV}={self.uri})") from e
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ExportError(f"cannot {what}: access denied to {self.uri} at {where} ({code}); "
                                  f"check the AWS credentials") from e
            raise ExportError(f"cannot {what} at {where}: {e}") from e
        except EndpointConnectionError as e:
            raise ExportError(f"cannot {what}: the S3 endpoint is unreachable ({where}; "
                              f"{EXPORT_S3_ENDPOINT_ENV} sets it): {e}") from e
        except NoCredentialsError as e:
            raise ExportError(f"cannot {what}: no AWS credentials found for {self.uri} (set AWS_ACCESS_KEY_ID/"
                              f"AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)") from e
        except BotoCoreError as e:
            raise ExportError(f"cannot {what} at {where}: {e}") from e

    def check(self) -> None:
        with self._errors(f"reach {self.uri}"):
            self.client.head_bucket(Bucket=self.bucket)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        import base64

        digest = hashlib.sha256(body).digest()
        with self._errors(f"write {self.uri_of(key)}"):
            # One PutObject with the whole body: S3 shows the new object only once it is complete, and
            # verifies the SHA-256 it is given (a corrupted upload is rejected, not stored).
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body, ContentType=content_type,
                                   ChecksumSHA256=base64.b64encode(digest).decode(),
                                   Metadata={"sha256": digest.hex()})

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._errors(f"read {self.uri_of(key)}"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
            except ClientError as e:
                if str(e.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
                    return None
                raise

    def list(self, folder: str) -> list[str]:
        keys: list[str] = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(f"list {self.uri_of(folder)}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self._key(folder.strip("/")) + "/"):
                keys += [o["Key"][strip:] for o in page.get("Contents", [])]
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._errors(f"delete {self.uri_of(key)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def s3_client(endpoint_url: str | None = None, region_name: str | None = None, max_attempts: int = 5):
    """A boto3 S3 client from dagster-aws's S3Resource (the AWS credential chain applies)."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(endpoint_url=endpoint_url, region_name=region_name, max_attempts=max_attempts).get_client()


def target_from_uri(
    uri: str, *, s3_endpoint_url: str | None = None, s3_region_name: str | None = None, s3_max_attempts: int = 5,
    variable: str = EXPORT_URI_ENV,
) -> ExportTarget:
    """The target of `s3://bucket/prefix`, `file:///path` or a folder path; ConfigError names `variable`."""
    raw = (uri or "").strip()
    if not raw:
        raise ConfigError(f"{variable} is empty; expected s3://bucket/prefix, file:///absolute/path or a folder path")
    match = _SCHEME.match(raw)
    if match is None:
        return LocalTarget(Path(raw))
    scheme = match.group(1).lower()
    parts = urlsplit(raw)
    if parts.query or parts.fragment:
        raise ConfigError(f"{variable}={uri!r} must not have a query or fragment")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{variable}={uri!r} names host {parts.netloc!r}; a file:// URI must be local "
                              f"(file:///absolute/path)")
        return LocalTarget(Path(unquote(parts.path)))
    if scheme == "s3":
        bucket = parts.netloc
        if not _S3_BUCKET.match(bucket):
            raise ConfigError(f"{variable}={uri!r} has no valid bucket name; expected s3://bucket/prefix")
        if s3_endpoint_url is not None:
            ep = urlsplit(s3_endpoint_url)
            if ep.scheme not in ("http", "https") or not ep.netloc:
                raise ConfigError(f"{EXPORT_S3_ENDPOINT_ENV}={s3_endpoint_url!r} is not an http(s):// URL")
        try:
            client = s3_client(s3_endpoint_url, s3_region_name, s3_max_attempts)
        except Exception as e:  # botocore raises assorted errors for a bad profile, region or endpoint
            raise ExportError(f"cannot create an S3 client for {raw}: {e}") from e
        return S3Target(client, bucket, unquote(parts.path), s3_endpoint_url)
    raise ConfigError(f"{variable}={uri!r} has unsupported scheme {scheme!r}; expected s3://bucket/prefix, "
                      f"file:///absolute/path or a folder path")


# --------------------------------------------------------------------------------------------------
# What is exported


@dataclass(frozen=True)
class ExportTable:
    """A warehouse table exported month by month, selected by a text date column."""

    table: sa.Table
    month_column: str

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def columns(self) -> list[sa.Column]:
        return list(self.table.columns)

    @property
    def sort_key(self) -> list[str]:
        return [c.name for c in self.table.primary_key.columns]


EXPORT_TABLES = (ExportTable(metric_values, "period_start"), ExportTable(daily_kpi_summary, "date"))


def month_bounds(month: str | dt.date) -> tuple[str, str, str]:
    """(label 'YYYY-MM', first day, first day of the next month) of '2026-01', '2026-01-01' or a date."""
    if isinstance(month, dt.date):
        first = month
    else:
        text = str(month)
        try:
            first = dt.date.fromisoformat(text if len(text) > 7 else f"{text}-01")
        except ValueError:
            raise ValueError(f"month {month!r} is not YYYY-MM or YYYY-MM-01") from None
    if first.day != 1:
        raise ValueError(f"month {month!r} does not start on the first of a month")
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first.strftime("%Y-%m"), first.isoformat(), following.isoformat()


def folder_of(table: str, month: str) -> str:
    return f"{table}/month={month_bounds(month)[0]}"


def _normalise(value, column: sa.Column):
    """One Python type per column whatever the engine (PostgreSQL types values, SQLite may not)."""
    if value is None:
        return None
    t = column.type
    if isinstance(t, sa.Boolean):
        return bool(value)
    if isinstance(t, sa.Float):
        return float(value)
    if isinstance(t, sa.Integer):
        return int(value)
    if isinstance(t, sa.DateTime):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        # warehouse timestamps are naive UTC
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(t, sa.Date):
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return str(value)


def _arrow_type(column: sa.Column) -> pa.DataType:
    t = column.type
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.Float):
        return pa.float64()
    if isinstance(t, sa.Integer):
        return pa.int64()
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.String):
        return pa.string()
    raise TypeError(f"no export type for column {column.table.name}.{column.name} ({t})")


def read_month(conn: sa.Connection, spec: ExportTable, month: str) -> list[dict]:
    """The month's rows of `spec`, normalised and sorted by primary key (independent of collation)."""
    _, first, following = month_bounds(month)
    col = spec.table.c[spec.month_column]
    result = conn.execute(sa.select(spec.table).where(col >= first, col < following))
    columns = spec.columns
    rows = [{c.name: _normalise(r[c.name], c) for c in columns} for r in result.mappings()]
    rows.sort(key=lambda r: tuple(r[k] for k in spec.sort_key))
    return rows


def _csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def csv_bytes(spec: ExportTable, rows: Sequence[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = [c.name for c in spec.columns]
    writer.writerow(names)
    writer.writerows([_csv_text(r[n]) for n in names] for r in rows)
    return buf.getvalue().encode("utf-8")


def arrow_schema(spec: ExportTable) -> pa.Schema:
    return pa.schema([
        pa.field(c.name, _arrow_type(c), nullable=c.nullable,
                 metadata={"description": c.comment} if c.comment else None)
        for c in spec.columns
    ], metadata={"table": spec.name})


def parquet_bytes(spec: ExportTable, rows: Sequence[dict]) -> bytes:
    schema = arrow_schema(spec)
    table = pa.Table.from_pydict({f.name: pa.array([r[f.name] for r in rows], type=f.type) for f in schema},
                                 schema=schema)
    sink = pa.BufferOutputStream()
    # No write time is stored in Parquet metadata (only `created_by`, the library version): same rows, same bytes.
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class ExportFile:
    """One file of a month's export, with its bytes, before it is written."""

    table: str
    month: str
    format: str
    body: bytes
    rows: int

    @property
    def name(self) -> str:
        return f"{self.table}.{self.format}"

    @property
    def key(self) -> str:
        return f"{folder_of(self.table, self.month)}/{self.name}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def build_month(conn: sa.Connection, month: str, tables: Sequence[ExportTable] = EXPORT_TABLES) -> list[ExportFile]:
    """Every file of the month's export, built in memory (nothing is written yet)."""
    label = month_bounds(month)[0]
    files = []
    for spec in tables:
        rows = read_month(conn, spec, month)
        files.append(ExportFile(spec.name, label, "csv", csv_bytes(spec, rows), len(rows)))
        files.append(ExportFile(spec.name, label, "parquet", parquet_bytes(spec, rows), len(rows)))
    return files


def manifest_bytes(table: str, month: str, files: Sequence[ExportFile]) -> bytes:
    """The manifest of one table's month: files, rows, bytes and sha256 (deterministic, no timestamps)."""
    label, first, following = month_bounds(month)
    spec = next((s for s in EXPORT_TABLES if s.name == table), None)
    doc = {
        "manifest_version": MANIFEST_VERSION,
        "table": table,
        "month": label,
        "selection": (f"{spec.month_column} >= '{first}' and {spec.month_column} < '{following}'" if spec else None),
        "columns": ([{"name": c.name, "type": str(_arrow_type(c))} for c in spec.columns] if spec else None),
        "files": [{"name": f.name, "format": f.format, "rows": f.rows, "bytes": len(f.body), "sha256": f.sha256}
                  for f in files],
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


@dataclass(frozen=True)
class WrittenFile:
    key: str
    uri: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class MonthExport:
    """What exporting one month wrote (manifests included) and which stale files it removed."""

    month: str
    files: list[WrittenFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def rows(self, table: str) -> int:
        return max((f.rows for f in self.files if f.key.startswith(f"{table}/") and f.rows >= 0), default=0)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def write_month(target: ExportTarget, files: Sequence[ExportFile]) -> MonthExport:
    """Write the files, then each table's manifest, then remove that month's other (stale) files."""
    if not files:
        raise ValueError("nothing to export")
    out = MonthExport(files[0].month)
    by_table: dict[str, list[ExportFile]] = {}
    for f in files:
        by_table.setdefault(f.table, []).append(f)
    for table, group in by_table.items():
        for f in group:
            target.put(f.key, f.body, CONTENT_TYPES[f.format])
            out.files.append(WrittenFile(f.key, target.uri_of(f.key), f.rows, len(f.body), f.sha256))
        folder = folder_of(table, out.month)
        manifest = manifest_bytes(table, out.month, group)
        target.put(f"{folder}/{MANIFEST}", manifest, CONTENT_TYPES["json"])
        out.files.append(WrittenFile(f"{folder}/{MANIFEST}", target.uri_of(f"{folder}/{MANIFEST}"), -1,
                                     len(manifest), hashlib.sha256(manifest).hexdigest()))
        keep = {f.key for f in group} | {f"{folder}/{MANIFEST}"}
        for key in target.list(folder):
            if key not in keep:
                target.delete(key)
                out.removed.append(target.uri_of(key))
    return out


def export_month(conn: sa.Connection, target: ExportTarget, month: str) -> MonthExport:
    """Read the month's rows through `conn` and write its export to `target`."""
    return write_month(target, build_month(conn, month))


def read_manifest(target: ExportTarget, table: str, month: str) -> dict | None:
    body = target.get(f"{folder_of(table, month)}/{MANIFEST}")
    return None if body is None else json.loads(body)


def verify_month(target: ExportTarget, table: str, month: str) -> list[str]:
    """What a careful reader checks: every file the manifest lists is there with its sha256 ([] = ok)."""
    manifest = read_manifest(target, table, month)
    if manifest is None:
        return [f"no manifest at {target.uri_of(folder_of(table, month) + '/' + MANIFEST)}"]
    problems = []
    for entry in manifest["files"]:
        key = f"{folder_of(table, month)}/{entry['name']}"
        body = target.get(key)
        if body is None:
            problems.append(f"missing {target.uri_of(key)}")
        elif hashlib.sha256(body).hexdigest() != entry["sha256"]:
            problems.append(f"sha256 mismatch for {target.uri_of(key)}")
    return problems
