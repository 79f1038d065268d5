"""`make bench`: how fast backfills and nightly runs are, and how much memory they take, on generated data.

Seeds the four source databases (SQLite by default, `--postgres` for a throwaway PostgreSQL 15
server) and measures, on the same data:

- floor: every asset's own SQL for the whole range, one statement per query, bare (no Dagster), summed;
- per-day loop: the same SQL once per day (hours: the day's 24 in one call; weeks and months once
  per period), bare, over a sample of days, extrapolated to the range;
- single-run backfill: `metrics-pipeline backfill` of the whole range, all grains (a subprocess; its
  whole process tree's peak RSS is sampled); on PostgreSQL it runs grains side by side by default,
  so there the same backfill one grain at a time (`--jobs 1`) is measured too;
- per-partition backfill: one Dagster run per partition over a sample, extrapolated to the range,
  each run a process of its own as Dagster's run launcher starts them (the runs alone, as if they
  shared a process, are reported too: a lower bound);
- nightly run: one day's partitions of every hourly and daily asset (24 hourly runs + the daily
  run, as the schedules launch them) with 3 years of history before it, then with the history cut
  to 3 months (the same final days, so only the history differs);
- peak RSS of the backfill at two source sizes 10x apart (same days, scale x1 and x10);
- generator throughput (rows/s, generation only) and seeding throughput (generate + load + index);
- with `--source-indexes contract,time,none`: the backfills (full and short range) and the nightly
  runs again on the same rows with each set of source indexes (the contract's, the main timestamp
  and `updated_at`, primary keys only). With `--short-days` half of `--days`, the report gives the
  growth of a backfill when its range doubles (2N days / N days; linear is 2).

`--instance stock|batched|both` chooses the Dagster instance storage of the single-run backfills:
the project's batched storage (the default, deploy/dagster-local.yaml or deploy/dagster.yaml) or
Dagster's stock SQLite / dagster-postgres storage; `both` times the same backfill on each and
reports the ratio. `--skip baselines` leaves out the bare-SQL floor, the per-day loop and the
per-partition runs (an instance comparison then takes two backfills).

Writes benchmarks/results/bench-<label>.json and .md (plus latest.json / latest.md) and the chart
benchmarks/results/backfill_time.png. Internal sub-commands (`_runs`) are used by the subprocesses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
BIN = Path(sys.executable).parent
DATABASES = ("app", "interactions", "messaging", "marketing")
GRAINS = ("hour", "day", "week", "month")
NIGHTLY_SHORT_DAYS = 92  # "3 months" of history before the measured night
NIGHTLY_PREP_DAYS = 63  # daily partitions materialized before the night, so the anomaly checks have history
TARGETS = {"single_vs_best_baseline": 1.5, "per_partition_vs_single": 20.0, "nightly_3y_vs_3m": 1.2,
           "rss_10x_vs_1x": 1.2, "double_range_vs_range": 2.2}
# By source index set: the full backfill against the same with the contract's indexes, and a night
# with 3 years of history against 3 months (none: every night scans the balances' tables; no target).
INDEX_TARGETS = {"vs_contract": {"time": 1.2, "none": 1.5}, "nightly_3y_vs_3m": {"contract": 1.2, "time": 1.2}}
# The same backfill on Dagster's stock instance storage against the batched one, by backend: PostgreSQL
# is what a platform team or Dagster+ runs, SQLite local development only.
STOCK_VS_BATCHED_TARGET = {"postgresql": 2.0, "sqlite": 3.0}
INSTANCES = ("batched", "stock")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {' '.join(map(str, load()))}] {msg}", flush=True)


# ---- the databases ---------------------------------------------------------------------------------

def postgres_server_class():
    """The throwaway PostgreSQL server helper, wherever the project keeps it."""
    try:
        from metrics_pipeline.local_stack import PostgresServer
    except ImportError:
        from metrics_pipeline_tests.postgres_server import PostgresServer
    return PostgresServer


class Dataset:
    """One set of source databases + warehouse + Dagster instance, and the env that points at them."""

    def __init__(self, root: Path, name: str, first: dt.date, pg=None):
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.first = first
        self.pg = pg
        if pg is None:
            self.urls = {db: f"sqlite:///{self.dir}/{db}.db" for db in DATABASES}
        else:
            self.urls = {db: pg.create_database(f"{name}_{db}") for db in DATABASES}
        self.homes = 0

    def env(self, home: str = "home", instance: str = "batched") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("METRICS_")}
        env.update({f"METRICS_{db.upper()}_DB_URL": url for db, url in self.urls.items()})
        env.update(METRICS_DATA_DIR=str(self.dir), METRICS_START_DATE=self.first.isoformat(), METRICS_TIMEZONE="UTC",
                   METRICS_WAREHOUSE_URL=self._warehouse(home), DAGSTER_HOME=str(self._home(home, instance)),
                   METRICS_EXPORT_URI=str(self.dir / f"exports_{home}"), PYTHONPATH=str(ROOT))
        return env

    def _warehouse(self, home: str) -> str:
        if self.pg is None:
            return f"sqlite:///{self.dir}/warehouse_{home}.db"
        marker = self.dir / f"warehouse_{home}.url"
        if not marker.exists():
            marker.write_text(self.pg.create_database(f"wh_{home}"))
        return marker.read_text()

    def _home(self, home: str, instance: str) -> Path:
        """The Dagster home of `home`: the root dagster.yaml with the batched storage of deploy/ or Dagster's
        stock storage (`instance`), on PostgreSQL for a PostgreSQL data set."""
        path = self.dir / f"dagster_{home}"
        if not path.exists():
            path.mkdir(parents=True)
            config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
            batched = yaml.safe_load((ROOT / "deploy" / ("dagster.yaml" if self.pg else "dagster-local.yaml"))
                                     .read_text())["storage"]
            if self.pg is not None:  # production-like instance: run/event storage on PostgreSQL too
                url = self.pg.create_database(f"dagster_{home}").replace("postgresql+psycopg2", "postgresql")
                batched["custom"]["config"] = {"postgres_url": url}
                config["storage"] = batched if instance == "batched" else {"postgres": {"postgres_url": url}}
            elif instance == "batched":
                config["storage"] = batched
            (path / "dagster.yaml").write_text(yaml.safe_dump(config))
        return path


def seed(ds: Dataset, days: int, end: dt.date, scale: float) -> dict:
    from metrics_pipeline.resources.engines import dispose_engines
    from metrics_pipeline.seed import seed_sources

    dispose_engines()
    t0 = time.perf_counter()
    counts = seed_sources(ds.urls, days=days, end=end, scale=scale, seed=42, progress=lambda line: None)
    secs = time.perf_counter() - t0
    rows = sum(counts.values())
    log(f"seeded {ds.dir.name}: {rows:,} rows, {days} days at scale {scale} in {secs:.1f} s")
    return {"days": days, "scale": scale, "rows": rows, "seconds": round(secs, 2),
            "rows_per_second": round(rows / secs), "tables": counts}


def generator_throughput(days: int, end: dt.date, scale: float) -> dict:
    from metrics_pipeline.seed.generator import generate

    t0 = time.perf_counter()
    rows = sum(len(next(iter(frame.values()))) for _, frames in generate(days, end, scale, 42)
               for _, frame in frames)
    secs = time.perf_counter() - t0
    return {"days": days, "scale": scale, "rows": rows, "seconds": round(secs, 2), "rows_per_second": round(rows / secs)}


# ---- bare SQL: floor and per-day loop ---------------------------------------------------------------

def range_periods(grain: str, start: dt.date, end: dt.date):
    """The periods `metrics-pipeline backfill --start --end` materializes at `grain` (whole periods only)."""
    from metrics_pipeline.metrics.periods import periods_between

    lo = dt.datetime.combine(start, dt.time())
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    return [p for p in periods_between(grain, lo, hi, "UTC") if p.end <= hi]


def asset_sql(urls: dict[str, str], grain: str, periods, as_of: dt.datetime, strategy: str | None) -> float:
    """Seconds to run every asset's own source SQL at `grain` for `periods` (bare: no Dagster, no writes)."""
    import sqlalchemy as sa

    from metrics_pipeline.metrics import cohorts, funnel
    from metrics_pipeline.metrics.catalog import DOMAINS
    from metrics_pipeline.metrics.engine import compute_domain
    from metrics_pipeline.resources.engines import engine_for

    total = 0.0
    for domain in DOMAINS:
        if grain not in domain.grains:
            continue
        with engine_for(urls[domain.database], read_only=True).connect() as conn:
            t0 = time.perf_counter()
            compute_domain(conn, domain, grain, periods, as_of, strategy=strategy)
            total += time.perf_counter() - t0
    if grain == "week":
        with engine_for(urls["app"], read_only=True).connect() as conn:
            t0 = time.perf_counter()
            cohorts.weekly_cohorts(conn, periods)
            total += time.perf_counter() - t0
    if grain == "day":
        with engine_for(urls["interactions"], read_only=True).connect() as conn:
            t0 = time.perf_counter()
            funnel.funnel(conn, periods, as_of)
            total += time.perf_counter() - t0
    del sa
    return total


def floor(urls, start, end, as_of, strategy: str | None) -> dict:
    """Every grain's asset SQL over the whole range; strategy "whole" is the floor, None the engine's choice."""
    out = {}
    for grain in GRAINS:
        periods = range_periods(grain, start, end)
        out[grain] = round(asset_sql(urls, grain, periods, as_of, strategy), 3) if periods else 0.0
    out["total"] = round(sum(out[g] for g in GRAINS), 3)
    return out


def per_day_loop(urls, start, end, as_of, sample_days: int) -> dict:
    """The SQL once per day (and once per week / month), timed over a sample and extrapolated."""
    from metrics_pipeline.metrics.periods import periods_between

    days = range_periods("day", start, end)
    step = max(len(days) // sample_days, 1)
    sample = days[::step][:sample_days]
    out = {}
    for grain in GRAINS:
        periods = range_periods(grain, start, end)
        if not periods:
            out[grain] = 0.0
            continue
        if grain in ("hour", "day"):  # one call per day: the day's hours, or the day
            calls = [periods_between(grain, d.start, d.end, "UTC") for d in sample]
            n_total = len(days)
        else:
            calls = [[p] for p in periods[::max(len(periods) // 2, 1)][:2]]
            n_total = len(periods)
        secs = [asset_sql(urls, grain, c, as_of, "whole") for c in calls]
        out[grain] = round(statistics.mean(secs) * n_total, 3)
        out[f"{grain}_sample"] = {"calls": len(calls), "mean_seconds": round(statistics.mean(secs), 4),
                                  "extrapolated_to_calls": n_total}
    out["total"] = round(sum(out[g] for g in GRAINS), 3)
    return out


# ---- Dagster: single-run backfill, per-partition runs, nightly --------------------------------------

def run_tree(cmd: list[str], env: dict, label: str) -> dict:
    """Run `cmd`; wall time and peak RSS of its whole process tree (psutil, sampled every 0.1 s)."""
    import psutil

    t0 = time.perf_counter()
    load_before = load()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = 0
                for p in procs:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        rss += p.memory_info().rss
                peak[0] = max(peak[0], rss)
            except psutil.NoSuchProcess:
                return
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    done.set()
    sampler.join()
    secs = time.perf_counter() - t0
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    (RESULTS / "logs" / f"{label}.log").write_text(output)
    tail = "\n".join(output.splitlines()[-15:])
    # exit 1 with every grain's run recorded = a blocking data-quality check found something in the
    # generated data: the work was done and is timed; anything else is a broken benchmark
    if proc.returncode != 0 and not (proc.returncode == 1 and "failed blocking check" in output
                                     and "FAILED" in output and "Traceback" not in output):
        raise RuntimeError(f"{label} failed (exit {proc.returncode}):\n{tail}")
    log(f"{label}: {secs:.1f} s, peak RSS {peak[0] / 2**20:.0f} MiB" + (" (a blocking check failed)" if proc.returncode else ""))
    return {"seconds": round(secs, 2), "peak_rss_mib": round(peak[0] / 2**20, 1), "load_before": load_before,
            "load_after": load(), "exit_code": proc.returncode,
            "failed_checks": [line.strip() for line in output.splitlines() if "failed blocking check" in line]}


def backfill(ds: Dataset, start: dt.date, end: dt.date, home: str, label: str, jobs: int | None = None,
             instance: str = "batched") -> dict:
    """`metrics-pipeline backfill` of every grain (its default --jobs unless `jobs` is given) on a Dagster
    instance of its own with `instance` storage."""
    cmd = [str(BIN / "metrics-pipeline"), "backfill", "--start", start.isoformat(), "--end", end.isoformat()]
    cmd += [] if jobs is None else ["--jobs", str(jobs)]
    result = run_tree(cmd, ds.env(home, instance), label)
    result["instance"] = instance
    result["grains"] = {}
    for line in (RESULTS / "logs" / f"{label}.log").read_text().splitlines():  # "[1/4] hour: ... ok in 12.3 s"
        for status in (" ok in ", " FAILED in "):
            if line.startswith("[") and status in line:
                grain = line.split("] ", 1)[1].split(":", 1)[0]
                result["grains"][grain] = float(line.split(status, 1)[1].split(" s", 1)[0])
    return result


def set_source_indexes(ds: Dataset, kind: str) -> None:
    """Replace the secondary indexes of every source table by the set `kind` (contract.INDEX_SETS)."""
    import sqlalchemy as sa

    from metrics_pipeline.contract import tables_of
    from metrics_pipeline.resources.engines import dispose_engines

    dispose_engines()
    for db in DATABASES:
        engine = sa.create_engine(ds.urls[db])
        with engine.begin() as conn:
            for t in tables_of(db):
                for index in sa.inspect(conn).get_indexes(t.name):
                    conn.exec_driver_sql(f'DROP INDEX "{index["name"]}"')
                for index in t.sa_indexes(t.sa_table(sa.MetaData()), kind):
                    index.create(conn)
                conn.exec_driver_sql(f'ANALYZE "{t.name}"')
        engine.dispose()
    log(f"source indexes: {kind}")


def by_source_indexes(ds: Dataset, ranges: dict[str, dt.date], end: dt.date, kinds: list[str]) -> dict:
    """kind -> range name -> the backfill of that range with that set of source indexes, one after the
    other (the contract's restored at the end)."""
    out = {}
    for kind in kinds:
        set_source_indexes(ds, kind)
        out[kind] = {name: backfill(ds, first, end, f"{name}_indexes_{kind}", f"backfill_{name}_indexes_{kind}")
                     for name, first in ranges.items()}
    set_source_indexes(ds, "contract")
    return out


def dagster_runs(ds: Dataset, home: str, plan: list[tuple[str, list[str]]], label: str) -> list[float]:
    """Seconds of each Dagster run of `plan` [(grain, keys)], run in one subprocess (imports excluded)."""
    out = RESULTS / "logs" / f"{label}.json"
    cmd = [sys.executable, str(Path(__file__)), "_runs", json.dumps(plan), str(out)]
    run_tree(cmd, ds.env(home), label)
    return json.loads(out.read_text())


def _runs_main(plan_json: str, out: str) -> None:
    """Sub-command: execute each (grain, keys) of the plan as one run; write the seconds of each."""
    import dagster as dg

    from metrics_pipeline.cli import QUIET_LOGS
    from metrics_pipeline.definitions import defs
    from metrics_pipeline.runner import run_range

    instance = dg.DagsterInstance.get()
    secs = []
    for grain, keys in json.loads(plan_json):
        t0 = time.perf_counter()
        run = run_range(defs, grain, keys, instance, tags={"trigger": "bench"}, run_config=QUIET_LOGS)
        secs.append(time.perf_counter() - t0)
        if not run.success:
            print(f"run {grain} {keys[0]}..{keys[-1]} failed: {run.errors or run.failed_checks}", flush=True)
    Path(out).write_text(json.dumps(secs))


def partition_keys(grain: str, start: dt.date, end: dt.date) -> list[str]:
    from metrics_pipeline.metrics.periods import partition_key

    return [partition_key(p) for p in range_periods(grain, start, end)]


def per_partition(ds: Dataset, start: dt.date, end: dt.date, home: str) -> dict:
    """One run per partition over a sample (hours, days, a week, a month), extrapolated per grain.

    Each sampled run is a process of its own, as Dagster's run launcher starts one per run (Python,
    Dagster, the definitions and, for days, Great Expectations loaded every time): `mean_seconds`.
    `in_run_mean_seconds` is the run alone, what runs sharing one process would cost (a lower bound).
    """
    sample_sizes = {"hour": 4, "day": 2, "week": 1, "month": 1}
    plan, counts = [], {}
    for grain in GRAINS:
        keys = partition_keys(grain, start, end)
        counts[grain] = len(keys)
        if keys:
            step = max(len(keys) // sample_sizes[grain], 1)
            plan += [(grain, [k]) for k in keys[::step][:sample_sizes[grain]]]
    walls, in_run = [], []
    for i, item in enumerate(plan):
        label = f"per_partition_{i}"
        out = RESULTS / "logs" / f"{label}.json"
        walls.append(run_tree([sys.executable, str(Path(__file__)), "_runs", json.dumps([item]), str(out)],
                              ds.env(home), label)["seconds"])
        in_run += json.loads(out.read_text())
    out = {"partitions": counts, "sample": {}}
    for grain in GRAINS:
        mine = [(w, r) for (g, _), w, r in zip(plan, walls, in_run) if g == grain]
        if mine:
            out["sample"][grain] = {"runs": len(mine), "mean_seconds": round(statistics.mean(w for w, _ in mine), 3),
                                    "in_run_mean_seconds": round(statistics.mean(r for _, r in mine), 3)}
        sample = out["sample"].get(grain, {})
        out[grain] = round(sample.get("mean_seconds", 0) * counts[grain], 1)
        out[f"{grain}_in_run"] = round(sample.get("in_run_mean_seconds", 0) * counts[grain], 1)
    out["total"] = round(sum(out[g] for g in GRAINS), 1)
    out["total_in_run"] = round(sum(out[f"{g}_in_run"] for g in GRAINS), 1)
    return out


def nightly(ds: Dataset, night: dt.date, home: str, label: str, repeat: int) -> dict:
    """24 hourly runs + the daily run of `night`, `repeat` times; the fastest repetition counts."""
    hours = partition_keys("hour", night, night)
    plan = [("hour", [h]) for h in hours] + [("day", [night.isoformat()])]
    totals, hourly, daily = [], [], []
    for i in range(repeat):
        secs = dagster_runs(ds, home, plan, f"{label}_{i + 1}")
        totals.append(sum(secs))
        hourly.append(sum(secs[:-1]))
        daily.append(secs[-1])
    best = min(range(repeat), key=lambda i: totals[i])
    return {"seconds": round(totals[best], 2), "hourly_runs_seconds": round(hourly[best], 2),
            "daily_run_seconds": round(daily[best], 2), "all_repetitions": [round(t, 2) for t in totals],
            "load": load()}


def cut_history(ds: Dataset, before: dt.date) -> dict:
    """Delete every source row older than `before` by its table's own time column (the final days stay)."""
    import sqlalchemy as sa

    from metrics_pipeline.contract import TABLES
    from metrics_pipeline.resources.engines import dispose_engines

    dispose_engines()
    deleted = {}
    cutoff = before.isoformat()
    for name, table in TABLES.items():
        column = next((c[0] for c in table.indexes if c[0] != "updated_at"), None)
        if column is None:
            column = next(c.name for c in table.columns if c.kind in ("date", "ts") and c.name != "updated_at")
        engine = sa.create_engine(ds.urls[table.database])
        with engine.begin() as conn:
            deleted[name] = conn.execute(sa.text(f'DELETE FROM "{name}" WHERE "{column}" < :c'), {"c": cutoff}).rowcount
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM" if engine.dialect.name == "sqlite" else f'VACUUM ANALYZE "{name}"')
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("ANALYZE")
        engine.dispose()
    log(f"history cut before {cutoff}: {sum(deleted.values()):,} rows deleted")
    return deleted


# ---- the machine, the report, the chart ------------------------------------------------------------

def machine(pg) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    info = {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 2**20, 1),
            "os": platform.platform(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "load_average_start": load()}
    if pg is not None:
        import sqlalchemy as sa

        engine = sa.create_engine(pg.url("postgres"))
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(sa.text("SHOW server_version")).scalar_one()
        engine.dispose()
    return info


def ratios(r: dict) -> dict:
    main = r["backfill"]["full"]
    out = {}
    if "floor" in main:
        best = min(main["floor"]["total"], main["per_day_loop"]["total"])
        out = {
            "single_vs_floor": main["single_run"]["seconds"] / main["floor"]["total"],
            "single_vs_per_day_loop": main["single_run"]["seconds"] / main["per_day_loop"]["total"],
            "single_vs_best_baseline": main["single_run"]["seconds"] / best,
            "per_partition_vs_single": main["per_partition"]["total"] / main["single_run"]["seconds"],
        }
        if "single_run_one_grain_at_a_time" in main:
            out["one_grain_at_a_time_vs_best_baseline"] = main["single_run_one_grain_at_a_time"]["seconds"] / best
    if "single_run_stock_instance" in main:
        out["stock_vs_batched_instance"] = main["single_run_stock_instance"]["seconds"] / main["single_run"]["seconds"]
    if "short" in r["backfill"] and r["backfill"]["full"]["days"] == 2 * r["backfill"]["short"]["days"]:
        out["double_range_vs_range"] = main["single_run"]["seconds"] / r["backfill"]["short"]["single_run"]["seconds"]
    indexed = r.get("source_indexes", {})
    for kind, b in indexed.items():
        if "contract" in indexed and kind != "contract":
            out[f"indexes_{kind}_vs_contract"] = b["full"]["seconds"] / indexed["contract"]["full"]["seconds"]
        if "short" in b and "double_range_vs_range" in out and kind != "contract":
            out[f"double_range_vs_range_indexes_{kind}"] = b["full"]["seconds"] / b["short"]["seconds"]
    if "nightly" in r:
        out["nightly_3y_vs_3m"] = r["nightly"]["3y"]["seconds"] / r["nightly"]["3m"]["seconds"]
        for kind, n in r["nightly"].get("by_indexes", {}).items():
            out[f"nightly_3y_vs_3m_indexes_{kind}"] = n["3y"]["seconds"] / n["3m"]["seconds"]
    if "rss" in r:
        out["rss_10x_vs_1x"] = r["rss"]["10x"]["peak_rss_mib"] / r["rss"]["1x"]["peak_rss_mib"]
    return {k: round(v, 3) for k, v in out.items()}


def verdicts(rat: dict, backend: str) -> dict:
    from metrics_pipeline.contract import INDEX_SETS

    out = {}
    limits = {**TARGETS, "stock_vs_batched_instance": STOCK_VS_BATCHED_TARGET[backend],
              **{f"indexes_{k}_vs_contract": v for k, v in INDEX_TARGETS["vs_contract"].items()},
              **{f"nightly_3y_vs_3m_indexes_{k}": v for k, v in INDEX_TARGETS["nightly_3y_vs_3m"].items()},
              **{f"double_range_vs_range_indexes_{k}": TARGETS["double_range_vs_range"] for k in INDEX_SETS}}
    for name, limit in limits.items():
        if name not in rat:
            continue
        ok = rat[name] >= limit if name == "per_partition_vs_single" else rat[name] <= limit
        out[name] = {"value": rat[name], "target": (">= " if name == "per_partition_vs_single" else "<= ") + str(limit),
                     "met": ok}
    return out


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# Benchmark {r['label']}", "",
             f"- backend: **{r['backend']}**; scale {r['args']['scale']}, {r['args']['days']} days "
             f"({r['range']['start']} .. {r['range']['end']}); {r['seed']['main']['rows']:,} source rows "
             f"(≈ {r['seed']['main']['rows_per_year']:,} a year)",
             f"- Dagster instance storage of the backfills: {r['args']['instance']}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB, {m['os']}, Python {m['python']}, "
             f"SQLite {m['sqlite']}" + (f", PostgreSQL {m['postgresql']}" if "postgresql" in m else ""),
             f"- load average at start {m['load_average_start']}, at end {r['load_average_end']} "
             "(the machine is shared: figures are noisy)",
             f"- engine strategies: {r['strategies'] or 'whole range everywhere'}", "",
             "| backfill (seconds) | " + " | ".join(r["backfill"]) + " |",
             "|---|" + "---:|" * len(r["backfill"])]
    for method in ("floor", "engine_sql", "per_day_loop", "single_run", "single_run_stock_instance",
                   "single_run_one_grain_at_a_time", "per_partition"):
        if not any(method in rng for rng in r["backfill"].values()):
            continue
        cells = []
        for rng in r["backfill"].values():
            v = rng.get(method)
            cells.append("" if v is None else f"{v.get('total', v.get('seconds')):,.1f}")
        lines.append(f"| {method.replace('_', ' ')} | " + " | ".join(cells) + " |")
    cells = [f"{rng['per_partition']['total_in_run']:,.1f}" if "total_in_run" in rng.get("per_partition", {}) else ""
             for rng in r["backfill"].values()]
    if any(cells):
        lines.append("| per partition, runs sharing one process (lower bound) | " + " | ".join(cells) + " |")
    lines += ["", "| figure | value |", "|---|---:|"]
    full = r["backfill"]["full"]
    for method in ("single_run", "single_run_stock_instance", "single_run_one_grain_at_a_time"):
        if method in full:
            by_grain = ", ".join(f"{g} {s:.1f}" for g, s in full[method]["grains"].items())
            lines.append(f"| {method.replace('_', ' ')}, by grain (s) | {by_grain} |")
    indexed = r.get("source_indexes", {})
    for kind, by_range in indexed.items():
        for name, b in by_range.items():
            by_grain = ", ".join(f"{g} {s:.1f}" for g, s in b["grains"].items())
            vs = (f", {b['seconds'] / indexed['contract'][name]['seconds']:.2f}x contract"
                  if "contract" in indexed and kind != "contract" else "")
            lines.append(f"| {name} backfill ({r['backfill'][name]['days']} days), source indexes `{kind}` (s) | "
                         f"{b['seconds']:.1f} ({by_grain}{vs}) |")
    if "floor" in full:
        floor_by_grain = ", ".join(f"{g} {full['floor'][g]:.1f}" for g in GRAINS)
        lines.append(f"| floor by grain (s) | {floor_by_grain} |")
    if "nightly" in r:
        for kind, by_history in r["nightly"]["by_indexes"].items():
            for h in ("3m", "3y"):
                n = by_history[h]
                lines.append(f"| nightly, {h} of history, source indexes `{kind}` (s) | {n['seconds']:.1f} "
                             f"(hourly runs {n['hourly_runs_seconds']:.1f}, daily run {n['daily_run_seconds']:.1f}) |")
    if "rss" in r:
        for k in ("1x", "10x"):
            x = r["rss"][k]
            lines.append(f"| peak RSS of the backfill, {k} ({x['rows']:,} rows) | {x['peak_rss_mib']:,.0f} MiB |")
    lines.append(f"| peak RSS of the full backfill | {full['single_run']['peak_rss_mib']:,.0f} MiB |")
    g = r["generator"]
    lines.append(f"| generator throughput | {g['rows_per_second']:,} rows/s |")
    lines.append(f"| seeding throughput (generate + load + index) | {r['seed']['main']['rows_per_second']:,} rows/s |")
    lines += ["", "| target | value | limit | met |", "|---|---:|---:|---|"]
    for name, v in r["verdicts"].items():
        lines.append(f"| {name} | {v['value']:.2f} | {v['target']} | {'yes' if v['met'] else '**no**'} |")
    lines += ["", "Other ratios: " + ", ".join(f"{k} {v:.2f}" for k, v in r["ratios"].items()), ""]
    return "\n".join(lines)


def chart(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [("floor", "floor (bare SQL, one statement)"), ("per_day_loop", "per-day loop (bare SQL)"),
               ("single_run", "single-run backfill (Dagster)"), ("per_partition", "per-partition runs (Dagster)")]
    ranges = list(r["backfill"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(methods)
    for i, (key, label) in enumerate(methods):
        values = [r["backfill"][rng][key].get("total", r["backfill"][rng][key].get("seconds")) for rng in ranges]
        bars = ax.bar([x + i * width for x in range(len(ranges))], values, width, label=label)
        ax.bar_label(bars, labels=[f"{v:,.0f}" if v >= 10 else f"{v:.1f}" for v in values], fontsize=7)
    ax.set_xticks([x + width * (len(methods) - 1) / 2 for x in range(len(ranges))],
                  [f"{r['backfill'][rng]['days']} days of history" for rng in ranges])
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title(f"Backfill time by method, {r['backend']}, scale {r['args']['scale']} "
                 f"({r['seed']['main']['rows_per_year']:,} source rows a year)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main --------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=0.5, help="generator volume multiplier (default 0.5)")
    ap.add_argument("--days", type=int, default=92, help="days of history to backfill (default 92)")
    ap.add_argument("--postgres", action="store_true", help="sources, warehouse and Dagster instance on a "
                    "throwaway PostgreSQL 15 server instead of SQLite")
    ap.add_argument("--short-days", type=int, default=30, help="the shorter backfill range of the chart (default 30)")
    ap.add_argument("--sample-days", type=int, default=4, help="days timed by the per-day loop (default 4)")
    ap.add_argument("--history-days", type=int, default=1096, help="history of the long nightly (default 1096, 3 y)")
    ap.add_argument("--history-scale", type=float, default=None,
                    help="scale of the nightly history data set (default: --scale / 5)")
    ap.add_argument("--rss-days", type=int, default=14, help="days of the two memory runs (default 14)")
    ap.add_argument("--repeat", type=int, default=2, help="repetitions of each nightly run (default 2)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: nightly, rss, short, baselines, serial "
                         "(PostgreSQL's one-grain-at-a-time backfill)")
    ap.add_argument("--instance", choices=(*INSTANCES, "both"), default="batched",
                    help="Dagster instance storage of the backfills: batched (default), stock, or both side by side")
    ap.add_argument("--label", default=None, help="name of the result files (default: backend-scale-days)")
    ap.add_argument("--keep", action="store_true", help="keep the generated databases")
    ap.add_argument("--source-indexes", default="contract",
                    help="comma-separated source index sets to time the full backfill with, side by side: "
                         "contract, time (main timestamp and updated_at), none (primary keys only)")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    from metrics_pipeline.contract import INDEX_SETS

    kinds = [k for k in args.source_indexes.split(",") if k]
    if not kinds or set(kinds) - set(INDEX_SETS):
        ap.error(f"--source-indexes: expected a comma-separated list of {', '.join(INDEX_SETS)}; got {args.source_indexes!r}")
    history_scale = args.history_scale or args.scale / 5
    backend = "postgresql" if args.postgres else "sqlite"
    label = args.label or f"{backend}-scale{args.scale:g}-{args.days}d"
    RESULTS.mkdir(parents=True, exist_ok=True)
    end = dt.date.today() - dt.timedelta(days=2)
    start = end - dt.timedelta(days=args.days - 1)
    as_of = dt.datetime.combine(end + dt.timedelta(days=2), dt.time())
    work = Path(tempfile.mkdtemp(prefix="metrics_bench_"))
    pg = postgres_server_class()().start() if args.postgres else None
    from metrics_pipeline.metrics.engine import STRATEGIES

    r: dict = {"label": label, "backend": backend, "args": vars(args), "machine": machine(pg),
               "started": dt.datetime.now().isoformat(timespec="seconds"),
               "range": {"start": start.isoformat(), "end": end.isoformat()},
               "strategies": {f"{d}/{g}": s for (d, g), s in STRATEGIES.items() if d == backend}}
    try:
        log(f"{backend}, scale {args.scale}, {args.days} days {start} .. {end}; work dir {work}")
        r["generator"] = generator_throughput(min(args.days, 30), end, args.scale)
        main_ds = Dataset(work, "main", start, pg)
        r["seed"] = {"main": seed(main_ds, args.days, end, args.scale)}
        r["seed"]["main"]["rows_per_year"] = round(r["seed"]["main"]["rows"] * 365 / args.days)

        ranges = {"full": start}
        if "short" not in skip and args.short_days < args.days:
            ranges = {"short": end - dt.timedelta(days=args.short_days - 1), **ranges}
        r["backfill"] = {}
        instances = INSTANCES if args.instance == "both" else (args.instance,)
        for name, first in ranges.items():
            b = {"days": (end - first).days + 1, "start": first.isoformat()}
            if "baselines" not in skip:
                log(f"bare SQL over {b['days']} days")
                b["floor"] = floor(main_ds.urls, first, end, as_of, "whole")
                b["engine_sql"] = floor(main_ds.urls, first, end, as_of, None)
                b["per_day_loop"] = per_day_loop(main_ds.urls, first, end, as_of, args.sample_days)
                log(f"floor {b['floor']['total']} s, engine {b['engine_sql']['total']} s, "
                    f"per-day loop {b['per_day_loop']['total']} s")
            for instance in instances:  # the first is "single_run", the figure every ratio uses
                suffix = "" if instance == instances[0] else f"_{instance}"
                b[f"single_run{suffix}_instance" if suffix else "single_run"] = backfill(
                    main_ds, first, end, f"{name}{suffix}", f"backfill_{name}{suffix}", instance=instance)
            if args.postgres and "serial" not in skip:  # the default runs grains side by side; one at a time
                b["single_run_one_grain_at_a_time"] = backfill(main_ds, first, end, f"{name}_serial",
                                                               f"backfill_{name}_serial", jobs=1,
                                                               instance=instances[0])
            if name == "full" and "baselines" not in skip:
                b["per_partition"] = per_partition(main_ds, first, end, name)
            r["backfill"][name] = b
        if kinds != ["contract"]:  # the contract's are what the backfills above ran with
            r["source_indexes"] = by_source_indexes(main_ds, ranges, end, [k for k in kinds if k != "contract"])
            if "contract" in kinds:
                r["source_indexes"] = {"contract": {name: r["backfill"][name]["single_run"] for name in ranges},
                                       **r["source_indexes"]}
        if "short" in r["backfill"] and "per_partition" in r["backfill"]["full"]:  # same per-run costs, fewer partitions
            full_pp = r["backfill"]["full"]["per_partition"]
            first = ranges["short"]
            r["backfill"]["short"]["per_partition"] = {
                "total": round(sum(full_pp["sample"].get(g, {}).get("mean_seconds", 0) * len(partition_keys(g, first, end))
                                   for g in GRAINS), 1), "note": "per-run means of the full range's sample"}

        if "rss" not in skip:
            r["rss"] = {}
            rss_first = end - dt.timedelta(days=args.rss_days - 1)
            for key, scale in (("1x", args.scale), ("10x", args.scale * 10)):
                ds = Dataset(work, f"rss{key}", rss_first, pg)
                s = seed(ds, args.rss_days, end, scale)
                r["rss"][key] = {"rows": s["rows"], "scale": scale,
                                 **backfill(ds, rss_first, end, "rss", f"backfill_rss_{key}")}

        if "nightly" not in skip:
            night = end
            history_first = night - dt.timedelta(days=args.history_days - 1)
            ds = Dataset(work, "history", history_first, pg)
            r["seed"]["history"] = seed(ds, args.history_days, night, history_scale)
            prep_first = night - dt.timedelta(days=NIGHTLY_PREP_DAYS)
            prep = [("day", partition_keys("day", prep_first, night - dt.timedelta(days=1)))]
            log(f"nightly: materializing {NIGHTLY_PREP_DAYS} days before {night} for the checks' history")
            dagster_runs(ds, "nightly", prep, "nightly_prep")
            r["nightly"] = {"night": night.isoformat(), "scale": history_scale, "by_indexes": {k: {} for k in kinds}}
            cut = night - dt.timedelta(days=NIGHTLY_SHORT_DAYS - 1)
            for history, days in (("3y", args.history_days), ("3m", NIGHTLY_SHORT_DAYS)):
                if history == "3m":
                    r["nightly"]["rows_deleted"] = sum(cut_history(ds, cut).values())
                for kind in kinds:
                    if kinds != ["contract"]:
                        set_source_indexes(ds, kind)
                    r["nightly"]["by_indexes"][kind][history] = {
                        "history_days": days, **nightly(ds, night, "nightly", f"nightly_{history}_{kind}", args.repeat)}
                    log(f"nightly {history}, source indexes {kind}: "
                        f"{r['nightly']['by_indexes'][kind][history]['seconds']} s")
            r["nightly"].update(r["nightly"]["by_indexes"][kinds[0]])  # "3y", "3m": the first index set's
    finally:
        if pg is not None:
            from metrics_pipeline.resources.engines import dispose_engines

            dispose_engines()
            pg.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    r["load_average_end"] = load()
    r["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    r["ratios"] = ratios(r)
    r["verdicts"] = verdicts(r["ratios"], backend)
    text = markdown(r)
    latest = "latest" if not args.postgres else "latest-postgresql"
    for name in (label, latest) if "baselines" not in skip else (label,):  # latest: the last complete run
        (RESULTS / f"bench-{name}.json" if name == label else RESULTS / f"{name}.json").write_text(
            json.dumps(r, indent=2, default=str))
        (RESULTS / f"bench-{name}.md" if name == label else RESULTS / f"{name}.md").write_text(text)
    if "baselines" not in skip:
        chart(r, RESULTS / ("backfill_time.png" if not args.postgres else "backfill_time_postgresql.png"))
    print(text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_runs":
        _runs_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
