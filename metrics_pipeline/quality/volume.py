"""Missing data: source rows absent where history says there should be some.

Two findings, both per period and computed in the source with one GROUP BY per table (period and
every dimension column):
- a **table** with no rows in a period, after `HISTORY` prior periods that all had rows;
- a **dimension value** (a platform, an ad channel, ...) with no rows in a period, after `HISTORY`
  prior periods that all had rows, while the table keeps at least half its usual rows.
"History says there should be some" means: zero would be a freak of chance. For event tables that
is a baseline of at least `MIN_ROWS` rows in each prior period (a Poisson count of 10 is 0 with
probability 5e-5); tables keyed by a DATE are daily reports, expected every day once present.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.contract import SourceTable
from metrics_pipeline.metrics.periods import Period, place, with_history

HISTORY = 7
MIN_ROWS = 10
MIN_SHARE_KEPT = 0.5  # of the smallest prior day's rows, for a vanished value to count


@dataclass(frozen=True)
class Gap:
    table: str
    period: str
    column: str | None  # None: the whole table is missing
    value: str | None
    expected: float  # smallest count of the prior periods


def _counts(conn: sa.Connection, table: SourceTable, periods: list[Period], columns: list[str]) -> dict:
    """Rows per period and combination of `columns`' values: {(period, value, ...): rows}, one scan."""
    t = table.sa_table()
    placed = place(t, table.time_column, periods, conn.dialect.name)
    keys = [placed.period_start, *(t.c[c] for c in columns)]
    q = sa.select(*keys, sa.func.count()).select_from(placed.joined).where(placed.window).group_by(*keys)
    return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in conn.execute(q)}


def _expected(table: SourceTable, prior: list[int]) -> float | None:
    """The count history promises (the smallest prior one), or None if zero would be plausible."""
    if len(prior) < HISTORY or min(prior) == 0:
        return None
    if table.column(table.time_column).kind != "date" and min(prior) < MIN_ROWS:
        return None
    return float(min(prior))


def find_gaps(conn: sa.Connection, table: SourceTable, columns: list[str], periods: list[Period]) -> list[Gap]:
    """Missing table rows and vanished dimension values of `table` in `periods`."""
    every = with_history(periods, HISTORY)
    keys = [p.key for p in every]
    combos = _counts(conn, table, every, columns)  # the dimension columns have a few values each
    totals: dict[tuple, int] = defaultdict(int)
    for (period, *_), n in combos.items():
        totals[(period,)] += n
    gaps = []
    for i in range(HISTORY, len(every)):
        prior = [totals.get((k,), 0) for k in keys[i - HISTORY:i]]
        expected = _expected(table, prior)
        if totals.get((keys[i],), 0) == 0 and expected is not None:
            gaps.append(Gap(table.name, keys[i], None, None, expected))
    # a value vanishing is only its own problem while the table keeps its usual volume: on a day that
    # lost most of its rows, rare values vanish by chance, and the drop is the problem (data_drop)
    usual = {keys[i] for i in range(HISTORY, len(every))
             if totals.get((keys[i],), 0) >= MIN_SHARE_KEPT * min(totals.get((k,), 0) for k in keys[i - HISTORY:i])}
    missing_periods = {g.period for g in gaps}
    for i_column, column in enumerate(columns, start=1):
        by_value: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for combo, n in combos.items():
            by_value[combo[i_column]][combo[0]] += n
        for value, counts in sorted(by_value.items()):
            for i in range(HISTORY, len(every)):
                if keys[i] in missing_periods or keys[i] not in usual or counts.get(keys[i], 0) > 0:
                    continue
                expected = _expected(table, [counts.get(k, 0) for k in keys[i - HISTORY:i]])
                if expected is not None:
                    gaps.append(Gap(table.name, keys[i], column, value, expected))
    return gaps
