"""The Dagster UI in a real browser: Debian's headless Chromium, driven by Playwright, against a running
`dagster-webserver` on small seeded data.

The data is made as a user makes it: `metrics-pipeline seed`, `inject` (one planted problem) and
`backfill`, then `daily_activity_metrics` once per partition as the nightly schedule runs it (both
put each day's metric values on that day's materialization, which the Plots view charts).

The test writes the README's screenshots to a temporary folder; with METRICS_WRITE_SCREENSHOTS=1 it
also copies them into docs/screenshots/.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from metrics_pipeline.local_stack import free_port
from metrics_pipeline.metrics.catalog import DOMAINS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
DAYS = 21
METRIC_ASSET = "daily_activity_metrics"
DAILY_CHECKS = ("metric_anomalies", "metric_integrity", "source_expectations", "source_volume")
LINEAGE_DOMAINS = ("activity", "revenue")
UI_TIMEOUT_MS = 60_000  # the first GraphQL loads are slow on a busy 2-core machine
expect.set_options(timeout=UI_TIMEOUT_MS)
VIEWPORT = {"width": 1440, "height": 900}
# Skip the community sign-up dialog the UI opens on localhost.
NO_NUX = "window.localStorage.setItem('communityNux', JSON.stringify('1'))"
# One run per partition of one asset, as the nightly schedule makes them (argv: asset, keys...).
NIGHTLY_RUNS = """
import sys
import dagster as dg
from metrics_pipeline.definitions import defs
from metrics_pipeline.defs.automation import job_name

job = defs.resolve_job_def(job_name("day"))
for key in sys.argv[2:]:
    job.execute_in_process(asset_selection=[dg.AssetKey(sys.argv[1])], partition_key=key,
                           instance=dg.DagsterInstance.get(), tags={"grain": "day", "trigger": "ui_test"},
                           run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
"""


def _run(args: list[str], env: dict, cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args[:3])} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dagster-webserver exited {server.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise AssertionError(f"dagster-webserver not serving after 180 s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """Stop the webserver and the code server it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)  # whatever of the group is still there
    server.wait()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """A dagster-webserver on seeded, backfilled data; yields what the tests need to know about it."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("ui")
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    end = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=DAYS - 1)
    planted = end - dt.timedelta(days=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), METRICS_DATA_DIR=str(work / "data"), METRICS_START_DATE=start.isoformat(),
               METRICS_TIMEZONE="UTC")
    cli = str(BIN / "metrics-pipeline")
    # every process runs in `work`, where no .env of a developer's demo can override this environment
    _run([cli, "seed", "--days", str(DAYS), "--end", end.isoformat(), "--scale", "0.3"], env, work)
    _run([cli, "inject", f"nulls:user_sessions.user_id:{planted}"], env, work)
    _run([cli, "backfill", "--start", start.isoformat(), "--end", end.isoformat(), "--grain", "day"], env, work)

    port = free_port()
    log = work / "webserver.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        days = [(start + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
        _run([sys.executable, "-c", NIGHTLY_RUNS, METRIC_ASSET, *days], env, work)
        url = f"http://127.0.0.1:{port}"
        _wait_until_serving(url, server, log)
        yield {"url": url, "end": end.isoformat(), "planted": planted.isoformat(),
               "warehouse": work / "data" / "warehouse.db", "shots": work / "screenshots"}
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def browser(ui):
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-background-networking"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(NO_NUX)
    context.set_default_timeout(UI_TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _screenshot(page, ui, name: str) -> None:
    """Save the page as `name`; with METRICS_WRITE_SCREENSHOTS=1 also into docs/screenshots/."""
    ui["shots"].mkdir(exist_ok=True)
    path = ui["shots"] / name
    page.screenshot(path=path)
    if os.environ.get("METRICS_WRITE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "screenshots").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ROOT / "docs" / "screenshots" / name)


def test_lineage_shows_source_tables_feeding_metric_assets(ui, page):
    """The lineage graph draws an edge from each source table to the daily metric assets reading it."""
    domains = {d.name: d for d in DOMAINS}
    tables = {t for name in LINEAGE_DOMAINS for t in domains[name].tables_for("day")}
    selection = " or ".join(f'1+key:"daily_{name}_metrics"' for name in LINEAGE_DOMAINS)
    groups = ",".join(f"global@global:{g}" for g in ("app_source", *LINEAGE_DOMAINS))
    page.goto(f"{ui['url']}/asset-groups~{quote(selection, safe='')}/?expanded={groups}")

    for node in [*(f"daily_{name}_metrics" for name in LINEAGE_DOMAINS), *sorted(tables)]:
        expect(page.get_by_text(node, exact=True).first).to_be_visible()
    # Only the selected assets are drawn, and edges to assets outside the selection are hidden: every
    # edge joins a source table to the metric asset that reads it.
    edges = sum(len(domains[name].tables_for("day")) for name in LINEAGE_DOMAINS)
    expect(page.locator("svg path[marker-end]")).to_have_count(edges)
    expect(page.get_by_text(re.compile(r"^\d+ partitions$"))).to_have_count(len(LINEAGE_DOMAINS))
    expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)

    zoom_out = page.locator("button:has([aria-label='zoom_out'])")
    for _ in range(5):
        zoom_out.click()
    page.wait_for_timeout(1000)  # let the zoom animation settle before the picture
    _screenshot(page, ui, "lineage.png")


def test_metric_asset_shows_partitions_and_latest_metadata(ui, page):
    """Every partition materialized; the latest materialization's metadata holds the warehouse's value."""
    page.goto(f"{ui['url']}/assets/{METRIC_ASSET}?view=partitions")
    expect(page.get_by_text(f"Materialized ({DAYS})", exact=True)).to_be_visible()
    closed_since = (dt.datetime.now(dt.timezone.utc).date() - dt.date.fromisoformat(ui["end"])).days - 1
    expect(page.get_by_text(f"Missing ({closed_since})", exact=True)).to_be_visible()  # 0 unless past midnight
    expect(page.get_by_text(ui["end"], exact=True).first).to_be_visible()

    page.goto(f"{ui['url']}/assets/{METRIC_ASSET}")
    expect(_metadata_value(page, "last_period")).to_have_text(ui["end"])
    with contextlib.closing(sqlite3.connect(ui["warehouse"])) as db:
        active_users = db.execute(
            "SELECT value FROM metric_values WHERE metric = 'active_users' AND grain = 'day' "
            "AND period_start = ? AND dimension = ''", (ui["end"],)).fetchone()[0]
    expect(_metadata_value(page, "active_users")).to_have_text(f"{active_users:g}")


def _metadata_value(page, key: str):
    """The value cell of the asset's metadata row `key` (the first whose first cell is exactly `key`:
    the `preview` row nests a table whose rows also start with metric names)."""
    return page.locator(f"xpath=//tr[td[1][normalize-space()='{key}']]/td[last()]").first


def test_metric_values_plotted_per_partition(ui, page):
    """The asset's Plots view charts each metric's value by partition."""
    page.goto(f"{ui['url']}/assets/{METRIC_ASSET}")
    page.get_by_role("button", name="Plots").click()
    expect(page.get_by_text("When graphing values by partition", exact=False)).to_be_visible()
    for metric in ("active_users", "new_users", "sessions"):  # a chart under each metric's name
        expect(page.locator(f"xpath=//span[text()='{metric}']/../..//canvas")).to_be_visible()

    page.get_by_text("Metadata", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1000)  # charts animate their first draw
    _screenshot(page, ui, "metric_plot.png")


def test_checks_of_a_partition(ui, page):
    """The asset's checks are listed; the planted day fails source_expectations, the other days pass."""
    page.goto(f"{ui['url']}/assets/{METRIC_ASSET}?view=checks&checkDetail=source_expectations")
    for check in DAILY_CHECKS:
        expect(page.get_by_text(check, exact=True).first).to_be_visible()
    tabs = page.get_by_role("tablist").filter(has=page.get_by_role("tab", name="Execution history"))
    tabs.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text("Failed (1)", exact=True)).to_be_visible()
    expect(page.get_by_text(f"Passed ({DAYS - 1})", exact=True)).to_be_visible()

    page.locator(f"[data-tooltip='{ui['planted']}']").first.click()
    expect(page.get_by_text("user_id must not be NULL", exact=False)).to_be_visible()
    expect(page.get_by_text("invalid_rows", exact=True)).to_be_visible()
    _screenshot(page, ui, "partition_checks.png")
