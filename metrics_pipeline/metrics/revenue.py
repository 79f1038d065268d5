"""Revenue metrics from the `app` database: payments, subscriptions, MRR and its movements.

MRR is counted in exact integer units of 1/1200 USD (a monthly plan contributes price_cents x 12,
an annual plan price_cents), so sums of annual plans' price/12 never round (edge rule 3).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from metrics_pipeline.metrics.engine import number, source_table, valid
from metrics_pipeline.metrics.periods import Period, periods_subquery
from metrics_pipeline.metrics.spec import (
    DAY_WEEK_MONTH, CustomMetrics, Domain, Formula, MetricDef, MetricRow, MetricSpec, count,
    ratio_row, total, value_row,
)
from metrics_pipeline.metrics.sqltime import MICROSECOND, timestamp_literal, ts_norm

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


def _paying_at(s: sa.Table, instant_next: sa.ColumnElement) -> sa.ColumnElement:
    """Paying at t: started_at <= t, trial over (<= t), not ended (> t); t given as t + 1 µs."""
    return sa.and_(
        s.c.started_at < instant_next,
        sa.or_(s.c.trial_ends_at.is_(None), s.c.trial_ends_at < instant_next),
        sa.or_(s.c.ended_at.is_(None), s.c.ended_at >= instant_next),
    )


def _units(s: sa.Table) -> sa.ColumnElement:
    return sa.case((s.c.billing_interval == "month", s.c.price_cents * 12), else_=s.c.price_cents)


def _first_paid(s: sa.Table, users: sa.Select | None = None) -> sa.Subquery:
    """Per user (of `users`, default all), the first instant they paid anything (a priced
    subscription past its trial)."""
    paying_from = sa.case(
        (sa.and_(s.c.trial_ends_at.is_not(None), ts_norm(s.c.trial_ends_at) > ts_norm(s.c.started_at)),
         ts_norm(s.c.trial_ends_at)),
        else_=ts_norm(s.c.started_at),
    )
    nonempty = sa.or_(s.c.ended_at.is_(None), ts_norm(s.c.ended_at) > paying_from)
    q = sa.select(s.c.user_id, sa.func.min(paying_from).label("first_paid")).where(valid(s), s.c.price_cents > 0, nonempty)
    if users is not None:
        q = q.where(s.c.user_id.in_(users))
    return q.group_by(s.c.user_id).subquery("f")


def _live_subscriptions(periods: list[Period], dialect: str) -> sa.CTE:
    """The valid subscriptions that overlap [first start, last end] of `periods`, materialized once.

    Started before the last end and not ended before the first start: an index range on `ended_at`
    (NULL or late) rather than every subscription ever started, so a nightly run reads the
    subscriptions alive around its day, not the whole history.
    """
    s = source_table("subscriptions")
    lo_next = sa.literal_column(timestamp_literal(periods[0].start_utc + MICROSECOND, dialect))
    hi_next = sa.literal_column(timestamp_literal(periods[-1].end_utc + MICROSECOND, dialect))
    columns = (s.c.user_id, s.c.plan, s.c.price_cents, s.c.billing_interval, s.c.started_at, s.c.trial_ends_at,
               s.c.ended_at)
    # two branches, each an index range on ended_at (one OR would let SQLite scan started_at instead)
    running = sa.select(*columns).where(s.c.ended_at.is_(None), s.c.started_at < hi_next, valid(s))
    ended = sa.select(*columns).where(s.c.ended_at >= lo_next, s.c.started_at < hi_next, valid(s))
    return sa.union_all(running, ended).cte("live").prefix_with("MATERIALIZED")


def _user_plan_mrr(p: sa.Subquery, live: sa.CTE) -> sa.Subquery:
    """Per period, user and plan: MRR units paying at the period's start and at its end."""
    s = live
    units = _units(s)
    return (
        sa.select(
            p.c.period_start, s.c.user_id, s.c.plan,
            sa.func.sum(sa.case((_paying_at(s, p.c.lo_next), units), else_=0)).label("s"),
            sa.func.sum(sa.case((_paying_at(s, p.c.hi_next), units), else_=0)).label("e"),
        )
        .select_from(p.join(s, sa.and_(
            s.c.started_at < p.c.hi_next, sa.or_(s.c.ended_at.is_(None), s.c.ended_at >= p.c.lo_next))))
        .group_by(p.c.period_start, s.c.user_id, s.c.plan)
        .subquery("up")
    )


MOVEMENTS = ("mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churned")


def mrr_movements(conn: sa.Connection, periods: list[Period], as_of: dt.datetime) -> list[MetricRow]:
    """MRR, subscribers, movements and churn rates, comparing each user's MRR at start and at end."""
    p = periods_subquery(periods, conn.dialect.name)
    live = _live_subscriptions(periods, conn.dialect.name)
    up = _user_plan_mrr(p, live)
    u = (sa.select(up.c.period_start, up.c.user_id, sa.func.sum(up.c.s).label("s"), sa.func.sum(up.c.e).label("e"))
         .group_by(up.c.period_start, up.c.user_id).subquery("u"))
    f = _first_paid(source_table("subscriptions"), sa.select(live.c.user_id))
    s, e = u.c.s, u.c.e
    returning = f.c.first_paid < p.c.lo  # paid at some instant before start

    def when(cond, then):
        return sa.func.coalesce(sa.func.sum(sa.case((cond, then), else_=0)), 0)

    q = (
        sa.select(
            u.c.period_start,
            when(sa.true(), s).label("mrr_start"),
            when(sa.true(), e).label("mrr"),
            when(sa.and_(s == 0, e > 0, sa.or_(f.c.first_paid.is_(None), sa.not_(returning))), e).label("mrr_new"),
            when(sa.and_(s == 0, e > 0, returning), e).label("mrr_reactivation"),
            when(sa.and_(e > s, s > 0), e - s).label("mrr_expansion"),
            when(sa.and_(s > e, e > 0), s - e).label("mrr_contraction"),
            when(sa.and_(s > 0, e == 0), s).label("mrr_churned"),
            when(s > 0, 1).label("customers_start"),
            when(sa.and_(s > 0, e == 0), 1).label("customers_churned"),
            when(e > 0, 1).label("active_subscribers"),
        )
        .select_from(u.join(p, p.c.period_start == u.c.period_start).outerjoin(f, f.c.user_id == u.c.user_id))
        .group_by(u.c.period_start)
    )
    found = {str(r.period_start): {k: number(v) for k, v in r._mapping.items()} for r in conn.execute(q)}
    by_plan = conn.execute(
        sa.select(up.c.period_start, up.c.plan, sa.func.sum(up.c.e).label("mrr"),
                  sa.func.sum(sa.case((up.c.e > 0, 1), else_=0)).label("subscribers"))
        .group_by(up.c.period_start, up.c.plan)
        .having(sa.func.sum(up.c.e) > 0)
    ).all()
    by_key = {period.key: period for period in periods}
    rows: list[MetricRow] = []
    for period in periods:
        v = found.get(period.key, {})
        units = {k: v.get(k, 0) for k in ("mrr_start", "mrr", *MOVEMENTS)}
        usd = {k: x / UNITS_PER_USD for k, x in units.items()}
        rows += [value_row(k, period, usd[k]) for k in ("mrr", *MOVEMENTS)]
        rows.append(value_row("active_subscribers", period, v.get("active_subscribers", 0)))
        rows.append(ratio_row("customer_churn_rate", period, v.get("customers_churned", 0), v.get("customers_start", 0)))
        lost = units["mrr_churned"] + units["mrr_contraction"]
        won = units["mrr_expansion"] + units["mrr_reactivation"]
        start = usd["mrr_start"]
        rows.append(ratio_row("gross_mrr_churn_rate", period, lost / UNITS_PER_USD, start))
        rows.append(ratio_row("net_mrr_churn_rate", period, (lost - won) / UNITS_PER_USD, start))
        rows.append(ratio_row("net_revenue_retention", period, (units["mrr_start"] - lost + won) / UNITS_PER_USD, start))
    for r in by_plan:
        period = by_key[str(r.period_start)]
        rows.append(value_row("mrr", period, number(r.mrr) / UNITS_PER_USD, "plan", str(r.plan)))
        rows.append(value_row("active_subscribers", period, number(r.subscribers), "plan", str(r.plan)))
    return rows


def mrr_at(conn: sa.Connection, periods: list[Period], at: str = "start") -> dict[str, float]:
    """Total MRR (USD) at each period's start or end, straight from subscriptions (for checks)."""
    p = periods_subquery(periods, conn.dialect.name)
    s = _live_subscriptions(periods, conn.dialect.name)  # valid, and alive within the periods
    instant = p.c.lo_next if at == "start" else p.c.hi_next
    q = (sa.select(p.c.period_start, sa.func.coalesce(sa.func.sum(_units(s)), 0).label("units"))
         .select_from(p.outerjoin(s, _paying_at(s, instant)))
         .group_by(p.c.period_start))
    return {str(r.period_start): number(r.units) / UNITS_PER_USD for r in conn.execute(q)}


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
