"""Retention figures per period, and the cohort retention triangle, computed in the database.

Definitions (every number is a setting, ``TENURE_RETENTION_<FIELD>``):

- A customer **counts at a moment** ``t`` (a period's start or end, always the first instant
  of a month, UTC) when they placed a non-cancelled order in the ``active_window_months``
  whole calendar months before ``t`` (default 12: "ordered in the last year").
- **customersAtStart** / **customersAtEnd**: customers who count at the period's start / end.
- **newCustomers**: customers whose first order ever falls in the period.
- **returningCustomers**: customers who did not count at the start, ordered in the period and
  had ordered before (won back). A customer who joins the active base in a period (new or
  returning) still counts at its end, because the window is at least one period long.
- **CRR** = (customers at end - customers who joined in the period) / customers at start x 100,
  DOMAIN.md's formula where "new" means new to the active base (first-timers and the won
  back), so it is the share of the starting customers still counting at the end.
  **churnRate** = 100 - CRR.
- **repeatPurchaseRate**: of the customers who ordered in the period, the share with 2+ orders.
- **averageOrderValue**: net revenue (amount - refunded) / orders in the period;
  **purchaseFrequency**: orders / customers who ordered in the period.
- **historicClv**: net revenue up to the period's end / customers who had ordered by then.
- **naiveClv** (formerly predictedClv): averageOrderValue x purchaseFrequency x expected
  lifetime in periods, the lifetime being 1 / churn rate, capped at ``max_lifetime_years``.
  A rule of thumb, not a forecast: it sits at the cap while nobody can have lapsed yet and
  changes with the period's length. The predictions plugin forecasts per customer.
- **allTimeRepeatPurchaseRate**: of everyone who had bought by the period's end, the share
  who had bought on two or more days (several orders of one day, in the business time zone,
  are one purchase occasion);
  read from the orders (:func:`repeat_so_far`), once per request and only when asked for.

The figures come from the order months rollup (:mod:`tenure.core.services.order_months`): one row
per customer and active month, linked to the customer's previous and next active months, kept
current in each order's transaction. So one statement reads each month row once and tests
plain columns; no window function over the orders runs at read time. A customer counts at
each moment from a cumulative histogram: a month row makes its customer count from the month
after it (or from when the previous active month's window ends, if later) until its own
window ends. Splits (``by``) join the rows to a dimension a plugin contributes
(``tenure_retention_dimensions``: a customer id -> group label SELECT); the core brings
CHANNEL and TAG.
"""

from __future__ import annotations

import bisect
import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text

from tenure.core.context import ServiceContext
from tenure.core.contributions import RetentionDimension
from tenure.core.errors import UserError
from tenure.core.settings import SettingsError


class GroupBy(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


MONTHS = {GroupBy.MONTH: 1, GroupBy.QUARTER: 3, GroupBy.YEAR: 12}


@dataclass(frozen=True)
class RetentionSettings:
    #: A customer counts at a moment when they ordered in this many whole months before it.
    active_window_months: int = 12
    #: Predicted CLV assumes a customer stays at most this long.
    max_lifetime_years: int = 10
    #: The longest range one query may cover.
    max_months: int = 120

    def check(self) -> None:
        if self.active_window_months < 1 or self.max_lifetime_years < 1 or self.max_months < 1:
            raise SettingsError(
                "TENURE_RETENTION_ACTIVE_WINDOW_MONTHS, _MAX_LIFETIME_YEARS and _MAX_MONTHS: at least 1")


@dataclass
class PeriodFigures:
    group: str | None
    start: date
    end: date
    customers_at_start: int = 0
    customers_at_end: int = 0
    new_customers: int = 0
    returning_customers: int = 0
    buyers: int = 0
    repeat_buyers: int = 0
    orders: int = 0
    revenue: int = 0
    historic_revenue: int = 0
    customers_so_far: int = 0
    lifetime_cap_periods: float = 0.0

    @property
    def retained(self) -> int:
        return self.customers_at_end - self.new_customers - self.returning_customers

    @property
    def crr(self) -> float | None:
        return _pct(self.retained, self.customers_at_start)

    @property
    def churn_rate(self) -> float | None:
        crr = self.crr
        return None if crr is None else round(100.0 - crr, 2)

    @property
    def repeat_purchase_rate(self) -> float | None:
        return _pct(self.repeat_buyers, self.buyers)

    @property
    def average_order_value(self) -> int | None:
        return round(self.revenue / self.orders) if self.orders else None

    @property
    def purchase_frequency(self) -> float | None:
        return round(self.orders / self.buyers, 4) if self.buyers else None

    @property
    def historic_clv(self) -> int | None:
        return round(self.historic_revenue / self.customers_so_far) if self.customers_so_far else None

    @property
    def predicted_clv(self) -> int | None:
        if not self.buyers or self.crr is None:
            return None
        churn = (100.0 - self.crr) / 100.0
        lifetime = self.lifetime_cap_periods if churn <= 0 else min(1.0 / churn, self.lifetime_cap_periods)
        return round(self.revenue / self.buyers * lifetime)


@dataclass
class Cohort:
    month: date
    size: int
    #: customers of the cohort ordering N months after the cohort month, N = 0, 1, ...
    active: list[int] = field(default_factory=list)

    def shares(self) -> list[float]:
        return [_pct(n, self.size) or 0.0 for n in self.active]


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def retention_settings(ctx: ServiceContext) -> RetentionSettings:
    return ctx.settings.for_plugin("retention", RetentionSettings)


def month_index(day: date | datetime) -> int:
    return day.year * 12 + day.month - 1


def month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _range(start: date, end: date, group_by: GroupBy, cfg: RetentionSettings) -> tuple[int, int]:
    """Month indices of the first period's start and the last period's end (exclusive):
    ``start`` rounds down and ``end`` up to whole periods."""
    if end <= start:
        raise UserError("must be after from", "to", "invalid_range")
    step = MONTHS[group_by]
    if cfg.active_window_months < step:
        raise UserError(
            f"grouping by {group_by.value} needs an active window of at least {step} months "
            f"(TENURE_RETENTION_ACTIVE_WINDOW_MONTHS is {cfg.active_window_months})", "groupBy", "window_too_short")
    first = month_index(start) // step * step
    last = -(-(month_index(end) + (1 if end.day > 1 else 0)) // step) * step
    if last - first > cfg.max_months:
        raise UserError(f"covers {last - first} months; at most {cfg.max_months} at once", "to", "range_too_long")
    return first, last


def dimensions(plugins: Any) -> dict[str, RetentionDimension]:
    """The dimensions the enabled plugins contribute (the core's CHANNEL and TAG included),
    by name."""
    found: dict[str, RetentionDimension] = {}
    for contributed in plugins.hook.tenure_retention_dimensions():
        for dimension in contributed or ():
            if dimension.name in found:
                raise ValueError(f"two plugins contribute the retention dimension {dimension.name!r}")
            found[dimension.name] = dimension
    return dict(sorted(found.items()))


def _split(ctx: ServiceContext, by: str | None) -> tuple[str, str]:
    """The group key's expression and the join that provides it."""
    if by is None:
        return "''", ""
    dimension = dimensions(ctx.plugins).get(by)
    if dimension is None:
        raise UserError(f"no retention dimension {by!r}", "by", "unknown_dimension")
    return "d.label", f"JOIN ({dimension.sql}) d ON d.customer_id = om.customer_id"


async def retention(
    ctx: ServiceContext, start: date, end: date, group_by: GroupBy = GroupBy.MONTH, by: str | None = None
) -> list[PeriodFigures]:
    """Figures for each period from ``start`` to ``end`` (rounded out to whole periods), per
    group when ``by`` (a dimension's name) is given. One statement over the order months."""
    cfg = retention_settings(ctx)
    first, last = _range(start, end, group_by, cfg)
    step = MONTHS[group_by]
    key, join = _split(ctx, by)
    # A customer with one order in a period: a month row of one order, and no next active
    # month in the same period (periods are whole months, quarters or years: ``first`` is a
    # multiple of ``step``). Everything else depends on the month and previous active month
    # only, so rows are counted by those and the figures worked out per group of rows.
    alone = "" if step == 1 else (
        f" AND (om.next_month IS NULL OR om.next_month >= om.month - om.month % {step} + {step})")
    sql = f"""
SELECT {key} AS g, om.month, om.prev_month, COUNT(*), SUM(om.orders), SUM(om.revenue),
       SUM(CASE WHEN om.orders = 1{alone} THEN 1 ELSE 0 END)
FROM order_months om {join}
WHERE om.month < {last}
GROUP BY 1, 2, 3"""
    rows = await _read(ctx, sql)
    return _assemble(rows, first, last, step, cfg, by is not None)


async def _read(ctx: ServiceContext, sql: str) -> list[Any]:
    """One aggregation over the rollup. On PostgreSQL without the JIT compiler, whose compile
    time exceeds what it saves here, and with memory for a split's hash join. The request's
    reads run outside a transaction, so both are set for the session and put back after."""
    if ctx.dialect != "postgresql":
        return list((await ctx.session.execute(text(sql))).all())
    jit, work_mem = (await ctx.session.execute(text(
        "SELECT current_setting('jit'), current_setting('work_mem'), set_config('jit', 'off', false),"
        " set_config('work_mem', '64MB', false)"))).one()[:2]
    try:
        return list((await ctx.session.execute(text(sql))).all())
    finally:
        await ctx.session.execute(text("SELECT set_config('jit', :jit, false), set_config('work_mem', :mem, false)"),
                                  {"jit": jit, "mem": work_mem})


@dataclass
class _Period:
    buyers: int = 0
    repeat: int = 0
    orders: int = 0
    revenue: int = 0
    joined: int = 0
    new: int = 0


@dataclass
class _Group:
    hist: dict[int, int] = field(default_factory=dict)
    periods: dict[int, _Period] = field(default_factory=dict)
    revenue_before: int = 0
    customers_before: int = 0


def _assemble(rows: list[Any], first: int, last: int, step: int, cfg: RetentionSettings,
              grouped: bool) -> list[PeriodFigures]:
    window = cfg.active_window_months
    found: dict[str, _Group] = {}
    for g, mo, prev, count, orders, revenue, single in rows:
        group = found.setdefault(g, _Group())
        mo, count, revenue = int(mo), int(count), int(revenue or 0)
        new = prev is None
        if mo >= first - window:
            # The row's customer counts from the month after it (or after the window of their
            # previous active month, if later) to the end of its own window, inclusive.
            since = mo + 1 if new else max(mo + 1, int(prev) + window + 1)
            group.hist[since] = group.hist.get(since, 0) + count
            group.hist[mo + window + 1] = group.hist.get(mo + window + 1, 0) - count
        if mo < first:
            group.revenue_before += revenue
            group.customers_before += count if new else 0
            continue
        start = mo - (mo - first) % step
        p = group.periods.setdefault(start, _Period())
        p.orders += int(orders)
        p.revenue += revenue
        if new or int(prev) < start:  # the customer's first active month in the period
            p.buyers += count
            p.repeat += count - int(single)
            if new or int(prev) < start - window:  # did not count at the period's start
                p.joined += count
            p.new += count if new else 0
    groups = sorted(found) if grouped else [""]
    cap = cfg.max_lifetime_years * 12 / step
    out: list[PeriodFigures] = []
    for g in groups:
        group = found.get(g, _Group())
        h = group.hist
        # Customers counting at month m: the running sum of the histogram up to m.
        running, active = 0, {}
        for m in range(min([*h, first]), last + 1):
            running += h.get(m, 0)
            active[m] = running
        so_far, revenue = group.customers_before, group.revenue_before
        for start in range(first, last, step):
            p = group.periods.get(start, _Period())
            revenue += p.revenue
            so_far += p.new
            out.append(PeriodFigures(
                group=g if grouped else None, start=month_start(start), end=month_start(start + step),
                customers_at_start=active.get(start, 0), customers_at_end=active.get(start + step, 0),
                new_customers=p.new, returning_customers=p.joined - p.new, buyers=p.buyers, repeat_buyers=p.repeat,
                orders=p.orders, revenue=p.revenue, historic_revenue=revenue, customers_so_far=so_far,
                lifetime_cap_periods=cap))
    return out


async def cohorts(ctx: ServiceContext, start: date, end: date) -> list[Cohort]:
    """Customers by the month of their first order (from ``start`` to ``end``), and how many
    of each cohort ordered in each later month up to ``end``: one statement over the order
    months, whose rows carry their customer's first month."""
    cfg = retention_settings(ctx)
    first, last = _range(start, end, GroupBy.MONTH, cfg)
    sql = f"""
SELECT first_month, month - first_month, COUNT(*) FROM order_months
WHERE first_month >= {first} AND first_month < {last} AND month < {last}
GROUP BY 1, 2"""
    found: dict[int, Cohort] = {}
    for c, offset, n in sorted(await _read(ctx, sql)):
        cohort = found.setdefault(int(c), Cohort(month=month_start(int(c)), size=0, active=[0] * (last - int(c))))
        cohort.active[int(offset)] = int(n)
        if int(offset) == 0:  # everyone orders in their first month
            cohort.size = int(n)
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class RepeatSoFar:
    """Per group, when each customer first bought and when they first bought again on
    another day, as month indexes: what the all-time repeat-purchase rate of any period
    end is counted from."""

    first_months: dict[str, list[int]]
    second_months: dict[str, list[int]]

    def rate(self, group: str | None, end_month: int) -> float | None:
        """Customers who had bought on two or more days before ``end_month`` / customers
        who had bought before it, x 100."""
        key = group or ""
        buyers = bisect.bisect_left(self.first_months.get(key, []), end_month)
        repeat = bisect.bisect_left(self.second_months.get(key, []), end_month)
        return _pct(repeat, buyers)


def _day_sql(dialect: str, zone: str = "UTC") -> tuple[str, str]:
    """An order's purchase day in the business time zone ``zone`` (an IANA name the settings
    checked), and the month index of a day column ``{0}``."""
    if not re.fullmatch(r"[A-Za-z0-9/_+\-]+", zone):
        raise ValueError(f"not a time zone name: {zone!r}")
    if dialect == "sqlite":
        day = ("substr(placed_at, 1, 10)" if zone == "UTC"
               else f"date(business_day(placed_at, '{zone}') * 86400, 'unixepoch')")
        return (day, "(CAST(substr({0}, 1, 4) AS INTEGER) * 12 + CAST(substr({0}, 6, 2) AS INTEGER) - 1)")
    return (f"CAST(placed_at AT TIME ZONE '{zone}' AS DATE)",
            "(CAST(EXTRACT(YEAR FROM {0}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {0}) AS INTEGER) - 1)")


async def repeat_so_far(ctx: ServiceContext, by: str | None = None) -> RepeatSoFar:
    """One statement over the orders: each customer's first purchase day and first day
    after it (orders of one customer on one day are one purchase occasion; cancelled orders
    are no purchase), by group when ``by`` names a dimension."""
    day, month = _day_sql(ctx.dialect, ctx.settings.timezone)
    key, join = _split(ctx, by)
    join = join.replace("om.customer_id", "o.cid")
    sql = f"""
SELECT {key} AS g, {month.format('first_day')}, {month.format('second_day')}
FROM (SELECT cid, MIN(k) AS first_day, MIN(CASE WHEN n = 2 THEN k END) AS second_day
      FROM (SELECT cid, k, ROW_NUMBER() OVER (PARTITION BY cid ORDER BY k) AS n
            FROM (SELECT DISTINCT customer_id AS cid, {day} AS k FROM orders WHERE status <> 'cancelled') days) r
      WHERE n <= 2 GROUP BY cid) o {join}"""
    firsts: dict[str, list[int]] = {}
    seconds: dict[str, list[int]] = {}
    for group, first, second in await _read(ctx, sql):
        firsts.setdefault(group or "", []).append(int(first))
        if second is not None:
            seconds.setdefault(group or "", []).append(int(second))
    for months in (*firsts.values(), *seconds.values()):
        months.sort()
    return RepeatSoFar(firsts, seconds)
