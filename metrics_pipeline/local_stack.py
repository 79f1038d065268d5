"""The production deployment on one machine: PostgreSQL, a local S3, the Dagster daemon and webserver.

`make prod` (`python -m metrics_pipeline.local_stack start`) starts, in a data folder (./data/prod):

- a PostgreSQL 15 server (`postgres/`) holding the Dagster instance (database `dagster`), the
  warehouse (`warehouse`) and the four source databases, seeded with demo data on first start;
- a moto S3 server for the compute logs, unless METRICS_COMPUTE_LOG_S3_BUCKET names a real bucket;
- `dagster-daemon run` and `dagster-webserver` on deploy/dagster.yaml (copied into `dagster_home/`)
  and deploy/workspace.yaml,
- `metrics-pipeline exporter`, the pipeline's health and KPIs for Prometheus (default port 9464),

each in the background in its own process group, with a pid file and a log under `logs/`, then waits
until the webserver answers GraphQL with the code location loaded and every daemon healthy. Starting
again starts only what is not running. `make prod-stop` (`... stop`) stops them all; the data stays.
The end-to-end tests run the same classes in temporary folders.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from metrics_pipeline.contract import DATABASES
from metrics_pipeline.settings import ConfigError, url_env_var

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
BIN_DIR = Path(sys.executable).parent  # the venv's console scripts: dagster-webserver, moto_server, ...
INSTANCE_DB = "dagster"
WAREHOUSE_DB = "warehouse"
COMPUTE_LOG_BUCKET_ENV = "METRICS_COMPUTE_LOG_S3_BUCKET"
COMPUTE_LOG_PREFIX_ENV = "METRICS_COMPUTE_LOG_S3_PREFIX"
POOL_LIMIT_ENV = "METRICS_SOURCE_DB_CONCURRENCY"
LOCAL_BUCKET = "metrics-compute-logs"
DEFAULT_PREFIX = "dagster/compute-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ with `env` applied, restored afterwards."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- PostgreSQL ------------------------------------------------------------------------------------

def _pg_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL server binary {name!r} not found on PATH or in /usr/lib/postgresql "
                           "(install postgresql-15)")
    return str(found)


def _unprivileged_user() -> str:
    """The OS account a server started by root runs as: `postgres`, else a system user made once."""
    for name in ("postgres", "metrics_pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "metrics_pg"], check=True)
    return "metrics_pg"


class PostgresServer:
    """A PostgreSQL server whose files live in `root`: kept across stop/start (make prod), or, when
    `root` is None, in a new temporary folder removed by `stop()` (tests; `durable=False` also turns
    fsync off there). Root cannot run a server (initdb refuses): it runs as an unprivileged account.
    Authentication is `trust` on 127.0.0.1 and the socket in `root`, superuser `postgres`."""

    user = "postgres"

    def __init__(self, root: Path | None = None, port: int | None = None, *, timezone: str | None = None,
                 durable: bool = True) -> None:
        self.throwaway = root is None
        self.root = Path(tempfile.mkdtemp(prefix="metrics_pg_") if root is None else root).resolve()
        self.port = port or free_port()
        self.timezone = timezone
        self.durable = durable
        self._as = [] if os.geteuid() != 0 else ["runuser", "-u", _unprivileged_user(), "--"]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed (exit {done.returncode}): {done.stderr.strip()}\n"
                               f"last lines of {self.log}:\n{_tail(self.log)}")
        return done

    def running(self) -> bool:
        return (self.data / "PG_VERSION").exists() and \
            self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0

    def start(self) -> PostgresServer:
        """Initialize the cluster if `root` has none yet, then start the server (no-op if running)."""
        if self.running():
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.root, user=self._as[2])
            if self._run("test", "-w", str(self.root), check=False).returncode:
                raise RuntimeError(f"the server's account {self._as[2]} cannot reach {self.root}: "
                                   "make its parent folders traversable (chmod o+x)")
        if not (self.data / "PG_VERSION").exists():
            self._run(_pg_binary("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                      "--locale=C")
        opts = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1", "-c max_connections=200"]
        if self.timezone:
            opts.append(f"-c timezone={self.timezone}")
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-o", " ".join(opts), "-l", str(self.log),
                  "-w", "start")
        return self

    def stop(self) -> None:
        """Stop the server (a throwaway one immediately, and its folder is removed); no-op if stopped."""
        try:
            if self.running():
                self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate" if self.throwaway else "fast",
                          "-w", "stop")
        finally:
            if self.throwaway:
                shutil.rmtree(self.root, ignore_errors=True)

    def _connect(self, database: str = "postgres"):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=database)
        conn.autocommit = True
        return conn

    def ensure_database(self, name: str) -> str:
        """The URL of database `name`, created if it does not exist."""
        with contextlib.closing(self._connect()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_database(self, prefix: str = "db") -> str:
        """The URL of a new, empty database named `<prefix>_<random>`."""
        return self.ensure_database(f"{prefix}_{uuid.uuid4().hex[:10]}")

    def has_table(self, database: str, table: str) -> bool:
        with contextlib.closing(self._connect(database)) as conn, conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            return cur.fetchone()[0]

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"


# ---- background processes --------------------------------------------------------------------------

def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


class BackgroundProcess:
    """A command run in the background as the leader of its own process group (so everything it
    starts, code servers and run workers included, stops with it), with `<name>.pid` and `<name>.log`
    in `folder`."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.pid_file = folder / f"{name}.pid"
        self.log = folder / f"{name}.log"
        self._popen: subprocess.Popen | None = None

    def start(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(f"\n---- {dt.datetime.now():%Y-%m-%d %H:%M:%S} {' '.join(cmd)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_file.write_text(json.dumps({"pid": self._popen.pid, "cmd": cmd[0]}))

    def _saved(self) -> dict | None:
        try:
            saved = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if self._popen is not None and self._popen.pid == saved["pid"]:
            self._popen.poll()  # reap it if it has exited
        return saved

    def _group(self) -> int | None:
        """Our process group's id while any of its processes lives. The leader may be gone (a crash),
        but if its pid now runs another program, the pid was reused: not ours."""
        saved = self._saved()
        if saved is None or not _group_members(saved["pid"]):
            return None
        try:
            cmdline = Path(f"/proc/{saved['pid']}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return saved["pid"]
        return saved["pid"] if saved["cmd"] in cmdline else None

    @property
    def pid(self) -> int | None:
        """The leader's pid (also the group id), if the leader is alive."""
        saved = self._saved()
        if saved is not None and self._popen is not None and self._popen.pid == saved["pid"] \
                and self._popen.returncode is None:
            # our own child, not exited: alive even before it has exec'd its program and made its
            # group, when /proc still shows this process's command line (a busy machine's window)
            return saved["pid"]
        pgid = self._group()
        return pgid if pgid is not None and pgid in _group_members(pgid) else None

    def alive(self) -> bool:
        return self.pid is not None

    @staticmethod
    def _signal_group(pgid: int, sig: int, timeout: float) -> bool:
        """Signal a process group; True once none of its processes is left (within `timeout`)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _group_members(pgid):
                return True
            time.sleep(0.2)
        return False

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM to the group, SIGKILL to what is left after `timeout`. True if it was running."""
        pgid = self._group()
        if pgid is not None and not self._signal_group(pgid, signal.SIGTERM, timeout):
            if not self._signal_group(pgid, signal.SIGKILL, 10):
                raise RuntimeError(f"{self.name} (process group {pgid}) still has processes after SIGKILL: "
                                   f"{_group_members(pgid)}")
        if self._popen is not None:
            self._popen.poll()
        self.pid_file.unlink(missing_ok=True)
        return pgid is not None

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a crash would (the pid file is left, as after a crash)."""
        pgid = self._group()
        if pgid is not None and not self._signal_group(pgid, signal.SIGKILL, 10):
            raise RuntimeError(f"{self.name} (process group {pgid}) survived SIGKILL: {_group_members(pgid)}")
        if self._popen is not None:
            self._popen.poll()


# ---- S3 ------------------------------------------------------------------------------------------

class MotoS3Server:
    """moto's S3 API as a server on 127.0.0.1 in a background process: real HTTP S3 for local runs and
    tests, in memory (its buckets are gone when it stops). `env()` is what a client process needs."""

    region = "us-east-1"
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # never pick up a developer's real profile or config
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.process = BackgroundProcess("moto", folder)
        self.port = port or free_port()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoS3Server:
        if self.process.alive():
            return self
        server = BIN_DIR / "moto_server"
        if not server.exists():
            raise RuntimeError(f"{server} not found: install the dev extra (pip install -e '.[dev]')")
        self.process.start([str(server), "-H", "127.0.0.1", "-p", str(self.port)], dict(os.environ),
                           self.process.log.parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                raise RuntimeError(f"moto_server exited; last lines of {self.process.log}:\n{_tail(self.process.log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.2)
        raise RuntimeError(f"moto_server did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        self.process.stop()

    def env(self) -> dict[str, str]:
        """Fake credentials and this endpoint for every S3 client of a process (AWS_ENDPOINT_URL_S3)."""
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
        return {**self.credentials, "AWS_ENDPOINT_URL_S3": self.endpoint_url, "NO_PROXY": no_proxy,
                "no_proxy": no_proxy}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def create_bucket(self, name: str | None = None) -> str:
        """Bucket `name` (default: a new unique name), created if missing."""
        name, client = name or f"bucket-{uuid.uuid4().hex[:12]}", self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        return name


# ---- the stack -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Seed:
    """Demo sources to load on first start: `days` days ending `end` (default yesterday, UTC)."""

    days: int = 90
    scale: float = 1.0
    end: dt.date | None = None
    seed: int = 42

    @property
    def last_day(self) -> dt.date:
        return self.end or dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)

    @property
    def first_day(self) -> dt.date:
        return self.last_day - dt.timedelta(days=self.days - 1)


def pool_limit() -> int:
    """METRICS_SOURCE_DB_CONCURRENCY: concurrent steps allowed per source database (default 2)."""
    raw = os.environ.get(POOL_LIMIT_ENV, "2")
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{POOL_LIMIT_ENV}={raw!r} must be a whole number of concurrent queries, at least 1")
    return int(raw)


READY_QUERY = """
query StackReady {
  workspaceOrError {
    __typename
    ... on Workspace { locationEntries { name loadStatus locationOrLoadError {
        __typename ... on PythonError { message } } } }
    ... on PythonError { message }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}
"""


class LocalStack:
    """Everything `make prod` runs, rooted in one data folder. `state.json` keeps the ports and the
    first seeded day between starts."""

    def __init__(self, root: Path, *, web_port: int = 3000, exporter_port: int | None = None, durable: bool = True,
                 deploy_dir: Path = DEPLOY_DIR) -> None:
        self.root = Path(root).resolve()
        self.deploy_dir = deploy_dir
        self.state_file = self.root / "state.json"
        self.state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.state.setdefault("pg_port", free_port())
        self.state.setdefault("web_port", web_port)
        self._requested_port = web_port
        self._requested_exporter_port = exporter_port or self.state.get("exporter_port") or free_port()
        logs = self.root / "logs"
        self.postgres = PostgresServer(self.root / "postgres", self.state["pg_port"], durable=durable)
        self.moto = MotoS3Server(logs, self.state.get("s3_port"))
        self.daemon = BackgroundProcess("daemon", logs)
        self.webserver = BackgroundProcess("webserver", logs)
        self.exporter = BackgroundProcess("exporter", logs)
        self.dagster_home = self.root / "dagster_home"

    @property
    def web_port(self) -> int:
        return self.state["web_port"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.state['exporter_port']}/metrics"

    @property
    def uses_local_s3(self) -> bool:
        """True unless the environment names a real compute-log bucket (then no moto server is started)."""
        return not os.environ.get(COMPUTE_LOG_BUCKET_ENV)

    def source_urls(self) -> dict[str, str]:
        return {db: self.postgres.url(db) for db in DATABASES}

    def env(self) -> dict[str, str]:
        """The environment of the daemon and the webserver, hence of every run: ours over os.environ."""
        return {**os.environ, **self.stack_env()}

    def stack_env(self) -> dict[str, str]:
        """The variables the stack sets: the instance, the databases, the compute-log bucket."""
        env = {
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.postgres.port),
            "DAGSTER_PG_USER": self.postgres.user,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": INSTANCE_DB,
            "METRICS_WAREHOUSE_URL": self.postgres.url(WAREHOUSE_DB),
            **{url_env_var(db): url for db, url in self.source_urls().items()},
            "METRICS_DATA_DIR": str(self.root),  # the monthly exports land in <root>/exports
            COMPUTE_LOG_PREFIX_ENV: os.environ.get(COMPUTE_LOG_PREFIX_ENV, DEFAULT_PREFIX),
        }
        if "start_date" in self.state and not os.environ.get("METRICS_START_DATE"):
            env["METRICS_START_DATE"] = self.state["start_date"]  # partitions begin with the seeded data
        if self.uses_local_s3:
            env.update(self.moto.env(), **{COMPUTE_LOG_BUCKET_ENV: LOCAL_BUCKET})
        return env

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(self.state, indent=2))

    def running(self) -> bool:
        processes = [self.daemon, self.webserver, self.exporter] + ([self.moto.process] if self.uses_local_s3 else [])
        return all(p.alive() for p in processes) and self.postgres.running()

    def start(self, seed: Seed = Seed(), log=print, timeout: float = 300.0) -> None:
        """Start whatever is not running, seeding the sources on first start; wait until ready."""
        if self.running():
            log(f"already running: {self.url} (stop with `make prod-stop`)")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        log(f"PostgreSQL on 127.0.0.1:{self.postgres.port} (data in {self.postgres.data})")
        self.postgres.start()
        for name in (INSTANCE_DB, WAREHOUSE_DB, *DATABASES):
            self.postgres.ensure_database(name)
        self.prepare_warehouse()
        if not self.postgres.has_table("app", "users"):
            self._seed(seed, log)
        if self.uses_local_s3:
            self.moto.start()
            self.state["s3_port"] = self.moto.port
            self.moto.create_bucket(LOCAL_BUCKET)
            log(f"local S3 (moto) on {self.moto.endpoint_url}, compute logs in s3://{LOCAL_BUCKET}/{DEFAULT_PREFIX}")
        self._save_state()
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.deploy_dir / "dagster.yaml", self.dagster_home / "dagster.yaml")
        self.configure_instance()
        self.start_daemon()
        if not self.webserver.alive():
            self.state["web_port"] = self._requested_port
            self._save_state()
            self.webserver.start([str(BIN_DIR / "dagster-webserver"), "-w", self.workspace, "-h", "127.0.0.1",
                                  "-p", str(self.web_port)], self.env(), self.root)
        self.start_exporter()
        log(f"dagster-daemon (pid {self.daemon.pid}) and dagster-webserver (pid {self.webserver.pid}), "
            f"logs in {self.daemon.log.parent}; waiting for the code location and the daemons ...")
        self.wait_ready(timeout)
        log(f"ready: open {self.url}   (stop with `make prod-stop`; data stays in {self.root})")
        log(f"metrics for Prometheus: {self.exporter_url} (scrape config: deploy/prometheus/prometheus.yml)")

    @property
    def workspace(self) -> str:
        return str(self.deploy_dir / "workspace.yaml")

    def start_daemon(self) -> None:
        """`dagster-daemon run` (schedules, sensors, backfills, the run queue, run monitoring and retries)."""
        if not self.daemon.alive():
            self.daemon.start([str(BIN_DIR / "dagster-daemon"), "run", "-w", self.workspace], self.env(), self.root)

    def start_exporter(self) -> None:
        """`metrics-pipeline exporter` on the stack's instance and warehouse (the port is kept in state.json)."""
        if not self.exporter.alive():
            self.state["exporter_port"] = self._requested_exporter_port
            self._save_state()
            self.exporter.start([str(BIN_DIR / "metrics-pipeline"), "exporter", "--host", "127.0.0.1",
                                 "--port", str(self.state["exporter_port"])], self.env(), self.root)

    def _seed(self, seed: Seed, log) -> None:
        from metrics_pipeline.seed import seed_sources

        log(f"seeding {seed.days} days of demo sources ({seed.first_day} .. {seed.last_day}, scale {seed.scale:g})")
        counts = seed_sources(self.source_urls(), days=seed.days, end=seed.last_day, scale=seed.scale,
                              seed=seed.seed, progress=lambda line: log(f"  {line}") if line.startswith("seed:") else None)
        log(f"  {sum(counts.values()):,} source rows")
        self.state["start_date"] = seed.first_day.isoformat()

    def prepare_warehouse(self) -> None:
        """Create the warehouse's tables now, before the first run's parallel steps race to create them."""
        import sqlalchemy as sa

        from metrics_pipeline.resources.warehouse import ensure_schema

        engine = sa.create_engine(self.postgres.url(WAREHOUSE_DB))
        try:
            ensure_schema(engine)
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def instance(self):
        """The deployment's DagsterInstance (from DAGSTER_HOME), used with the stack's environment."""
        import dagster as dg

        with environment(self.env()), dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            yield instance

    def configure_instance(self) -> None:
        """Create the instance's tables (before two processes race to) and give every source pool
        METRICS_SOURCE_DB_CONCURRENCY slots."""
        from metrics_pipeline.defs.execution import source_pool

        limit = pool_limit()
        with self.instance() as instance:
            for db in DATABASES:
                instance.event_log_storage.set_concurrency_slots(source_pool(db), limit)

    def graphql(self):
        from dagster_graphql import DagsterGraphQLClient

        return DagsterGraphQLClient("127.0.0.1", port_number=self.web_port, timeout=60)

    def wait_ready(self, timeout: float) -> None:
        """Until the webserver answers with the code location loaded and every required daemon healthy."""
        from dagster_graphql import DagsterGraphQLClientError

        client, deadline, waiting_for = self.graphql(), time.monotonic() + timeout, "the webserver"
        while time.monotonic() < deadline:
            for process in (self.daemon, self.webserver, self.exporter):
                if not process.alive():
                    raise RuntimeError(f"{process.name} exited; last lines of {process.log}:\n{_tail(process.log)}")
            try:
                data = client._execute(READY_QUERY)
            except DagsterGraphQLClientError:
                time.sleep(1)
                continue
            workspace = data["workspaceOrError"]
            if workspace["__typename"] == "PythonError":
                raise RuntimeError(f"the webserver cannot load deploy/workspace.yaml: {workspace['message']}")
            waiting_for = "the code location"
            entries = workspace["locationEntries"]
            for entry in entries:
                if (entry["locationOrLoadError"] or {}).get("__typename") == "PythonError":
                    raise RuntimeError(f"code location {entry['name']} failed to load: "
                                       f"{entry['locationOrLoadError']['message']}")
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                sick = [d["daemonType"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
                        if d["required"] and not d["healthy"]]
                if not sick and self._exporter_serving():
                    return
                waiting_for = "daemons " + ", ".join(sick) if sick else "the metrics exporter"
            time.sleep(1)
        raise RuntimeError(f"not ready after {timeout:.0f} s: waiting for {waiting_for} (logs in {self.daemon.log.parent})")

    def _exporter_serving(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.exporter_url, timeout=10) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self, log=print) -> None:
        """Stop the exporter, the webserver, the daemon (runs in progress are interrupted), moto and PostgreSQL."""
        for process in (self.exporter, self.webserver, self.daemon, self.moto.process):
            if process.stop():
                log(f"stopped {process.name}")
        if self.postgres.running():
            self.postgres.stop()
            log("stopped PostgreSQL")
        log(f"data kept in {self.root}")

    def status(self) -> dict[str, bool]:
        return {"postgres": self.postgres.running(), "moto": self.moto.process.alive(),
                "daemon": self.daemon.alive(), "webserver": self.webserver.alive(), "exporter": self.exporter.alive()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m metrics_pipeline.local_stack", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("start", "stop", "status", "env"),
                   help="env prints `export` lines that point a shell (psql, metrics-pipeline) at the stack")
    p.add_argument("--data", type=Path, default=Path("data/prod"), help="data folder (default ./data/prod)")
    p.add_argument("--port", type=int, default=3000, help="webserver port (default 3000)")
    p.add_argument("--exporter-port", type=int, default=9464, help="metrics exporter port (default 9464)")
    p.add_argument("--days", type=int, default=90, help="days of demo sources seeded on first start (default 90)")
    p.add_argument("--scale", type=float, default=1.0, help="volume of the demo sources (default 1.0)")
    args = p.parse_args(argv)
    stack = LocalStack(args.data, web_port=args.port, exporter_port=args.exporter_port)
    try:
        if args.command == "start":
            stack.start(Seed(days=args.days, scale=args.scale))
        elif args.command == "stop":
            stack.stop()
        elif args.command == "env":
            if not stack.state_file.exists():
                raise RuntimeError(f"no stack in {stack.root}: start it first (make prod)")
            print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in stack.stack_env().items()))
        else:
            for part, up in stack.status().items():
                print(f"{part:<10} {'running' if up else 'stopped'}")
            return 0 if stack.running() else 1
    except (RuntimeError, ConfigError) as e:
        print(f"local_stack {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
