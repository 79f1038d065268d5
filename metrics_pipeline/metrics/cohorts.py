"""Weekly retention cohorts (METRICS.md "Cohorts and funnels", edge rule 11).

The cohort of ISO week W is the users created in W. Week P owns every (W, N) with W + N = P and
N = 0..12: N = 0 counts every member as returned, N > 0 counts members with a session in P. Cohorts
that began before METRICS_START_DATE are included; empty cohorts produce nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from metrics_pipeline.metrics.activity import cohort_returns
from metrics_pipeline.metrics.periods import Period, shifted
from metrics_pipeline.metrics.spec import MetricDef, MetricRow, ratio_row

MAX_PERIOD = 12
SUMMARY_WEEKS = (1, 4)

SUMMARY_METRICS = tuple(
    MetricDef(f"retention_w{n}", ("week",),
              f"Share of the users created {n} week(s) before the week who had a session in it "
              "(written only for a non-empty cohort).", kind="ratio")
    for n in SUMMARY_WEEKS
)


@dataclass(frozen=True)
class CohortCell:
    cohort_week: str
    period_number: int
    measured_week: str
    cohort_size: int
    users_returned: int

    @property
    def retention_rate(self) -> float:
        return self.users_returned / self.cohort_size


def weekly_cohorts(conn: sa.Connection, weeks: list[Period]) -> list[CohortCell]:
    """Every non-empty (cohort week, period number) cell measured in `weeks`."""
    pairs = [(week, shifted(week, -n)) for week in weeks for n in range(MAX_PERIOD + 1)]
    got = cohort_returns(conn, pairs)
    cells = []
    for (week, cohort), n in zip(pairs, [n for _ in weeks for n in range(MAX_PERIOD + 1)], strict=True):
        if (week.key, cohort.key) not in got:
            continue
        returned, size = got[(week.key, cohort.key)]
        cells.append(CohortCell(cohort.key, n, week.key, size, size if n == 0 else returned))
    return cells


def summary_rows(weeks: list[Period], cells: list[CohortCell]) -> list[MetricRow]:
    """retention_w1 / retention_w4 of each week: its cohort of 1 (4) weeks before, if non-empty."""
    by = {(c.measured_week, c.period_number): c for c in cells}
    return [
        ratio_row(f"retention_w{n}", week, c.users_returned, c.cohort_size)
        for week in weeks for n in SUMMARY_WEEKS if (c := by.get((week.key, n))) is not None
    ]
