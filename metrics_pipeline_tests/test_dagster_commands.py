"""What a Dagster user types in the project root of a fresh clone, with DAGSTER_HOME unset: Dagster
then builds a temporary instance from the dagster.yaml of the working directory. Each command runs
in a folder laid out like the clone's root (its config files, the package), without `.env`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from metrics_pipeline.local_stack import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "metrics_pipeline"


@pytest.fixture
def project(tmp_path) -> Path:
    """The clone's root as Dagster sees it: its instance, workspace and project files, the package."""
    root = tmp_path / "clone"
    root.mkdir()
    for name in ("dagster.yaml", "workspace.yaml", "pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, root / name)
    (root / "metrics_pipeline").symlink_to(ROOT / "metrics_pipeline")
    return root


def _env(tmp_path: Path) -> dict[str, str]:
    """The user's shell: the project's virtual environment active, no DAGSTER_HOME, no METRICS_* set."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("METRICS_")}
    env.update(VIRTUAL_ENV=sys.prefix, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
               METRICS_DATA_DIR=str(tmp_path / "data"))  # the embedded default, kept out of the repository
    return env


def _run(args: list[str], project: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=project, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300)


def _no_warning_of_ours(output: str) -> None:
    """Loading the code location prints no beta, preview or deprecation warning (defs/beta.py)."""
    for kind in ("BetaWarning", "PreviewWarning", "DeprecationWarning", "StockStorageFallbackWarning"):
        assert kind not in output, output


@pytest.mark.parametrize("command, expected", [
    (["dagster", "definitions", "validate", "-w", "workspace.yaml"], "All code locations passed validation"),
    (["dagster", "definitions", "validate"], "All code locations passed validation"),  # pyproject [tool.dagster]
    (["dagster", "asset", "list", "-m", "metrics_pipeline.definitions"], "daily_activity_metrics"),
    (["dg", "check", "defs"], "All definitions loaded successfully"),
    (["dg", "list", "defs", "--json"], "daily_activity_metrics"),
])
def test_dagster_commands_work_in_the_project_root_without_dagster_home(command, expected, project, tmp_path):
    done = _run(command, project, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert expected in output
    assert "DAGSTER_HOME" not in output.replace("set the environment variable DAGSTER_HOME", "")
    _no_warning_of_ours(output)
    assert not list(project.glob(".tmp_dagster_home_*"))  # Dagster removed its temporary instance


def _location_loaded(port: int) -> bool:
    query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                      "locationOrLoadError { __typename } } } } }"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps(query).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            entries = json.load(response)["data"]["workspaceOrError"]["locationEntries"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return any(e["name"] == LOCATION and e["loadStatus"] == "LOADED"
               and e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)


@pytest.mark.parametrize("command", [["dagster", "dev"], ["dg", "dev"]])
def test_dev_server_starts_in_the_project_root_without_dagster_home(command, project, tmp_path):
    """`dagster dev` / `dg dev`: the webserver answers with the code location loaded, then stops cleanly."""
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(BIN / command[0]), *command[1:], "-h", "127.0.0.1", "-p", str(port)],
                                cwd=project, env=_env(tmp_path), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not _location_loaded(port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no code location after 180 s:\n" + log.read_text()
            time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log.read_text()
    assert "Traceback" not in output, output
    _no_warning_of_ours(output)
