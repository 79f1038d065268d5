"""Spike and drop detection on the headline (total) values of `metric_values`.

A value is scored against a baseline of **prior** periods only (never itself): for daily metrics
the same weekday of the previous weeks (day-of-week seasonality), for weekly metrics the previous
weeks. It is an anomaly when all of these hold:
- the baseline has at least `min_history` points and its mean at least `min_baseline`;
- |z| >= `sensitivity`, with z = (value - mean) / spread, where the spread is the baseline's
  standard deviation but never less than the noise a count (sqrt(mean)) or a proportion
  (sqrt(p(1-p)/n)) has by chance, nor `min_spread` of the mean;
- the relative change (value - mean) / mean is at least `min_relative_change` in size;
- the log change |log(value / mean)| is at least `volatility_factor` times the metric's own recent
  volatility: the 90th percentile of the log changes of the previous `volatility_window` periods
  from their baselines. A rate's log change is taken on its counts, each plus one (a continuity
  correction): day-30 retention of 0 out of 334 where 10 returns were expected scores log(11/1) =
  2.4, not infinity, so a rate whose counts often fall to 1 or 2 is not alerted for a 0. A metric that doubles on one normal day in ten (a messaging campaign, a
  viral post) is not alerted for tripling; a percentile, unlike the maximum, lets no single
  earlier anomaly mask the next; logs treat a halving like a doubling;
- its direction is one the metric watches (`spike`, `drop` or `both`).

Defaults are deliberately conservative (a false alarm costs as much as a miss); `RULES` sets
per-metric exceptions, and `METRICS_ANOMALY_RULES` (a JSON object,
inline or the path of a file) overrides any parameter per metric, e.g.
`{"sessions": {"sensitivity": 4}, "refunds": {"direction": "none"}}`.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, fields, replace
from pathlib import Path

from metrics_pipeline.settings import ConfigError

ENV = "METRICS_ANOMALY_RULES"
DIRECTIONS = ("both", "spike", "drop", "none")


@dataclass(frozen=True)
class Rule:
    """How one metric at one grain is scored."""

    lookback: int = 8  # prior periods (same weekdays for daily metrics) forming the baseline
    min_history: int = 4
    sensitivity: float = 3.0  # |z| threshold
    min_relative_change: float = 0.25
    min_baseline: float = 20.0  # baseline mean (or mean denominator of a ratio) below which nothing is scored
    min_spread: float = 0.05  # spread floor, as a fraction of the baseline mean
    volatility_window: int = 56  # prior periods whose deviations measure the metric's volatility
    volatility_factor: float = 3.0
    min_volatility_points: int = 21  # deviations needed before the metric's volatility is known
    direction: str = "both"


DEFAULTS = {"day": Rule(), "week": Rule(lookback=12, min_history=6, min_relative_change=0.4, volatility_window=12,
                                        min_volatility_points=6)}
SEASON = {"day": 7, "week": 1}  # periods between two baseline points
VOLATILITY_QUANTILE = 0.9

# Lifetime counters of the posts published in a period: one viral post multiplies them, which is
# news, not bad data; a drop still is.
RULES: dict[str, dict] = {m: {"direction": "drop"} for m in ("post_views", "post_likes", "post_comments",
                                                              "post_shares")}


def _overrides() -> dict[str, dict]:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return {}
    text = Path(raw).read_text() if not raw.startswith("{") else raw
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{ENV} is not valid JSON: {e}") from None
    known = {f.name for f in fields(Rule)}
    for metric, params in data.items():
        if not isinstance(params, dict) or set(params) - known:
            raise ConfigError(f"{ENV}: {metric!r} must map to an object with keys among {', '.join(sorted(known))}")
        if params.get("direction", "both") not in DIRECTIONS:
            raise ConfigError(f"{ENV}: {metric!r} direction must be one of {', '.join(DIRECTIONS)}")
    return data


def rule_for(metric: str, grain: str) -> Rule:
    """The metric's rule at `grain`: defaults, then `RULES`, then `METRICS_ANOMALY_RULES`."""
    return replace(DEFAULTS[grain], **RULES.get(metric, {}), **_overrides().get(metric, {}))


@dataclass(frozen=True)
class Observation:
    value: float
    denominator: float | None = None  # set for ratio metrics
    is_count: bool = False  # a count of things (Poisson noise)


@dataclass(frozen=True)
class Anomaly:
    kind: str  # data_spike | data_drop
    value: float
    expected: float
    low: float  # expected range: mean -/+ sensitivity x spread
    high: float
    z: float
    change: float  # relative change, e.g. -0.62
    history: int


def history_needed(rule: Rule, grain: str) -> int:
    """Prior periods `score` can look at: the baseline, and the volatility window with its baselines."""
    step = SEASON[grain]
    return max(rule.lookback * step, rule.volatility_window + rule.min_history * step)


def _baseline(series: list[Observation | None], i: int, step: int, points: int) -> list[Observation]:
    """The existing values `step`, 2`step`, ... `points` x `step` periods before index i."""
    return [o for j in range(1, points + 1) if i - j * step >= 0 and (o := series[i - j * step]) is not None]


def log_change(value: float, mean: float) -> float:
    """|log(value / mean)|: how many-fold a value is off its baseline, alike for drops and spikes
    (halving and doubling both score 0.69); infinite at or below zero."""
    return abs(math.log(value / mean)) if value > 0 and mean > 0 else math.inf


def observed_change(observation: Observation, mean: float) -> float:
    """`log_change` of an observation; for a rate, of its count against the count the baseline rate
    expects out of the same denominator, both plus one (counts of a few events are noisy: 0 where 10
    were expected is 2.4, not infinite; with the denominator a large amount, such as seconds of
    sessions, the correction vanishes)."""
    if observation.denominator:
        return log_change(observation.value * observation.denominator + 1, mean * observation.denominator + 1)
    return log_change(observation.value, mean)


def volatility(series: list[Observation | None], i: int, rule: Rule, step: int) -> float:
    """The 90th percentile of the log changes from their own baselines of the periods before index i."""
    deviations = []
    for t in range(max(0, i - rule.volatility_window), i):
        base = _baseline(series, t, step, rule.min_history)
        if series[t] is None or len(base) < rule.min_history:
            continue
        deviations.append(observed_change(series[t], statistics.fmean(b.value for b in base)))
    if len(deviations) < rule.min_volatility_points:
        return math.inf  # too little history to tell a spike from the metric's normal moves
    return sorted(deviations)[int(VOLATILITY_QUANTILE * (len(deviations) - 1))]


def score(series: list[Observation | None], i: int, rule: Rule, grain: str) -> Anomaly | None:
    """The anomaly of period i of a contiguous `series` against the periods before it, or None."""
    current = series[i]
    step = SEASON[grain]
    baseline = _baseline(series, i, step, rule.lookback)
    if current is None or rule.direction == "none" or len(baseline) < max(rule.min_history, 2):
        return None
    values = [b.value for b in baseline]
    mean = statistics.fmean(values)
    if current.denominator is not None:
        volume = statistics.fmean(b.denominator or 0 for b in baseline)
    else:
        volume = abs(mean)
    if volume < rule.min_baseline or mean == 0:
        return None
    floors = [statistics.stdev(values), rule.min_spread * abs(mean)]
    if current.is_count:
        floors.append(math.sqrt(abs(mean)))
    if current.denominator and 0 <= mean <= 1:
        floors.append(math.sqrt(mean * (1 - mean) / current.denominator))
    spread = max(floors)
    z = (current.value - mean) / spread
    change = (current.value - mean) / abs(mean)
    kind = "data_spike" if z > 0 else "data_drop"
    if abs(z) < rule.sensitivity or abs(change) < rule.min_relative_change:
        return None
    if rule.direction != "both" and kind != f"data_{rule.direction}":
        return None
    if observed_change(current, mean) < rule.volatility_factor * volatility(series, i, rule, step):
        return None
    band = rule.sensitivity * spread
    return Anomaly(kind, current.value, mean, mean - band, mean + band, z, change, len(baseline))


def sentence(metric: str, grain: str, period: str, a: Anomaly) -> str:
    """The alert in one human sentence."""
    word = "spiked" if a.kind == "data_spike" else "dropped"
    return (f"{metric} {word} to {a.value:,.4g} on {grain} {period}: expected {a.expected:,.4g} "
            f"(normal range {a.low:,.4g} to {a.high:,.4g} from {a.history} prior "
            f"{'same-weekday days' if grain == 'day' else 'weeks'}), z-score {a.z:+.1f}, "
            f"change {a.change:+.0%}")
