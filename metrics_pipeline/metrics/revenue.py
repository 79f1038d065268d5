"""Revenue metrics from the `app` database: payments, subscriptions, MRR and its movements.

MRR is counted in exact integer units of 1/1200 USD (a monthly plan contributes price_cents x 12,
an annual plan price_cents), so sums of annual plans' price/12 never round (edge rule 3). MRR and
its movements are kept per user and plan in a ledger that starts from the subscriptions paying at
a run's first instant and moves period by period through the changes placed in the run: no query
joins periods to subscriptions.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import number, source_table, valid
from metrics_pipeline.metrics.periods import Period, consecutive_runs, place, shifted
from metrics_pipeline.metrics.spec import (
    DAY_WEEK_MONTH, CustomMetrics, Domain, Formula, MetricDef, MetricRow, MetricSpec, count,
    ratio_row, total, value_row,
)
from metrics_pipeline.metrics.sqltime import MICROSECOND, naive_utc, scanned, timestamp_literal, ts_norm

UNITS_PER_USD = 1200


def _charged(t: sa.Table) -> sa.ColumnElement:
    return t.c.status.in_(("succeeded", "refunded"))


def _converted(t: sa.Table) -> sa.ColumnElement:
    return sa.or_(t.c.ended_at.is_(None), ts_norm(t.c.ended_at) > ts_norm(t.c.trial_ends_at))


SPECS = (
    MetricSpec("gross_revenue", DAY_WEEK_MONTH,
               "USD charged in the period: payments that succeeded or were later refunded.",
               dims=("provider", "kind"), table="payments", measure=total("amount_cents", _charged), scale=100),
    MetricSpec("store_fees", DAY_WEEK_MONTH, "Store and processor fees (USD) of the period's charged payments.",
               dims=("provider",), table="payments", measure=total("fee_cents", _charged), scale=100),
    MetricSpec("refunds", DAY_WEEK_MONTH, "USD refunded in the period (by refund time, not payment time).",
               dims=("provider",), table="payments", time="refunded_at", measure=total("amount_cents"),
               scale=100),
    MetricSpec("failed_payments", DAY_WEEK_MONTH, "Charge attempts that failed in the period.",
               dims=("provider",), table="payments", measure=count(lambda t: t.c.status == "failed")),
    MetricSpec("new_subscriptions", DAY_WEEK_MONTH,
               "Subscriptions started in the period (plan changes start a new one).",
               dims=("plan",), table="subscriptions", time="started_at"),
    MetricSpec("canceled_subscriptions", DAY_WEEK_MONTH, "Subscriptions whose owner asked to cancel in the period.",
               dims=("plan",), table="subscriptions", time="canceled_at"),
    MetricSpec("trial_conversions", DAY_WEEK_MONTH,
               "Trials that ended in the period and turned into paid access.",
               dims=("plan",), table="subscriptions", time="trial_ends_at", measure=count(_converted)),
)


def _units(s: sa.Table) -> sa.ColumnElement:
    return sa.case((s.c.billing_interval == "month", s.c.price_cents * 12), else_=s.c.price_cents)


def _trial_after_start(s: sa.Table) -> sa.ColumnElement:
    return sa.and_(s.c.trial_ends_at.is_not(None), ts_norm(s.c.trial_ends_at) > ts_norm(s.c.started_at))


def _paying_from(s: sa.Table) -> sa.ColumnElement:
    """The instant a subscription starts paying: its trial's end when that is after its start."""
    return sa.case((_trial_after_start(s), ts_norm(s.c.trial_ends_at)), else_=ts_norm(s.c.started_at))


def _pays_at_all(s: sa.Table) -> sa.ColumnElement:
    """Paying at some instant: [paying_from, ended_at) is not empty."""
    return sa.or_(s.c.ended_at.is_(None), ts_norm(s.c.ended_at) > _paying_from(s))


def _first_paid(s: sa.Table, users: list) -> sa.Select:
    """(user_id, first_paid): for each user of `users`, the first instant they paid anything (a priced
    subscription past its trial)."""
    return (sa.select(s.c.user_id, sa.func.min(_paying_from(s)).label("first_paid"))
            .where(valid(s), s.c.price_cents > 0, _pays_at_all(s), s.c.user_id.in_(users))
            .group_by(s.c.user_id))


def _paying_at_query(instant: dt.datetime, dialect: str) -> sa.Select:
    """(user_id, plan, units): MRR units of each user and plan paying at `instant` (METRICS.md: started
    at or before it, trial over at or before it, not ended at or before it).

    Two branches, each an index range on `ended_at` when there is one (still running, or ending
    after the instant), so subscriptions that ended long ago are not visited; one scan of the table
    in order when there is none (`scanned`).
    """
    s = source_table("subscriptions")
    after = sa.literal_column(timestamp_literal(instant + MICROSECOND, dialect))  # `<= t` is `< t + 1µs`
    paying = sa.and_(scanned(s.c.started_at) < after,
                     sa.or_(s.c.trial_ends_at.is_(None), s.c.trial_ends_at < after), valid(s))
    branches = [sa.select(s.c.user_id, s.c.plan, _units(s).label("units")).where(running, paying)
                for running in (s.c.ended_at.is_(None), s.c.ended_at >= after)]
    u = sa.union_all(*branches).subquery("paying")
    return sa.select(u.c.user_id, u.c.plan, sa.func.sum(u.c.units).label("units")).group_by(u.c.user_id, u.c.plan)


def _changes_query(run: list[Period], dialect: str) -> sa.CompoundSelect:
    """(k, user_id, plan, d): MRR units each user and plan gains (starts paying) or loses (stops) at an
    instant in (start, end] of period k, for the consecutive periods of `run`.

    A subscription adds its units at its paying start and removes them at `ended_at` (when it paid
    at all). Each event is placed by its UTC bucket (`periods.place`) over the run and the period
    after it; an event exactly on a period's start belongs to the period that ends there, since MRR
    "at the end" includes that instant.
    """
    s = source_table("subscriptions")
    places = [*run, shifted(run[-1], 1)]
    extra = {"prev": [f"'{q.key}'" for q in [run[0], *run]],
             "lo_next": [timestamp_literal(q.start_utc + MICROSECOND, dialect) for q in places]}
    after_first = sa.literal_column(timestamp_literal(run[0].start_utc + MICROSECOND, dialect))
    after_last = sa.literal_column(timestamp_literal(run[-1].end_utc + MICROSECOND, dialect))
    trial_after_start = _trial_after_start(s)

    def events(column: str, when: sa.ColumnElement, units: sa.ColumnElement) -> sa.Select:
        placed = place(s, column, places, dialect, f"at_{column}", extra)
        col, m = s.c[column], placed.map.c
        period = sa.case((col < m.lo_next, m.prev), else_=m.period_start)
        return (sa.select(period.label("k"), s.c.user_id, s.c.plan, units.label("d"))
                .select_from(placed.joined)
                .where(col >= after_first, col < after_last, valid(s), when))  # (start, end], not the map's window

    return sa.union_all(
        events("started_at", sa.and_(sa.not_(trial_after_start), _pays_at_all(s)), _units(s)),
        events("trial_ends_at", sa.and_(trial_after_start, _pays_at_all(s)), _units(s)),
        events("ended_at", _pays_at_all(s), -_units(s)),
    )


@dataclass
class _Ledger:
    """MRR units per user and plan, moved forward one period at a time."""

    units: dict = field(default_factory=lambda: defaultdict(Counter))  # user -> plan -> units
    plan_mrr: Counter = field(default_factory=Counter)
    plan_subscribers: Counter = field(default_factory=Counter)  # (user, plan) pairs with units > 0
    paying_users: int = 0

    @property
    def mrr(self) -> int:
        return sum(self.plan_mrr.values())

    def user_total(self, user) -> int:
        return sum(self.units[user].values()) if user in self.units else 0

    def add(self, user, plan, units: int) -> None:
        if not units:
            return
        before_user, before = self.user_total(user), self.units[user][plan]
        after = before + units
        self.units[user][plan] = after
        self.plan_mrr[plan] += units
        self.plan_subscribers[plan] += (after > 0) - (before > 0)
        self.paying_users += (before_user + units > 0) - (before_user > 0)

    def apply(self, user, deltas: list[tuple[str, int]]) -> tuple[int, int]:
        """Add a user's (plan, units) changes of one period; the user's MRR units before and after."""
        before = self.user_total(user)
        for plan, d in deltas:
            self.add(user, plan, d)
        return before, self.user_total(user)


def _ledgers(conn: sa.Connection, periods: list[Period]):
    """Per run of consecutive periods: the ledger at the run's start, then (period, changes by user)
    for each period, the ledger not yet moved past it. Two statements per run, each reading the
    subscriptions once: the cost grows with the subscriptions alive at the start and those that
    changed in the run, never with periods x subscriptions."""
    dialect = conn.dialect.name
    for run in consecutive_runs(periods):
        ledger = _Ledger()
        for r in conn.execute(_paying_at_query(run[0].start_utc, dialect)):
            ledger.add(r.user_id, str(r.plan), number(r.units))
        changes: dict[str, dict] = defaultdict(lambda: defaultdict(list))  # period key -> user -> [(plan, d)]
        for r in conn.execute(_changes_query(run, dialect)):
            changes[str(r.k)][r.user_id].append((str(r.plan), number(r.d)))
        yield ledger, [(period, changes.get(period.key, {})) for period in run]


MOVEMENTS = ("mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churned")


def mrr_movements(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    """MRR, subscribers, movements and churn rates, comparing each user's MRR at start and at end.

    Only users whose MRR changed in a period can move; their first paid instant (new or returning)
    is read for those who had an arrival.
    """
    rows: list[MetricRow] = []
    s = source_table("subscriptions")
    for ledger, steps in _ledgers(conn, periods):
        arriving = {user for _, changes in steps for user, c in changes.items() if any(d > 0 for _, d in c)}
        first_paid = {}
        for chunk in _batches(sorted(arriving)):
            first_paid |= {r.user_id: naive_utc(r.first_paid) for r in conn.execute(_first_paid(s, chunk))}
        for period, changes in steps:
            start, customers_start = ledger.mrr, ledger.paying_users
            moved = Counter()
            churned_customers = 0
            for user, deltas in changes.items():
                before, after = ledger.apply(user, deltas)
                if before == 0 and after > 0:
                    paid = first_paid.get(user)
                    moved["mrr_reactivation" if paid is not None and paid < period.start_utc else "mrr_new"] += after
                elif before > 0 and after == 0:
                    moved["mrr_churned"] += before
                    churned_customers += 1
                elif after > before:
                    moved["mrr_expansion"] += after - before
                elif before > after:
                    moved["mrr_contraction"] += before - after
            end = ledger.mrr
            rows += [value_row("mrr", period, end / UNITS_PER_USD)]
            rows += [value_row(k, period, moved[k] / UNITS_PER_USD) for k in MOVEMENTS]
            rows.append(value_row("active_subscribers", period, ledger.paying_users))
            rows.append(ratio_row("customer_churn_rate", period, churned_customers, customers_start))
            lost = moved["mrr_churned"] + moved["mrr_contraction"]
            won = moved["mrr_expansion"] + moved["mrr_reactivation"]
            start_usd = start / UNITS_PER_USD
            rows.append(ratio_row("gross_mrr_churn_rate", period, lost / UNITS_PER_USD, start_usd))
            rows.append(ratio_row("net_mrr_churn_rate", period, (lost - won) / UNITS_PER_USD, start_usd))
            rows.append(ratio_row("net_revenue_retention", period, (start - lost + won) / UNITS_PER_USD, start_usd))
            for plan in sorted(p for p, units in ledger.plan_mrr.items() if units > 0):
                rows.append(value_row("mrr", period, ledger.plan_mrr[plan] / UNITS_PER_USD, "plan", plan))
                rows.append(value_row("active_subscribers", period, ledger.plan_subscribers[plan], "plan", plan))
    return rows


def _batches(users: list, size: int = 5000):
    """`users` in lists short enough for one IN (...) on every engine (SQLite's variable limit)."""
    return (users[i:i + size] for i in range(0, len(users), size))


def mrr_at(conn: sa.Connection, periods: list[Period], at: str = "start") -> dict[str, float]:
    """Total MRR (USD) at each period's start or end, from the subscriptions alone (for checks)."""
    found = {}
    for ledger, steps in _ledgers(conn, periods):
        for period, changes in steps:
            if at == "start":
                found[period.key] = ledger.mrr / UNITS_PER_USD
            for user, deltas in changes.items():
                ledger.apply(user, deltas)
            if at != "start":
                found[period.key] = ledger.mrr / UNITS_PER_USD
    return found


def _difference(gross, fees, refunds):
    return gross - fees - refunds


REVENUE = Domain(
    name="revenue",
    database="app",
    description="What the product earns: payments, subscriptions, MRR movements, churn and customer value.",
    specs=SPECS,
    custom=(
        CustomMetrics(
            (
                MetricDef("mrr", DAY_WEEK_MONTH, "Monthly recurring revenue (USD) of paying subscriptions at period end.",
                          dims=("plan",), kind="balance"),
                MetricDef("active_subscribers", DAY_WEEK_MONTH, "Users with MRR above zero at period end.",
                          dims=("plan",), kind="balance"),
                MetricDef("mrr_new", DAY_WEEK_MONTH, "End MRR of users paying for the first time ever.",
                          kind="movement"),
                MetricDef("mrr_reactivation", DAY_WEEK_MONTH, "End MRR of returning users who had paid before.",
                          kind="movement"),
                MetricDef("mrr_expansion", DAY_WEEK_MONTH, "MRR gained by users who were already paying.",
                          kind="movement"),
                MetricDef("mrr_contraction", DAY_WEEK_MONTH, "MRR lost by users who still pay something.",
                          kind="movement"),
                MetricDef("mrr_churned", DAY_WEEK_MONTH, "Start MRR of users who no longer pay at period end.",
                          kind="movement"),
                MetricDef("customer_churn_rate", ("week", "month"),
                          "Share of the users paying at period start who pay nothing at its end.", kind="ratio"),
                MetricDef("gross_mrr_churn_rate", ("week", "month"),
                          "(Churned + contraction MRR) / MRR at period start.", kind="ratio"),
                MetricDef("net_mrr_churn_rate", ("week", "month"),
                          "(Churned + contraction - expansion - reactivation MRR) / MRR at start; may be negative.",
                          kind="ratio"),
                MetricDef("net_revenue_retention", ("month",), "1 - net MRR churn rate.", kind="ratio"),
            ),
            ("subscriptions",),
            mrr_movements,
        ),
    ),
    formulas=(
        Formula("net_revenue", DAY_WEEK_MONTH, "Gross revenue minus store fees and refunds (USD); may be negative.",
                inputs=("gross_revenue", "store_fees", "refunds"), fn=_difference),
        Formula("arr", DAY_WEEK_MONTH, "Annual recurring revenue: 12 x MRR at period end (USD).",
                inputs=("mrr",), fn=lambda mrr: 12 * mrr, kind="balance"),
        Formula("arpu", DAY_WEEK_MONTH, "Average MRR per paying user at period end (USD).",
                inputs=("mrr", "active_subscribers"), fn=lambda mrr, n: (mrr, n), kind="ratio"),
        Formula("clv", ("month",), "Customer lifetime value: ARPU / customer churn rate (NULL without churn).",
                inputs=("arpu", "customer_churn_rate"), fn=lambda arpu, churn: (arpu, churn), kind="ratio"),
    ),
)


CENT = 0.005  # "to the cent": a difference below half a cent is rounding noise of float USD


def mrr_identity_breaks(totals: dict[str, dict[str, float | None]], start_mrr: dict[str, float]) -> list[dict]:
    """Periods where mrr(end) != mrr(start) + new + reactivation + expansion - contraction - churned.

    `totals` maps period_start to the stored total of each metric; `start_mrr` is MRR at each
    period's start computed independently from the source. Missing stored values are breaks too.
    """
    breaks = []
    for key, start in sorted(start_mrr.items()):
        v = totals.get(key, {})
        needed = ("mrr", *MOVEMENTS)
        if any(v.get(m) is None for m in needed):
            breaks.append({"period": key, "problem": "missing rows: " + ", ".join(m for m in needed if v.get(m) is None)})
            continue
        expected = (start + v["mrr_new"] + v["mrr_reactivation"] + v["mrr_expansion"]
                    - v["mrr_contraction"] - v["mrr_churned"])
        if abs(v["mrr"] - expected) >= CENT:
            breaks.append({"period": key, "mrr_start": round(start, 4), "mrr_end": round(v["mrr"], 4),
                           "start_plus_movements": round(expected, 4), "difference": round(v["mrr"] - expected, 4)})
    return breaks
