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
- **predictedClv**: averageOrderValue x purchaseFrequency x expected lifetime in periods, the
  lifetime being 1 / churn rate, capped at ``max_lifetime_years``.

The heavy work is one statement: orders are reduced to one row per customer and month, a
window function finds each customer's previous and next active month, and customers counting
at each boundary come from two cumulative histograms (months in which a customer starts
counting, and months after which they stop), so the cost is one pass over the orders in the
range whatever the number of periods.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, text

from core.context import ServiceContext
from core.db import UTCDateTime
from core.errors import UserError
from core.settings import SettingsError


class GroupBy(enum.StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Dimension(enum.StrEnum):
    CHANNEL = "channel"
    TAG = "tag"


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


def _month_sql(column: str, dialect: str) -> str:
    """Months since year 0 of a UTC time (SQLite keeps times as 'YYYY-MM-DD HH:MM:SS' text)."""
    if dialect == "sqlite":
        return f"(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER) - 1)"
    return (f"(CAST(EXTRACT(YEAR FROM {column} AT TIME ZONE 'UTC') AS INTEGER) * 12"
            f" + CAST(EXTRACT(MONTH FROM {column} AT TIME ZONE 'UTC') AS INTEGER) - 1)")


def _month_key_sql(column: str, dialect: str) -> tuple[str, str]:
    """A cheap per-row month key of a time, and the month index of that key (computed once
    per group rather than once per row)."""
    if dialect == "sqlite":
        return (f"substr({column}, 1, 7)",
                "(CAST(substr(k, 1, 4) AS INTEGER) * 12 + CAST(substr(k, 6, 2) AS INTEGER) - 1)")
    return (f"date_trunc('month', {column} AT TIME ZONE 'UTC')",
            "(CAST(EXTRACT(YEAR FROM k) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM k) AS INTEGER) - 1)")


def _group_sql(by: Dimension | None) -> tuple[str, str]:
    """The group key's expression and the join that provides it."""
    if by is Dimension.CHANNEL:
        return "COALESCE(c.source_channel, '')", "JOIN customers c ON c.id = o.customer_id"
    if by is Dimension.TAG:
        return "t.tag", "JOIN customer_tags t ON t.customer_id = o.customer_id"
    return "''", ""


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


async def retention(
    ctx: ServiceContext, start: date, end: date, group_by: GroupBy = GroupBy.MONTH, by: Dimension | None = None
) -> list[PeriodFigures]:
    """Figures for each period from ``start`` to ``end`` (rounded out to whole periods), per
    group when ``by`` is given. Three statements, each one pass over the orders in range."""
    cfg = retention_settings(ctx)
    first, last = _range(start, end, group_by, cfg)
    step, window = MONTHS[group_by], cfg.active_window_months
    dialect = ctx.dialect
    month_key, month_of_key = _month_key_sql("o.placed_at", dialect)
    key, join = _group_sql(by)
    # Most orders of the range are read: on SQLite, a table scan beats a lookup per row
    # through the placed_at index (a unary + keeps SQLite from using it).
    scan = "+" if dialect == "sqlite" else ""
    # Without a split, partitioning by the constant group would cost PostgreSQL a sort.
    partition = "cid" if by is None else "g, cid"
    pstart = f"(m.mo - ((m.mo - {first}) % {step}))"
    joined = f"CASE WHEN m.prev IS NULL OR m.prev < {pstart} - {window} THEN 1 ELSE 0 END"
    if step == 1:  # a month's rows are already one per customer and period
        per = f"\n  SELECT m.g, m.mo AS p, m.cid, m.n, m.rev, {joined} AS joined FROM m WHERE m.mo >= {first}"
    else:
        per = f"""
  SELECT m.g, {pstart} AS p, m.cid, SUM(m.n) AS n, SUM(m.rev) AS rev, MAX({joined}) AS joined
  FROM m WHERE m.mo >= {first}
  GROUP BY 1, 2, 3"""
    sql = f"""
WITH cm AS (
  SELECT {key} AS g, o.customer_id AS cid, {month_key} AS k, COUNT(*) AS n,
         SUM(o.amount - o.refunded_amount) AS rev
  FROM orders o {join}
  WHERE o.status <> 'cancelled' AND {scan}o.placed_at >= :lo AND {scan}o.placed_at < :hi
  GROUP BY {"o.customer_id, 3" if by is None else "1, 2, 3"}
), cmo AS (
  SELECT g, cid, k, {month_of_key} AS mo, n, rev FROM cm
), m AS (
  SELECT g, cid, mo, n, rev, LAG(mo) OVER w AS prev, LEAD(mo) OVER w AS nxt
  FROM cmo WINDOW w AS (PARTITION BY {partition} ORDER BY k)
), events AS (
  SELECT g, mo + 1 AS at, 1 AS d FROM m
  UNION ALL
  SELECT g, CASE WHEN nxt IS NOT NULL AND nxt < mo + {window} THEN nxt ELSE mo + {window} END + 1, -1 FROM m
), hist AS (
  SELECT g, at, SUM(d) AS d FROM events GROUP BY g, at
), per AS ({per}
)
SELECT 'h' AS kind, g, at AS p, d AS a, 0 AS b, 0 AS c, 0 AS e, 0 AS f, 0 AS jn FROM hist
UNION ALL
SELECT 'p', per.g, per.p, COUNT(*), SUM(CASE WHEN per.n >= 2 THEN 1 ELSE 0 END), SUM(per.n), SUM(per.rev),
       0, SUM(per.joined)
FROM per
GROUP BY per.g, per.p
"""
    lo, hi = month_start(first - window), month_start(last)
    times = {"lo": _utc(lo), "hi": _utc(hi)}
    await _tune(ctx)
    rows = (await ctx.session.execute(_timed(sql), times)).all()
    before_sql = f"""
SELECT {key} AS g, SUM(o.amount - o.refunded_amount) FROM orders o {join}
WHERE o.status <> 'cancelled' AND o.placed_at < :lo GROUP BY 1"""
    revenue_before = {g: int(v or 0) for g, v in (await ctx.session.execute(
        _timed(before_sql), {"lo": _utc(month_start(first))})).all()}
    ckey, cjoin = _customer_group_sql(by)
    counts_sql = f"""
SELECT {ckey} AS g, {_month_sql('c.first_order_at', dialect)} AS mo, COUNT(*) FROM customers c {cjoin}
WHERE c.first_order_at IS NOT NULL AND c.first_order_at < :hi GROUP BY 1, 2"""
    first_orders = (await ctx.session.execute(_timed(counts_sql), {"hi": _utc(hi)})).all()
    return _assemble(list(rows), revenue_before, list(first_orders), first, last, step, cfg, by is not None)


async def _tune(ctx: ServiceContext) -> None:
    """One big aggregation: on PostgreSQL, sort in memory rather than on disk, and skip the
    JIT compiler, whose compile time (over a second) exceeds what it saves here."""
    if ctx.dialect == "postgresql":
        await ctx.session.execute(text("SET LOCAL work_mem = '128MB'"))
        await ctx.session.execute(text("SET LOCAL jit = off"))


def _customer_group_sql(by: Dimension | None) -> tuple[str, str]:
    if by is Dimension.CHANNEL:
        return "COALESCE(c.source_channel, '')", ""
    if by is Dimension.TAG:
        return "t.tag", "JOIN customer_tags t ON t.customer_id = c.id"
    return "''", ""


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _timed(sql: str) -> Any:
    return text(sql).bindparams(*[bindparam(n, type_=UTCDateTime()) for n in ("lo", "hi") if f":{n}" in sql])


def _assemble(rows: list[Any], revenue_before: dict[str, int], first_orders: list[Any], first: int, last: int,
              step: int, cfg: RetentionSettings, grouped: bool) -> list[PeriodFigures]:
    hist: dict[str, dict[int, int]] = {}
    per: dict[tuple[str, int], Any] = {}
    for kind, g, p, a, b, c, e, f, jn in rows:
        if kind == "h":
            hist.setdefault(g, {})[int(p)] = hist.get(g, {}).get(int(p), 0) + int(a)
        else:
            per[g, int(p)] = (int(a), int(b), int(c), int(e or 0), int(f), int(jn))
    firsts: dict[str, dict[int, int]] = {}
    for g, mo, n in first_orders:
        firsts.setdefault(g, {})[int(mo)] = int(n)
    groups = sorted(set(hist) | set(firsts) | set(revenue_before)) if grouped else [""]
    cap = cfg.max_lifetime_years * 12 / step
    out: list[PeriodFigures] = []
    for g in groups:
        h, fo = hist.get(g, {}), firsts.get(g, {})
        # Customers counting at month m: the running sum of the histogram up to m.
        running, active, cursor = 0, {}, min([*h, first]) if h else first
        for m in range(cursor, last + 1):
            running += h.get(m, 0)
            active[m] = running
        so_far = sum(n for mo, n in fo.items() if mo < first)
        revenue = revenue_before.get(g, 0)
        for p in range(first, last, step):
            buyers, repeat, orders, rev, _, joined = per.get((g, p), (0, 0, 0, 0, 0, 0))
            revenue += rev
            # New customers: first orders in the period, from the customers' first-order month.
            new = sum(fo.get(m, 0) for m in range(p, p + step))
            so_far += new
            out.append(PeriodFigures(
                group=g if grouped else None, start=month_start(p), end=month_start(p + step),
                customers_at_start=active.get(p, 0), customers_at_end=active.get(p + step, 0),
                new_customers=new, returning_customers=joined - new, buyers=buyers, repeat_buyers=repeat,
                orders=orders, revenue=rev, historic_revenue=revenue, customers_so_far=so_far,
                lifetime_cap_periods=cap))
    return out


async def cohorts(ctx: ServiceContext, start: date, end: date) -> list[Cohort]:
    """Customers by the month of their first order (from ``start`` to ``end``), and how many
    of each cohort ordered in each later month up to ``end``: one statement."""
    cfg = retention_settings(ctx)
    first, last = _range(start, end, GroupBy.MONTH, cfg)
    mo = _month_sql("o.placed_at", ctx.dialect)
    cohort = _month_sql("c.first_order_at", ctx.dialect)
    sql = f"""
WITH members AS (
  SELECT c.id, {cohort} AS cohort FROM customers c
  WHERE c.first_order_at >= :lo AND c.first_order_at < :hi
), active AS (
  SELECT DISTINCT o.customer_id AS cid, {mo} AS mo FROM orders o
  WHERE o.status <> 'cancelled' AND o.placed_at >= :lo AND o.placed_at < :hi
)
SELECT members.cohort, -1 AS offset_, COUNT(*) FROM members GROUP BY members.cohort
UNION ALL
SELECT members.cohort, active.mo - members.cohort, COUNT(*) FROM members JOIN active ON active.cid = members.id
WHERE active.mo >= members.cohort GROUP BY members.cohort, active.mo - members.cohort
"""
    times = {"lo": _utc(month_start(first)), "hi": _utc(month_start(last))}
    await _tune(ctx)
    rows = (await ctx.session.execute(_timed(sql), times)).all()
    found: dict[int, Cohort] = {}
    for c, _, _ in rows:
        found.setdefault(int(c), Cohort(month=month_start(int(c)), size=0, active=[0] * (last - int(c))))
    for c, offset, n in rows:
        if int(offset) < 0:
            found[int(c)].size = int(n)
        else:
            found[int(c)].active[int(offset)] = int(n)
    return [found[k] for k in sorted(found)]
