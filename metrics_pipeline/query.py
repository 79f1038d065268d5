"""Answers to the questions the old analytics APIs answered, over `metric_values` rows.

Latest value, re-aggregation of additive metrics to a coarser grain (a sum of exact values: never
valid for distinct counts, ratios or balances, which are refused), and growth against the previous
period: (current - previous) / previous, NULL when previous is 0 or missing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict

from metrics_pipeline.metrics.periods import floor_to_grain, next_start
from metrics_pipeline.metrics.spec import MetricDef
from metrics_pipeline.settings import ConfigError

GRAIN_ORDER = ("hour", "day", "week", "month")
COLUMNS = ("metric", "grain", "period_start", "period_end", "dimension", "dimension_value", "value")

def rollup(rows: list[dict], metric: MetricDef, to_grain: str) -> list[dict]:
    """Sum `rows` (one finer grain) into periods of `to_grain`; only for additive metrics."""
    if metric.kind != "additive":
        raise ConfigError(f"{metric.name} is not additive: read it at grain {to_grain} instead of rolling it up")
    if rows and GRAIN_ORDER.index(to_grain) <= GRAIN_ORDER.index(rows[0]["grain"]):
        raise ConfigError(f"--rollup {to_grain} must be coarser than --grain {rows[0]['grain']}")
    sums: dict[tuple, float] = defaultdict(float)
    for r in rows:
        start = floor_to_grain(to_grain, dt.datetime.fromisoformat(r["period_start"]))
        sums[(start, r["dimension"], r["dimension_value"])] += r["value"] or 0.0
    return [
        {"metric": metric.name, "grain": to_grain, "period_start": start.date().isoformat(),
         "period_end": next_start(to_grain, start).date().isoformat(), "dimension": dim,
         "dimension_value": value, "value": total}
        for (start, dim, value), total in sorted(sums.items())
    ]


def with_growth(rows: list[dict]) -> list[dict]:
    """Add `previous` and `growth` to each row, against the row of the period before (same dimension)."""
    by_series: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        by_series[(r["dimension"], r["dimension_value"])].append(r)
    out = []
    for series in by_series.values():
        series.sort(key=lambda r: r["period_start"])
        previous = None
        for r in series:
            prev_value = previous["value"] if previous and previous["period_end"] == r["period_start"] else None
            growth = (r["value"] - prev_value) / prev_value if prev_value and r["value"] is not None else None
            out.append(r | {"previous": prev_value, "growth": growth})
            previous = r
    return sorted(out, key=lambda r: (r["period_start"], r["dimension"], r["dimension_value"]))


def latest(rows: list[dict]) -> list[dict]:
    """The rows of the newest period present."""
    newest = max((r["period_start"] for r in rows), default=None)
    return [r for r in rows if r["period_start"] == newest]


def render(rows: list[dict], fmt: str) -> str:
    columns = [c for c in (*COLUMNS, "previous", "growth") if rows and c in rows[0]]
    if fmt == "json":
        return json.dumps([{c: r[c] for c in columns} for r in rows], indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    head = f"{'period_start':<19}  {'dimension':<33}  {'value':>16}"
    if "growth" in columns:
        head += f"  {'previous':>16}  {'growth':>9}"
    lines = [head]
    for r in rows:
        dim = f"{r['dimension']}={r['dimension_value']}" if r["dimension"] else "(total)"
        line = f"{r['period_start']:<19}  {dim:<33}  {_number(r['value']):>16}"
        if "growth" in columns:
            growth = "NULL" if r["growth"] is None else f"{r['growth']:+.1%}"
            line += f"  {_number(r['previous']):>16}  {growth:>9}"
        lines.append(line)
    return "\n".join(lines)


def _number(value) -> str:
    return "NULL" if value is None else f"{value:,.6f}".rstrip("0").rstrip(".")
