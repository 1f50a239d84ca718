"""The order months rollup: one row per customer and calendar month (UTC) with a
non-cancelled order, kept current in the order's own transaction, which is what the
retention figures read instead of the orders.

Each row holds the month's order count and net revenue (amount - refunded), and links the
customer's active months into a list: ``prev_month`` and ``next_month`` (the customer's
previous and next active months, ``None`` at either end) and ``first_month`` (the month of
the customer's first order, their cohort). With the links stored, "did this customer count
at the start of the period" and "did they order again within the period" are plain column
tests at read time instead of window functions over every order.

Months are integers, ``year * 12 + month - 1``, so month arithmetic is plain addition on
SQLite and PostgreSQL alike.

Upkeep is :func:`keep`, called by the order and customer services. Its common cases cost
one statement: an order in the customer's latest active month (UPDATE), an order opening a
new latest month (INSERT, and on PostgreSQL the link from the month before in the same
statement), a refund (UPDATE). Anything that can change the links in the middle of the list
(a backdated order in a new month, a cancellation emptying a month, a merge) rebuilds the
customer's rows from their orders, set-based. A batch of orders (an import's round, at most
one order per customer) goes through :func:`record_round`: the same cases, a statement each
for the whole round. :func:`rebuild` does the same for every
customer in batches (``tenure retention rebuild``, for data loaded around the services), and
:func:`check` compares the rollup with the orders in one statement (``tenure check``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Boolean, Integer, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import bulk
from tenure.core.models import OrderMonth, OrderStatus
from tenure.core.reads import Read, Write

if TYPE_CHECKING:
    from tenure.core.context import ServiceContext
    from tenure.core.db import Database
    from tenure.core.models import Customer, Order

TABLE = "order_months"


def month_of(moment: datetime) -> int:
    """The month index of a time (UTC)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.year * 12 + moment.month - 1


def _key_sql(dialect: str) -> tuple[str, str]:
    """A cheap per-order month key of ``placed_at``, and the month index of a key ``k``
    (computed once per customer and month rather than once per order)."""
    if dialect == "sqlite":
        return ("substr(placed_at, 1, 7)",
                "(CAST(substr(k, 1, 4) AS INTEGER) * 12 + CAST(substr(k, 6, 2) AS INTEGER) - 1)")
    return ("date_trunc('month', placed_at AT TIME ZONE 'UTC')",
            "(CAST(EXTRACT(YEAR FROM k) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM k) AS INTEGER) - 1)")


def months_sql(dialect: str, where: str) -> str:
    """The rollup rows of the orders matching ``where`` (a condition on ``orders``), as a
    SELECT of (customer_id, month, orders, revenue, prev_month, next_month, first_month)."""
    key, month = _key_sql(dialect)
    return f"""
SELECT cid, mo, n, rev, LAG(mo) OVER w, LEAD(mo) OVER w, MIN(mo) OVER (PARTITION BY cid)
FROM (SELECT cid, {month} AS mo, n, rev
      FROM (SELECT customer_id AS cid, {key} AS k, COUNT(*) AS n, SUM(amount - refunded_amount) AS rev
            FROM orders WHERE status <> 'cancelled' AND {where} GROUP BY 1, 2) a) g
WINDOW w AS (PARTITION BY cid ORDER BY mo)"""


COLUMNS = "customer_id, month, orders, revenue, prev_month, next_month, first_month"
ROW = "WHERE customer_id = :c AND month = :m"


async def keep(ctx: ServiceContext, customer: Customer, order: Order | None = None, *, refunded: int = 0,
               merged_id: int | None = None) -> None:
    """Keep ``customer``'s order months current after one change, in its transaction:

    - an order recorded: ``keep(ctx, customer, order)``, called *before* the customer's
      ``first_order_at`` / ``last_order_at`` take the new order in (they tell where it goes);
    - an order cancelled: ``keep(ctx, customer, order)`` with ``order.status`` cancelled;
    - a refund of ``refunded`` minor units: ``keep(ctx, customer, order, refunded=amount)``;
    - ``merged_id`` folded into ``customer`` (its orders already moved): ``keep(ctx,
      customer, merged_id=merged_id)``.
    """
    session, cid = ctx.session, customer.id
    if order is None:
        if merged_id is not None:
            await session.execute(text(f"DELETE FROM {TABLE} WHERE customer_id = :c"), {"c": merged_id})
        await _rebuild_customer(ctx, cid)
        return
    month = month_of(order.placed_at)
    where = {"c": cid, "m": month}
    if refunded:
        result = await session.execute(text(f"UPDATE {TABLE} SET revenue = revenue - :r {ROW}"),
                                       {**where, "r": refunded})
        if not _rowcount(result):
            await _rebuild_customer(ctx, cid)
        return
    if order.status == OrderStatus.CANCELLED:
        await _lock_customer(ctx, cid)
        left = await session.scalar(
            text(f"UPDATE {TABLE} SET orders = orders - 1, revenue = revenue - :r {ROW} RETURNING orders"),
            {**where, "r": order.amount - order.refunded_amount})
        if left is None or left <= 0:  # the month is empty now: unlink it
            await _rebuild_customer(ctx, cid)
        return
    await _recorded(ctx, customer, order, month)


async def _recorded(ctx: ServiceContext, customer: Customer, order: Order, month: int) -> None:
    session, cid = ctx.session, customer.id
    values = {"c": cid, "m": month, "r": order.amount}
    last = None if customer.last_order_at is None else month_of(customer.last_order_at)
    if last is None:
        await _written(f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (:c, :m, 1, :r, NULL, NULL, :m)").count(
            session, **values)
        return
    if month > last:
        assert customer.first_order_at is not None
        values |= {"p": last, "f": month_of(customer.first_order_at)}
        insert = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (:c, :m, 1, :r, :p, NULL, :f)"
        link = f"UPDATE {TABLE} SET next_month = :m WHERE customer_id = :c AND month = :p"
        if ctx.dialect == "postgresql":
            await _written(f"WITH linked AS ({link}) {insert}").count(session, **values)
        else:
            await _written(link).count(session, **values)
            await _written(insert).count(session, **values)
        return
    changed = await _written(f"UPDATE {TABLE} SET orders = orders + 1, revenue = revenue + :r {ROW}").count(
        session, **values)
    if not changed:  # a backdated order in a month of its own: relink the list
        await _rebuild_customer(ctx, cid)


_WRITES: dict[str, Write] = {}


def _written(sql: str) -> Write:
    """The order's upkeep statement, compiled once per dialect and sent on the driver."""
    found = _WRITES.get(sql)
    if found is None:
        found = _WRITES[sql] = Write(lambda _keys: text(sql))
    return found


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


async def _lock_customer(ctx: ServiceContext, customer_id: int) -> None:
    """Every writer of a customer's months holds the customer's row lock first (record_order
    takes it anyway), so two changes to one customer's months queue rather than deadlock."""
    if ctx.dialect == "postgresql":
        await ctx.session.execute(text("SELECT id FROM customers WHERE id = :c FOR NO KEY UPDATE"), {"c": customer_id})


async def _rebuild_customer(ctx: ServiceContext, customer_id: int) -> None:
    await _lock_customer(ctx, customer_id)
    await ctx.session.execute(text(f"DELETE FROM {TABLE} WHERE customer_id = :c"), {"c": customer_id})
    await ctx.session.execute(text(f"INSERT INTO {TABLE} ({COLUMNS}) {months_sql(ctx.dialect, 'customer_id = :c')}"),
                              {"c": customer_id})


async def rebuild(db: Database, *, batch: int = 50_000,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild every customer's months from the orders, ``batch`` customer ids per
    transaction (set-based, so memory stays flat), creating the table if a data set was made
    without the migrations. Returns the number of rows written."""
    from tenure.core.db import Base

    table: Any = OrderMonth.__table__
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=[table], checkfirst=True))
    async with db.reader() as session:
        low, high = (await session.execute(text("SELECT MIN(id), MAX(id) FROM customers"))).one()
    # Emptied first rather than batch by batch, so that the table is written once, compact
    # and in customer order (rows deleted and written again would leave it twice the size
    # for every scan until a VACUUM FULL). The figures are partial until the rebuild ends:
    # run it after a bulk load or a restore, while no orders are being written.
    async with db.transaction() as session:
        await session.execute(text(f"DELETE FROM {TABLE}" if db.dialect == "sqlite" else f"TRUNCATE {TABLE}"))
    if low is None:
        return 0
    written, total = 0, int(high) - int(low) + 1
    for start in range(int(low), int(high) + 1, batch):
        bounds = {"lo": start, "hi": start + batch}
        async with db.transaction() as session:
            if db.dialect == "postgresql":
                await session.execute(text("SET LOCAL work_mem = '256MB'"))
                await session.execute(text("SET LOCAL jit = off"))
            in_batch = "customer_id >= :lo AND customer_id < :hi"
            # Rows a service wrote for these customers since the table was emptied.
            await session.execute(text(f"DELETE FROM {TABLE} WHERE {in_batch}"), bounds)
            result = await session.execute(text(f"INSERT INTO {TABLE} ({COLUMNS}) {months_sql(db.dialect, in_batch)}"),
                                           bounds)
            written += _rowcount(result)
        if progress is not None:
            progress(min(start + batch - int(low), total), total)
    if db.dialect == "postgresql":
        async with db.transaction() as session:
            await session.execute(text(f"ANALYZE {TABLE}"))
    return written


def rebuild_url(url: str, progress: bool = True, batch: int = 50_000) -> int:
    """:func:`rebuild` for a database URL, with a progress line on stderr (bench data loaders)."""
    import asyncio
    import sys

    from tenure.core.db import Database

    started = time.perf_counter()

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r  order months: {done:,}/{total:,} customers ({time.perf_counter() - started:.0f} s)")
        sys.stderr.write("\n" if done >= total else "")
        sys.stderr.flush()

    async def run() -> int:
        db = Database(url)
        try:
            return await rebuild(db, batch=batch, progress=show if progress else None)
        finally:
            await db.dispose()

    return asyncio.run(run())


async def check(session: AsyncSession) -> list[str]:
    """Rows of the rollup that differ from what the orders say (at most 20), one statement."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Two outer joins rather than one FULL OUTER JOIN, which SQLite only has since 3.39.
    rows = (await session.execute(text(f"""
WITH want (customer_id, month, orders, revenue, prev_month, next_month, first_month) AS ({months_sql(dialect, '1 = 1')})
SELECT w.customer_id, w.month, w.orders, w.revenue, w.prev_month, w.next_month, w.first_month,
       h.orders, h.revenue, h.prev_month, h.next_month, h.first_month
FROM want w LEFT JOIN {TABLE} h ON h.customer_id = w.customer_id AND h.month = w.month
WHERE h.customer_id IS NULL OR w.orders <> h.orders OR w.revenue <> h.revenue OR w.first_month <> h.first_month
   OR COALESCE(w.prev_month, -1) <> COALESCE(h.prev_month, -1)
   OR COALESCE(w.next_month, -1) <> COALESCE(h.next_month, -1)
UNION ALL
SELECT h.customer_id, h.month, NULL, NULL, NULL, NULL, NULL,
       h.orders, h.revenue, h.prev_month, h.next_month, h.first_month
FROM {TABLE} h LEFT JOIN want w ON w.customer_id = h.customer_id AND w.month = h.month
WHERE w.customer_id IS NULL
ORDER BY 1, 2 LIMIT 20"""))).all()
    return [_problem(row) for row in rows]


def _problem(row: Any) -> str:
    cid, month, *values = row
    want, have = values[:5], values[5:]
    when = f"{month // 12}-{month % 12 + 1:02d}"
    names = ("orders", "revenue", "previous month", "next month", "first month")

    def show(figures: list[Any]) -> str:
        return ", ".join(f"{n} {v}" for n, v in zip(names, figures, strict=True))

    if want[0] is None:
        return f"customer {cid}, {when}: the rollup has a row ({show(have)}) but no order counts in that month"
    if have[0] is None:
        return f"customer {cid}, {when}: the orders say {show(want)} but the rollup has no row (run " \
               "`tenure retention rebuild`)"
    return f"customer {cid}, {when}: the rollup says {show(have)}; the orders say {show(want)}"


async def record_round(ctx: ServiceContext, orders: Sequence[Order]) -> None:
    """Keep the months of a round of new orders, at most one per customer, set-based: one
    read finds where each order falls in its customer's list, then one statement each adds
    the orders of months already active, links the latest months to new ones and inserts
    the new months. Only an order opening a month before the customer's latest (backdated)
    rebuilds that customer's rows, as :func:`keep` does for one order."""
    placed = [(o.customer_id, month_of(o.placed_at), o.amount) for o in orders]  # new orders: placed or paid
    if not placed:
        return
    customer_ids, months = [p[0] for p in placed], [p[1] for p in placed]
    if ctx.dialect == "postgresql":
        params: dict[str, Any] = {"cs": customer_ids, "ms": months}
    else:
        params = {"pairs": json.dumps([[cid, month] for cid, month in zip(customer_ids, months, strict=True)])}
    found = await _PLACES[ctx.dialect == "postgresql"].all(ctx.session, **params)
    where = {cid: (first, last, bool(active)) for cid, first, last, active in found}
    add: list[dict[str, Any]] = []
    link: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    rebuilt: list[int] = []
    for cid, month, amount in placed:
        first, last, active = where[cid]
        if active:
            add.append({"c": cid, "m": month, "r": amount})
        elif last is None:
            new.append({"c": cid, "m": month, "r": amount, "p": None, "f": month})
        elif month > last:
            link.append({"c": cid, "m": month, "p": last})
            new.append({"c": cid, "m": month, "r": amount, "p": last, "f": first})
        else:
            rebuilt.append(cid)
    session = ctx.session
    await bulk.update_rows(session, _MONTHS, add, each=_ADD, where="t.customer_id = v.c AND t.month = v.m",
                           set_={"orders": "t.orders + 1", "revenue": "t.revenue + v.r"}, types=_ROUND_TYPES)
    await bulk.update_rows(session, _MONTHS, link, each=_LINK, where="t.customer_id = v.c AND t.month = v.p",
                           set_={"next_month": "v.m"}, types=_ROUND_TYPES)
    await bulk.insert_rows(session, _MONTHS, [
        {"customer_id": m["c"], "month": m["m"], "orders": 1, "revenue": m["r"], "prev_month": m["p"],
         "next_month": None, "first_month": m["f"]} for m in new])
    if rebuilt:
        await rebuild_customers(ctx, rebuilt)


_MONTHS: Any = OrderMonth.__table__
#: A round's changes to months already there, one row each where :func:`bulk.update_rows`
#: sends them apart (a round of one, SQLite).
_ADD = _written(f"UPDATE {TABLE} SET orders = orders + 1, revenue = revenue + :r {ROW}")
_LINK = _written(f"UPDATE {TABLE} SET next_month = :m WHERE customer_id = :c AND month = :p")
_ROUND_TYPES = {"c": _MONTHS.c.customer_id.type, "m": _MONTHS.c.month.type, "r": _MONTHS.c.revenue.type,
                "p": _MONTHS.c.month.type}


def _places(pairs: str) -> Read:
    """Where each (customer, month) of ``pairs`` falls: the customer's first and latest
    active months, and whether that month is active already. One statement text whatever
    the round's size (the pairs go as arrays), so it is compiled and prepared once."""
    return Read(lambda _keys: text(f"""
WITH v (c, m) AS ({pairs})
SELECT v.c, (SELECT MIN(o.month) FROM {TABLE} o WHERE o.customer_id = v.c),
       (SELECT MAX(o.month) FROM {TABLE} o WHERE o.customer_id = v.c),
       EXISTS (SELECT 1 FROM {TABLE} o WHERE o.customer_id = v.c AND o.month = v.m)
FROM v""").columns(c=BigInteger(), first=Integer(), last=Integer(), active=Boolean()))


#: By "is it PostgreSQL": the pairs as two arrays there, as one JSON array of pairs on SQLite.
_PLACES = {
    True: _places("SELECT * FROM unnest(CAST(:cs AS BIGINT[]), CAST(:ms AS INTEGER[]))"),
    False: _places("SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:pairs)"),
}


async def rebuild_customers(ctx: ServiceContext, customer_ids: list[int]) -> None:
    """Rebuild the months of many customers from their orders: two statements for a batch
    (the order service's rows locks are held already)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ", ".join(f":c{n}" for n in range(len(part)))
        params = {f"c{n}": cid for n, cid in enumerate(part)}
        await ctx.session.execute(text(f"DELETE FROM {TABLE} WHERE customer_id IN ({marks})"), params)
        await ctx.session.execute(
            text(f"INSERT INTO {TABLE} ({COLUMNS}) {months_sql(ctx.dialect, f'customer_id IN ({marks})')}"), params)
