"""`metrics-pipeline`: seed demo sources, backfill partitions through Dagster, query metric values."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence

from metrics_pipeline.alerts import SEVERITIES, at_least
from metrics_pipeline.contract import INDEX_SETS
from metrics_pipeline.settings import ConfigError, data_dir, source_urls

BACKFILL_ORDER = ("hour", "day", "week", "month")
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _problem(text: str):
    from metrics_pipeline.seed.problems import parse

    try:
        return parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def problems_help() -> str:
    from metrics_pipeline.seed import problems

    return "Plant known data problems into the seeded sources.\n\n" + problems.__doc__.split("\n\n", 1)[1]


def _grains(text: str) -> list[str]:
    grains = [g.strip() for g in text.split(",") if g.strip()]
    bad = [g for g in grains if g not in BACKFILL_ORDER]
    if bad or not grains:
        raise argparse.ArgumentTypeError(
            f"unknown grain(s) {', '.join(map(repr, bad or [text]))}; choose from {', '.join(BACKFILL_ORDER)}")
    return [g for g in BACKFILL_ORDER if g in grains]


def _instance():
    """The Dagster instance at $DAGSTER_HOME (default ./data/dagster_home), so the UI shows our runs."""
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        home = data_dir() / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def cmd_seed(args) -> int:
    from metrics_pipeline.seed import seed_sources

    started = time.monotonic()
    counts = seed_sources(source_urls(), days=args.days, end=args.end, scale=args.scale, seed=args.seed,
                          indexes=args.indexes, progress=lambda line: print(f"  {line}", flush=True))
    total = sum(counts.values())
    secs = time.monotonic() - started
    print(f"seeded {total:,} rows in {len(counts)} tables in {secs:.1f} s ({total / max(secs, 1e-9):,.0f} rows/s)")
    return 0


def cmd_doctor(args) -> int:
    """Exit status 0 when the sources meet the contract (missing indexes are warnings), 1 when not."""
    from metrics_pipeline.doctor import diagnose, render

    reports = [diagnose(db, url) for db, url in source_urls().items()]
    print(render(reports))
    return 1 if any(r.problems for r in reports) else 0


def backfill(start: dt.date, end: dt.date, grains: Sequence[str], only: str | None = None,
             jobs: int | None = None, fail_on: str | None = None) -> bool:
    """Materialize every partition of `grains` within [start, end], one run per grain and span of
    consecutive partitions; `only` = "missing" or "failed" narrows them. `jobs` runs of different
    grains at once (default `default_jobs`). True if every step and every blocking check passed (and,
    with `fail_on`, no alert of that severity or above was raised)."""
    from metrics_pipeline import operations
    from metrics_pipeline.runner import partition_keys_within

    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: expected 1 or more")
    clipped = _clipping(start, end, grains)
    if clipped:
        print(clipped, flush=True)
    instance = _instance()
    _plan_ranges_as_subsets(instance)
    jobs = jobs or default_jobs(instance)
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    narrow = {None: lambda g, keys: keys, "missing": lambda g, keys: operations.missing_keys(instance, g, keys),
              "failed": lambda g, keys: operations.failed_keys(instance, g, keys)}[only]
    plan = [(g, span) for g in grains for span in operations.spans(g, narrow(g, partition_keys_within(g, start, end)))]
    pace = {g: operations.seconds_per_partition(instance, g) for g in grains}
    print(f"backfill {start} .. {end}{f' ({only} only)' if only else ''}: "
          + (", ".join(f"{sum(len(k) for h, k in plan if h == g)} {g}" for g in grains) or "nothing to do")
          + f" partition(s); instance {os.environ['DAGSTER_HOME']}"
          + (f"; {jobs} grains at a time" if jobs > 1 and len({g for g, _ in plan}) > 1 else "")
          + _eta(plan, pace), flush=True)
    if jobs == 1 or len({g for g, _ in plan}) == 1:
        ok = _run_lane([(i, grain, keys, "") for i, (grain, keys) in enumerate(plan, 1)], len(plan), pace, instance)
    else:
        ok = _run_lanes_side_by_side(plan, jobs)
    found = _alerts_since(started)
    print(_alert_summary(found))
    failing = [a for a in found if fail_on and at_least(a["severity"], fail_on)]
    if failing:
        print(f"--fail-on-alerts {fail_on}: {len(failing)} alert(s) at or above {fail_on}", flush=True)
    return ok and not failing


def _clipping(start: dt.date, end: dt.date, grains: Sequence[str]) -> str | None:
    """One line saying how [start, end] was clipped to the partitions that exist (closed periods since
    METRICS_START_DATE), None when it needs no clipping; a ConfigError when no period of it has closed."""
    from metrics_pipeline.partitions import PARTITIONS
    from metrics_pipeline.settings import start_date

    first = start_date()
    last = {g: PARTITIONS[g].get_last_partition_key() for g in grains}
    last_day = PARTITIONS["day"].get_last_partition_key()
    lasts = ", ".join(f"{g} {k}" for g, k in last.items() if k)
    if end < first or last_day is None or start > dt.date.fromisoformat(last_day) + dt.timedelta(days=1):
        raise ConfigError(f"no closed period in {start} .. {end}: partitions exist from METRICS_START_DATE {first} "
                          f"to the last closed periods ({lasts or 'none yet'})")
    notes = []
    if start < first:
        notes.append(f"from METRICS_START_DATE {first}")
    if end > dt.date.fromisoformat(last_day):
        notes.append(f"to the last closed periods ({lasts})")
    return f"range clipped to the partitions that exist: {' '.join(notes)}" if notes else None


# Dagster's switch for one "materialization planned" event per asset of a range run (naming the range)
# instead of one per partition. On its stock storage each is a transaction of its own: half of a range's
# per-partition events. Its cost: the partitions of a range run that fails are not marked failed in the
# UI's partition bar (they stay missing); `backfill --from-failed` reads runs, not those marks.
PLANNED_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def _plan_ranges_as_subsets(instance) -> None:
    """On a stock instance storage, this process's range runs plan their partitions in one event per
    asset (`PLANNED_SUBSET_ENV`, unless set); the batched storage writes per-partition ones cheaply."""
    from metrics_pipeline.instance_storage import writes_batches

    if not writes_batches(instance):
        os.environ.setdefault(PLANNED_SUBSET_ENV, "true")


def default_jobs(instance) -> int:
    """Runs at once by default: 2 when the Dagster instance and the warehouse are on PostgreSQL (the
    database then works on two grains' queries at once), else 1 (SQLite takes one writer at a time)."""
    from dagster._core.storage.event_log.sqlite import ConsolidatedSqliteEventLogStorage, SqliteEventLogStorage

    from metrics_pipeline.settings import database_url

    sqlite_instance = isinstance(instance.event_log_storage, (SqliteEventLogStorage, ConsolidatedSqliteEventLogStorage))
    return 1 if sqlite_instance or not database_url("warehouse").startswith("postgresql") else 2


def _run_lane(lane: Sequence[tuple[int, str, list[str], str]], total: int, pace: dict | None = None,
              instance=None) -> bool:
    """Run each (number, grain, keys, part) of `lane` in order in this process, printing its outcome;
    `part` "" runs the grain's whole job, else the part of the month job (`MONTH_PARTS`). With `pace`
    (one lane for the whole plan) each line also gives the time left."""
    import dagster as dg

    from metrics_pipeline.definitions import defs
    from metrics_pipeline.runner import run_range

    instance = instance or dg.DagsterInstance.get()
    ok = True
    for n, (i, grain, keys, part) in enumerate(lane, 1):
        t0 = time.monotonic()
        name = f"{grain} {part}" if part else grain
        label = f"[{i}/{total}] {name}: {keys[0]} .. {keys[-1]} ({len(keys)} partitions)"
        if pace is None:
            print(f"{label} started", flush=True)
        else:
            print(f"{label} ...", end=" ", flush=True)
        run = run_range(defs, grain, keys, instance, tags={"trigger": "cli_backfill"}, run_config=QUIET_LOGS,
                        assets=MONTH_PARTS[part]() if part else None)
        outcome = f"{'ok' if run.success else 'FAILED'} in {time.monotonic() - t0:.1f} s (run {run.run_id[:8]})"
        lines = [outcome + _eta([(g, k) for _, g, k, _ in lane[n:]], pace) if pace is not None
                 else f"[{i}/{total}] {name}: {outcome}"]
        lines += [f"    failed blocking check: {check}" for check in run.failed_checks]
        lines += [f"    {error}" for error in run.errors]
        print("\n".join(lines), flush=True)  # one write: lanes in other processes print too
        ok &= run.success
    return ok


def _export_keys() -> list:
    from metrics_pipeline.defs.export_assets import EXPORT_ASSETS

    return [key for asset in EXPORT_ASSETS for key in asset.keys]


def _month_keys_but_export() -> list:
    from metrics_pipeline.defs.automation import assets_of

    return [key for asset in assets_of("month") for key in asset.keys if key not in _export_keys()]


# The month job in two runs when grains run side by side: its metrics beside the other grains, its
# export (which reads every grain's rows of the month) once they are all done.
MONTH_PARTS = {"metrics": _month_keys_but_export, "export": _export_keys}


def _run_lanes_side_by_side(plan: Sequence[tuple[str, list[str]]], jobs: int) -> bool:
    """Each grain's runs in order in a lane of its own, `jobs` lanes at once in processes of their own
    (each loads the definitions and the instance, as a run launcher's process does). The monthly
    export runs when every lane is done (`MONTH_PARTS`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    split = [(g, keys, "metrics" if g == "month" else "") for g, keys in plan]
    split += [(g, keys, "export") for g, keys in plan if g == "month"]
    numbered = [(i, *item) for i, item in enumerate(split, 1)]
    lanes: dict[str, list] = {}
    for item in numbered:
        lanes.setdefault("export" if item[3] == "export" else item[1], []).append(item)
    stages = [[g for g in lanes if g != "export"], [g for g in lanes if g == "export"]]
    ok = True
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_quiet_library_notices) as pool:
        for stage in stages:
            futures = [pool.submit(_run_lane, lanes[lane], len(numbered)) for lane in stage]
            ok &= all([f.result() for f in futures])
    return ok


def _eta(plan: list[tuple[str, list[str]]], pace: dict[str, float | None]) -> str:
    """'; about N s left', from the previous run of each grain's job (nothing when there is none)."""
    if not plan or any(pace[g] is None for g, _ in plan):
        return ""
    return f"; ETA about {sum(pace[g] * len(keys) for g, keys in plan):,.0f} s"


def _alerts_since(since: dt.datetime) -> list[dict]:
    """The open data-quality alerts detected since `since` (they are stored, whatever the exit status)."""
    from metrics_pipeline.defs.resources import warehouse_from_env

    return [a for a in warehouse_from_env().alerts(open_only=True) if a["last_detected_at"] >= since]


def _alert_summary(found: list[dict]) -> str:
    """One line on the data-quality alerts a backfill found, by type and severity."""
    if not found:
        return "data-quality alerts: none"
    kinds: dict[str, int] = {}
    for a in found:
        kinds[a["alert_type"]] = kinds.get(a["alert_type"], 0) + 1
    severities = {s: sum(a["severity"] == s for a in found) for s in reversed(SEVERITIES)}
    return (f"data-quality alerts: {len(found)} open (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            + "; " + ", ".join(f"{n} {s}" for s, n in severities.items() if n)
            + "); list them with `metrics-pipeline alerts --open`")


def cmd_backfill(args) -> int:
    only = "missing" if args.missing_only else "failed" if args.from_failed else None
    return 0 if backfill(args.start, args.end, args.grain, only, args.jobs, args.fail_on_alerts) else 1


def cmd_status(args) -> int:
    from metrics_pipeline import operations
    from metrics_pipeline.defs.resources import warehouse_from_env

    rows = [r for r in operations.status(_instance(), warehouse_from_env().alerts(open_only=True))
            if r["grain"] in args.grain]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'asset':<34} {'grain':<6} {'newest':<17} {'done':>11} {'missing':>8}  open alerts by check")
    for r in rows:
        spans = ", ".join(r["missing_spans"][:2]) + (" ..." if len(r["missing_spans"]) > 2 else "")
        alerts = ", ".join(f"{c} {n}" for c, n in sorted(r["open_alerts"].items())) or "-"
        print(f"{r['asset']:<34} {r['grain']:<6} {r['newest'] or '-':<17} {r['materialized']:>5}/{r['expected']:<5} "
              f"{r['missing']:>8}  {alerts}" + (f"\n{'':<42}missing: {spans}" if r["missing"] else ""))
    return 0


def inject(problems) -> None:
    """Plant each problem into the sources, one line each; a problem that cannot be planted (no rows
    that day, a column already gone, sources not seeded) stops here, exit status 2."""
    from metrics_pipeline.seed.problems import plant

    for problem in problems:
        try:
            print(f"  planted {plant(source_urls(), problem)}", flush=True)
        except ValueError as e:
            raise ConfigError(str(e)) from None


def cmd_inject(args) -> int:
    inject(args.problems)
    return 0


def cmd_demo(args) -> int:
    from metrics_pipeline.seed import seed_sources
    from metrics_pipeline.seed.problems import demo_problems

    end = dt.date.today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=args.days - 1)
    print(f"1/5 seeding {args.days} days of demo sources ({start} .. {end}) into {data_dir()}", flush=True)
    counts = seed_sources(source_urls(), days=args.days, end=end, scale=args.scale, seed=args.seed,
                          progress=lambda line: print(f"  {line}", flush=True))
    print(f"    {sum(counts.values()):,} source rows", flush=True)
    _instance()  # DAGSTER_HOME: ./data/dagster_home unless set
    demo_env = {"METRICS_START_DATE": start.isoformat(), "METRICS_DATA_DIR": str(data_dir()),
                "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
    os.environ.update(demo_env)  # partitions start at the first seeded day
    write_dotenv(demo_env)
    print(f"    partitions start at {start}: .env sets {', '.join(demo_env)} for `dagster dev` and this CLI",
          flush=True)
    print("2/5 planting known problems, so the checks have something to find (--clean: none)", flush=True)
    inject([] if args.clean else demo_problems(end))
    print("3/5 backfilling every grain through Dagster", flush=True)
    ok = backfill(start, end, BACKFILL_ORDER)
    print("4/5 observing the source tables (row counts and newest updated_at, shown on the lineage)", flush=True)
    ok &= _observe_sources()
    print("5/5 summary", flush=True)
    print(_summary(end))
    print("\nOpen the Dagster UI on this data with `make dev` or `dagster dev` (http://127.0.0.1:3000), "
          "or query values: metrics-pipeline query --metric mrr --grain day")
    return 0 if ok else 1


def write_dotenv(values: dict[str, str], path: str = ".env") -> None:
    """Set `values` in the `.env` of the working directory, which Dagster's CLI (`dagster dev`, `dg dev`)
    and this CLI load; other lines of the file are kept."""
    from dotenv import set_key

    for key, value in values.items():
        set_key(path, key, value, quote_mode="never")


def _observe_sources() -> bool:
    """Run `observe_sources_job` once: each source table's row count and newest `updated_at`."""
    from metrics_pipeline.definitions import defs

    result = defs.resolve_job_def("observe_sources_job").execute_in_process(
        instance=_instance(), run_config=QUIET_LOGS, tags={"trigger": "cli_demo"}, raise_on_error=False)
    tables = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    print(f"    {len(tables)} source table(s) observed" + ("" if result.success else " (run FAILED)"), flush=True)
    return result.success


def _summary(day: dt.date) -> str:
    from metrics_pipeline.defs.resources import warehouse_from_env

    warehouse = warehouse_from_env()
    rows = warehouse.metric_rows(dimension="")
    by_grain: dict[str, set[str]] = {}
    for r in rows:
        by_grain.setdefault(r["grain"], set()).add(r["period_start"])
    lines = [f"  metric_values: {warehouse.row_count():,} rows; periods: "
             + ", ".join(f"{len(v)} {g}" for g, v in sorted(by_grain.items()))]
    latest = {r["metric"]: r["value"] for r in rows if r["grain"] == "day" and r["period_start"] == day.isoformat()}
    for name, fmt in (("active_users", "{:,.0f}"), ("new_users", "{:,.0f}"), ("sessions", "{:,.0f}"),
                      ("gross_revenue", "${:,.2f}"), ("mrr", "${:,.2f}"), ("active_subscribers", "{:,.0f}")):
        if latest.get(name) is not None:
            lines.append(f"  {day} {name}: {fmt.format(latest[name])}")
    return "\n".join(lines)


def cmd_query(args) -> int:
    from metrics_pipeline import query
    from metrics_pipeline.defs.resources import warehouse_from_env
    from metrics_pipeline.metrics.catalog import metric

    try:
        definition = metric(args.metric)
    except KeyError:
        raise ConfigError(f"unknown metric {args.metric!r} (see METRICS.md or the asset descriptions)") from None
    if args.grain not in definition.grains:
        raise ConfigError(f"{args.metric} has no grain {args.grain!r}; it has {', '.join(definition.grains)}")
    warehouse = warehouse_from_env()
    end = (args.to + dt.timedelta(days=1)).isoformat() if args.to else None
    rows = warehouse.metric_rows([args.metric], args.grain, args.from_.isoformat() if args.from_ else None, end,
                                 dimension=args.dimension if args.dimension is not None else "")
    if args.value is not None:
        rows = [r for r in rows if r["dimension_value"] == args.value]
    if args.rollup:
        rows = query.rollup(rows, definition, args.rollup)
    if args.growth:
        rows = query.with_growth(rows)
    if args.latest:
        rows = query.latest(rows)
    if not rows:
        print(f"no rows for {args.metric} at grain {args.grain} with those filters (run a backfill first?)",
              file=sys.stderr)
        return 1
    print(query.render(rows, args.format))
    return 0


def cmd_exporter(args) -> int:
    from metrics_pipeline.monitoring.exporter import serve_forever

    serve_forever(args.host, args.port, _instance)
    return 0


def cmd_alerts(args) -> int:
    from metrics_pipeline.defs.resources import warehouse_from_env

    rows = warehouse_from_env().alerts(open_only=args.open, min_severity=args.severity)
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{len(rows)} alert(s)" + (" open" if args.open else "") +
          (f" at or above {args.severity}" if args.severity else ""))
    for r in rows:
        status = f"resolved {r['resolved_at']:%Y-%m-%d %H:%M}" if r["is_resolved"] else "OPEN"
        print(f"[{r['severity']:<8}] {r['alert_type']:<19} {r['partition_key'] or '-':<16} {status:<22} "
              f"x{r['occurrences']}  {r['message']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="metrics-pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("seed", help="fill the four source databases with deterministic demo data")
    s.add_argument("--days", type=int, default=120, help="days of history (default 120)")
    s.add_argument("--end", type=_date, default=None, help="last day, YYYY-MM-DD (default yesterday)")
    s.add_argument("--scale", type=float, default=1.0, help="volume multiplier (default 1.0)")
    s.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    s.add_argument("--indexes", choices=INDEX_SETS, default="contract",
                   help="secondary indexes to create: the contract's (default), time (main timestamp and "
                        "updated_at, as a typical application database), none (primary keys only)")
    s.set_defaults(fn=cmd_seed)

    d = sub.add_parser("doctor", help="report what the source databases lack: columns, types, indexes, time zone")
    d.set_defaults(fn=cmd_doctor)

    b = sub.add_parser("backfill", help="materialize every partition in a date range through Dagster")
    b.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD (inclusive)")
    b.add_argument("--end", type=_date, required=True, help="last day, YYYY-MM-DD (inclusive)")
    b.add_argument("--grain", type=_grains, default=list(BACKFILL_ORDER),
                   help="comma-separated grains (default hour,day,week,month)")
    only = b.add_mutually_exclusive_group()
    only.add_argument("--missing-only", action="store_true",
                      help="only partitions some asset of the grain has never materialized")
    only.add_argument("--from-failed", action="store_true",
                      help="only partitions whose latest run failed (no later run succeeded for them)")
    b.add_argument("--jobs", type=int, default=None,
                   help="runs of different grains at once, each in a process of its own (default 2 when the "
                        "Dagster instance and the warehouse are on PostgreSQL, else 1; the monthly export runs last)")
    b.add_argument("--fail-on-alerts", choices=SEVERITIES, metavar="SEVERITY", default=None,
                   help="also exit non-zero when the backfill raised a data-quality alert of this severity or "
                        f"above ({', '.join(SEVERITIES)}); by default only failed steps and blocking checks do")
    b.set_defaults(fn=cmd_backfill)

    st = sub.add_parser("status", help="per asset: newest partition, missing partitions, open alerts by check")
    st.add_argument("--grain", type=_grains, default=list(BACKFILL_ORDER), help="comma-separated grains")
    st.add_argument("--format", choices=("table", "json"), default="table")
    st.set_defaults(fn=cmd_status)

    i = sub.add_parser("inject", help="plant known data problems into the seeded sources",
                       description=problems_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("problems", nargs="+", type=_problem, metavar="PROBLEM")
    i.set_defaults(fn=cmd_inject)

    d = sub.add_parser("demo", help="seed ~120 days ending yesterday, plant a few problems, backfill, summarise")
    d.add_argument("--days", type=int, default=120)
    d.add_argument("--scale", type=float, default=1.0)
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--clean", action="store_true", help="plant no problems")
    d.set_defaults(fn=cmd_demo)

    q = sub.add_parser("query", help="print values of one metric from metric_values")
    q.add_argument("--metric", required=True)
    q.add_argument("--grain", choices=BACKFILL_ORDER, default="day")
    q.add_argument("--from", dest="from_", type=_date, help="first period_start (inclusive)")
    q.add_argument("--to", type=_date, help="last period_start (inclusive)")
    q.add_argument("--dimension", help="a breakdown (e.g. platform); default: totals only")
    q.add_argument("--value", help="only this dimension value (with --dimension), e.g. ios")
    q.add_argument("--latest", action="store_true", help="only the newest period")
    q.add_argument("--rollup", choices=("week", "month"), help="sum an additive metric into a coarser grain")
    q.add_argument("--growth", action="store_true", help="add the previous period's value and the growth")
    q.add_argument("--format", choices=("table", "csv", "json"), default="table")
    q.set_defaults(fn=cmd_query)

    a = sub.add_parser("alerts", help="list data-quality alerts stored in the warehouse")
    a.add_argument("--open", action="store_true", help="only alerts not resolved yet")
    a.add_argument("--severity", choices=SEVERITIES, help="only this severity and above")
    a.add_argument("--format", choices=("table", "json"), default="table")
    a.set_defaults(fn=cmd_alerts)

    e = sub.add_parser("exporter", help="serve pipeline health and headline KPIs on /metrics for Prometheus")
    e.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    e.add_argument("--port", type=int, default=9464, help="port to listen on (default 9464)")
    e.set_defaults(fn=cmd_exporter)
    return p


def _quiet_library_notices() -> None:
    """Library beta/preview/deprecation notices are for developers (METRICS_DEBUG=1), not CLI users."""
    if not os.environ.get("METRICS_DEBUG"):
        warnings.simplefilter("ignore")


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # run as a program: the working directory's .env, as Dagster's own CLI loads it
        from dotenv import load_dotenv

        load_dotenv(".env", override=False)
    args = parser().parse_args(argv)
    _quiet_library_notices()
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"metrics-pipeline: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except Exception as e:  # noqa: BLE001 - a CLI reports any failure in one line, then exits non-zero
        if os.environ.get("METRICS_DEBUG"):
            raise
        print(f"metrics-pipeline {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
