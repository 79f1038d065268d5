"""A throwaway PostgreSQL 15 server in a temporary directory, for tests.

Its `TimeZone` is deliberately not UTC (as on many real servers), so any query that lets an aware
timestamp or `now()` go through the session time zone shows up as a wrong number.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg2

SERVER_TIMEZONE = "America/Los_Angeles"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL server binary {name!r} not found on PATH or in /usr/lib/postgresql")
    return str(found)


class PostgresServer:
    """Start with `start()`, stop with `stop()`; `url(db)` gives a SQLAlchemy URL."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="metrics_pg_"))
        self.port = _free_port()
        self.user = "postgres"
        # initdb refuses to run as root: run the server as an unprivileged account
        self._as = [] if os.geteuid() != 0 else ["runuser", "-u", self._os_user(), "--"]

    @staticmethod
    def _os_user() -> str:
        for name in ("postgres", "metrics_pg"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        subprocess.run(["useradd", "--system", "--no-create-home", "metrics_pg"], check=True)
        return "metrics_pg"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        if self._as:
            shutil.chown(self.dir, user=self._as[2])
        data = self.dir / "data"
        self._run(_binary("initdb"), "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--locale=C")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c timezone={SERVER_TIMEZONE} "
                f"-c max_connections=200")
        self._run(_binary("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self.dir / "server.log"),
                  "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(_binary("pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self, prefix: str = "db") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"
