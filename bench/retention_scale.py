"""Retention figures and the cohort triangle at scale, side by side with hand-written SQL.

    python -m bench.retention_scale                      # the 1M data set (see DEFAULT_URL)
    python -m bench.retention_scale --url postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench
    python -m bench.retention_scale --rebuild            # also time `tenure retention rebuild`

Over a data set built by :mod:`bench.datagen` (``python -m bench.churn_scale --customers
1000000`` builds one; the rollup is rebuilt here if the data set predates it), in one run:

- **Tenure**: the ``retention`` query month by month over the whole range (three years), by
  quarter, split by channel, and ``cohorts`` over the same range, through GraphQL
  (:class:`tenure.testing.TenureHarness`, median of ``--runs``), reading the order months rollup;
- **floor**: the best single hand-written statement computing the same figures from the orders
  (orders grouped per customer and month, LAG/LEAD over them, a cumulative histogram; the
  cohorts from the customers' first order month joined with the months they ordered in),
  fastest of ``--floor-runs``. The floor's figures are compared with Tenure's answer, field by
  field, so the table also says whether both agree.

Targets (issues 5 and 7): retention under 2 s on PostgreSQL; each case at most 1.5x its floor.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench_1m"
FIELDS = ("start", "customersAtStart", "customersAtEnd", "newCustomers", "returningCustomers", "orders", "revenue",
          "repeatPurchaseRate", "historicClv")
MONTH_KEY = "date_trunc('month', {col} AT TIME ZONE 'UTC')"
MONTH_OF = "(CAST(EXTRACT(YEAR FROM {k}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {k}) AS INTEGER) - 1)"


def floor_retention_sql(first: int, last: int, window: int, by_channel: bool) -> str:
    """Monthly figures from the orders in one statement: a histogram of when customers start
    and stop counting, per-month buyers/orders/revenue, revenue before the range and first
    orders per month."""
    g = "COALESCE(c.source_channel, '')" if by_channel else "''"
    join = "JOIN customers c ON c.id = o.customer_id" if by_channel else ""
    key = MONTH_KEY.format(col="o.placed_at")
    return f"""
WITH cm AS (
  SELECT {g} AS g, o.customer_id AS cid, {key} AS k, COUNT(*) AS n, SUM(o.amount - o.refunded_amount) AS rev
  FROM orders o {join}
  WHERE o.status <> 'cancelled' AND o.placed_at >= :lo AND o.placed_at < :hi
  GROUP BY {"1, 2, 3" if by_channel else "o.customer_id, 3"}
), m AS (
  SELECT g, cid, mo, n, rev, LAG(mo) OVER w AS prev, LEAD(mo) OVER w AS nxt
  FROM (SELECT g, cid, {MONTH_OF.format(k="k")} AS mo, n, rev FROM cm) x
  WINDOW w AS (PARTITION BY cid ORDER BY mo)
), events AS (
  SELECT g, mo + 1 AS at, 1 AS d FROM m
  UNION ALL
  SELECT g, CASE WHEN nxt IS NOT NULL AND nxt < mo + {window} THEN nxt ELSE mo + {window} END + 1, -1 FROM m
)
SELECT 'h', g, at, SUM(d), 0, 0, 0, 0 FROM events GROUP BY g, at
UNION ALL
SELECT 'p', g, mo, COUNT(*), SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END), SUM(n), SUM(rev),
       SUM(CASE WHEN prev IS NULL OR prev < mo - {window} THEN 1 ELSE 0 END)
FROM m WHERE mo >= {first} GROUP BY g, mo
UNION ALL
SELECT 'b', {g}, 0, 0, 0, 0, SUM(o.amount - o.refunded_amount), 0 FROM orders o {join}
WHERE o.status <> 'cancelled' AND o.placed_at < :first GROUP BY 2
UNION ALL
SELECT 'f', {g}, {MONTH_OF.format(k=MONTH_KEY.format(col="c.first_order_at"))}, COUNT(*), 0, 0, 0, 0
FROM customers c WHERE c.first_order_at IS NOT NULL AND c.first_order_at < :hi GROUP BY 2, 3"""


def floor_cohorts_sql(first: int, last: int) -> str:
    return f"""
WITH members AS (
  SELECT id, {MONTH_OF.format(k=MONTH_KEY.format(col="first_order_at"))} AS cohort FROM customers
  WHERE first_order_at >= :first AND first_order_at < :hi
), active AS (
  SELECT DISTINCT customer_id AS cid, {MONTH_KEY.format(col="placed_at")} AS k FROM orders
  WHERE status <> 'cancelled' AND placed_at >= :first AND placed_at < :hi
)
SELECT members.cohort, {MONTH_OF.format(k="active.k")} - members.cohort AS offset_, COUNT(*)
FROM members JOIN active ON active.cid = members.id
GROUP BY 1, 2"""


def assemble_floor(rows: list[Any], first: int, last: int, window: int) -> dict[str, list[dict[str, Any]]]:
    """The floor's rows as the GraphQL answer would show them, per group."""
    from tenure.core.services.retention import PeriodFigures, month_start

    hist: dict[str, dict[int, int]] = {}
    per: dict[tuple[str, int], tuple[int, ...]] = {}
    before: dict[str, int] = {}
    firsts: dict[str, dict[int, int]] = {}
    for kind, g, at, a, b, c, e, j in rows:
        if kind == "h":
            hist.setdefault(g, {})[int(at)] = int(a)
        elif kind == "p":
            per[g, int(at)] = (int(a), int(b), int(c), int(e), int(j))
        elif kind == "b":
            before[g] = int(e or 0)
        else:
            firsts.setdefault(g, {})[int(at)] = int(a)
    out: dict[str, list[dict[str, Any]]] = {}
    for g in sorted(set(hist) | set(firsts) | set(before)):
        h, fo = hist.get(g, {}), firsts.get(g, {})
        running, active = 0, {}
        for mo in range(min([*h, first]), last + 1):
            running += h.get(mo, 0)
            active[mo] = running
        so_far, revenue = sum(n for mo, n in fo.items() if mo < first), before.get(g, 0)
        for p in range(first, last):
            buyers, repeat, orders, rev, joined = per.get((g, p), (0, 0, 0, 0, 0))
            new = fo.get(p, 0)
            so_far, revenue = so_far + new, revenue + rev
            f = PeriodFigures(group=g, start=month_start(p), end=month_start(p + 1),
                              customers_at_start=active.get(p, 0), customers_at_end=active.get(p + 1, 0),
                              new_customers=new,
                              returning_customers=joined - new, buyers=buyers, repeat_buyers=repeat, orders=orders,
                              revenue=rev, historic_revenue=revenue, customers_so_far=so_far)
            out.setdefault(g, []).append(dict(zip(FIELDS, (
                f.start.isoformat(), f.customers_at_start, f.customers_at_end, f.new_customers,
                f.returning_customers, f.orders, f.revenue, f.repeat_purchase_rate, f.historic_clv), strict=True)))
    return out


async def _median(tenure: Any, query: str, variables: dict[str, Any], runs: int) -> tuple[float, Any]:
    key = await tenure.key("admin")
    data = await tenure.ok(query, variables, key=key)  # warm: parser cache, connection, pages
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        data = await tenure.ok(query, variables, key=key)
        times.append(time.perf_counter() - started)
    return statistics.median(times), data


async def _floor(db: Any, sql: str, params: dict[str, Any], runs: int) -> tuple[float, list[Any]]:
    from sqlalchemy import bindparam, text

    from tenure.core.db import UTCDateTime

    stmt = text(sql).bindparams(*[bindparam(n, type_=UTCDateTime()) for n in params])
    best, rows = float("inf"), []
    for _ in range(runs):
        async with db.transaction() as session:
            # The floor gets the settings that suit one big aggregation: memory to sort in, no JIT.
            await session.execute(text("SET LOCAL work_mem = '512MB'"))
            await session.execute(text("SET LOCAL jit = off"))
            started = time.perf_counter()
            rows = list((await session.execute(stmt, params)).all())
            best = min(best, time.perf_counter() - started)
    return best, rows


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def measure(url: str, now: datetime, runs: int, floor_runs: int) -> dict[str, Any]:
    from sqlalchemy import text

    from tenure.core.clock import FrozenClock, use_clock
    from tenure.core.services.retention import month_index, month_start
    from tenure.testing import TenureHarness

    out: dict[str, Any] = {"cases": []}
    start = (now - timedelta(days=3 * 365)).date().replace(day=1)
    end = now.date()
    first, last = month_index(start), month_index(end) + (1 if end.day > 1 else 0)
    window = 12
    period = {"first": _utc(month_start(first)), "lo": _utc(month_start(first - window)),
              "hi": _utc(month_start(last))}
    variables = {"a": start.isoformat(), "b": end.isoformat()}
    fields = " ".join(FIELDS)
    with use_clock(FrozenClock(now)):
        async with TenureHarness.start(url, plugins=[], create_tables=False) as tenure:
            db = tenure.db
            async with db.reader() as session:
                out["db_version"] = str(await session.scalar(text("SELECT version()"))).split(" on ")[0]
                out["counts"] = [int(await session.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
                                 for t in ("customers", "orders", "order_months")]
            for name, grouping, by in (("retention, month by month", "MONTH", None),
                                       ("retention by channel, month by month", "MONTH", "CHANNEL"),
                                       ("retention, quarter by quarter", "QUARTER", None)):
                query = (f"query($a: Date!, $b: Date!, $by: RetentionDimension) {{ retention(from: $a, to: $b, "
                         f"groupBy: {grouping}, by: $by) {{ group {fields} }} }}")
                seconds, data = await _median(tenure, query, {**variables, "by": by}, runs)
                case: dict[str, Any] = {"case": f"{name} ({len(data['retention'])} rows)", "tenure": seconds,
                                        "target_s": 2.0}
                if grouping == "MONTH":
                    case["floor"], rows = await _floor(
                        db, floor_retention_sql(first, last, window, by is not None), period, floor_runs)
                    want = assemble_floor(rows, first, last, window)
                    have: dict[str, list[dict[str, Any]]] = {}
                    for row in data["retention"]:
                        have.setdefault(row.pop("group") or "", []).append(row)
                    case["agree"] = have == want
                out["cases"].append(case)
            query = "query($a: Date!, $b: Date!) { cohorts(from: $a, to: $b) { month size cells { customers } } }"
            seconds, data = await _median(tenure, query, variables, runs)
            floor_s, rows = await _floor(db, floor_cohorts_sql(first, last),
                                         {"first": period["first"], "hi": period["hi"]}, floor_runs)
            cells: dict[tuple[int, int], int] = {(int(c), int(o)): int(n) for c, o, n in rows}
            have_cells = {(month_index(date.fromisoformat(r["month"])), o): cell["customers"]
                          for r in data["cohorts"] for o, cell in enumerate(r["cells"]) if cell["customers"]}
            out["cases"].append({"case": f"cohorts ({len(data['cohorts'])} cohorts)", "tenure": seconds,
                                 "floor": floor_s, "agree": have_cells == cells, "target_s": 2.0})
    return out


def report(r: dict[str, Any], rebuild_s: float | None) -> str:
    customers, orders, months = r["counts"]
    lines = [
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; {r['db_version']}",
        f"data set: {customers:,} customers, {orders:,} orders, {months:,} order months (rollup rows)",
    ]
    if rebuild_s is not None:
        lines.append(f"rollup rebuild (`tenure retention rebuild`): {rebuild_s:.1f} s")
    lines += ["", "| case | Tenure | floor | ratio | target | met | same figures |", "|---|---|---|---|---|---|---|"]
    for c in r["cases"]:
        floor = c.get("floor")
        ratio = c["tenure"] / floor if floor else None
        met = c["tenure"] < c["target_s"] and (ratio is None or ratio <= 1.5)
        lines.append(
            f"| {c['case']} | {c['tenure'] * 1000:.0f} ms | {f'{floor * 1000:.0f} ms' if floor else '-'} | "
            f"{f'{ratio:.3f}' if ratio is not None else '-'} | < 2 s, <= 1.5x floor | {'yes' if met else 'NO'} | "
            f"{({True: 'yes', False: 'NO'}).get(c.get('agree'), '-')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TENURE_BENCH_URL", DEFAULT_URL))
    parser.add_argument("--runs", type=int, default=3, help="Tenure runs per case (median).")
    parser.add_argument("--floor-runs", type=int, default=1, help="Floor runs per case (fastest).")
    parser.add_argument("--rebuild", action="store_true", help="Rebuild the rollup first, and time it.")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    from bench.datagen import read_planted
    from tenure.core.services.order_months import rebuild_url

    rebuild_s = None
    if args.rebuild or not _has_rollup(args.url):
        started = time.perf_counter()
        rebuild_url(args.url)
        rebuild_s = time.perf_counter() - started
    now = read_planted(args.url).now or datetime.now(UTC)
    print(report(asyncio.run(measure(args.url, now, args.runs, args.floor_runs)), rebuild_s), flush=True)


def _has_rollup(url: str) -> bool:
    async def run() -> bool:
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            if not await conn.fetchval("SELECT to_regclass('order_months') IS NOT NULL"):
                return False
            return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM order_months)"))
        finally:
            await conn.close()

    return asyncio.run(run())


if __name__ == "__main__":
    main()
