"""The import benchmark's files and its floor.

The files: a customers CSV (external id, name, email) and an orders JSON Lines file (one
order a line, with its lines, in time order over three years), written from one seed.

The floor reads the same files, gives the rows their ids itself and loads them with COPY
(PostgreSQL) or ``executemany`` (SQLite): customers with their identity and email, orders,
order lines, one loyalty entry per order at the base rule (and the first-order bonus), and
the event log's ``order.recorded`` rows (an import is history: it publishes no points earned).
Then it computes the rest set-based: each customer's order count, spend, first and last order; the loyalty
accounts from the entries; the churn marks; and the order-months rollup with
:func:`tenure.core.services.order_months.rebuild`. It evaluates no tier and runs no plugin code.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES = ("coffee", "tea", "equipment", "pastry")
#: The rules both sides earn by: 1 point per 100 minor units, 50 points on a first order.
POINTS_PER, PER_AMOUNT, FIRST_ORDER_BONUS = 1, 100, 50
RETURN_DAYS, EXPIRY_DAYS = 14, 365
BATCH = 20_000


def write_files(folder: Path, orders: int, customers: int, seed: int, now: datetime,
                pad: int = 0) -> tuple[Path, Path]:
    """``customers.csv`` and ``orders.jsonl`` in ``folder``; ``pad`` adds that many bytes of
    note to each order (to make a large file for the memory row)."""
    rng = np.random.default_rng(seed)
    people = folder / "customers.csv"
    with people.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "name", "email"])
        for n in range(1, customers + 1):
            writer.writerow([f"c{n}", f"Customer {n}", f"c{n}@bench.test"])
    path = folder / "orders.jsonl"
    span = 3 * 365 * 86400.0
    end = now.timestamp() - 3600
    note = "x" * pad
    last = end - span
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, orders, BATCH):
            size = min(BATCH, orders - start)
            times = np.sort(rng.uniform(end - span, end, size))
            times = np.maximum(times, last)
            last = times[-1]
            owners = rng.integers(1, customers + 1, size)
            counts = rng.choice((1, 2, 3), size, p=(0.5, 0.35, 0.15))
            for k in range(size):
                lines = [{"sku": f"SKU-{int(rng.integers(1, 200))}", "name": "Item",
                          "category": CATEGORIES[int(rng.integers(0, 4))], "quantity": int(rng.integers(1, 3)),
                          "unit_price": int(rng.integers(300, 6000))} for _ in range(int(counts[k]))]
                row: dict[str, Any] = {
                    "customer_external_id": f"c{int(owners[k])}", "channel": "shop", "external_id": f"o{start + k + 1}",
                    "currency": "USD", "placed_at": datetime.fromtimestamp(float(times[k]), UTC).isoformat(),
                    "lines": lines}
                if pad:
                    row["note"] = note
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
    return people, path


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


class Loader:
    """Bulk writes on one connection: asyncpg's COPY, or sqlite3's executemany."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.conn: Any = None

    async def __aenter__(self) -> Loader:
        if self.sqlite:
            self.conn = sqlite3.connect(self.url.split(":///", 1)[1])
        else:
            import asyncpg

            self.conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://", 1))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.sqlite:
            self.conn.commit()
            self.conn.close()
        else:
            await self.conn.close()

    async def copy(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                  [tuple(_sqlite_value(v) for v in row) for row in rows])
        else:
            await self.conn.copy_records_to_table(table, records=rows, columns=columns)

    async def execute(self, sql: str, *args: Any) -> None:
        if self.sqlite:
            self.conn.execute(sql.replace("$1", "?"), tuple(_sqlite_value(a) for a in args))
            self.conn.commit()
        else:
            await self.conn.execute(sql, *args)


def _orders(path: Path) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    with path.open("rb") as raw:
        for line in raw:
            chunk.append(json.loads(line))
            if len(chunk) >= BATCH:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


ORDER_COLUMNS = ["id", "customer_id", "channel", "external_id", "currency", "amount", "refunded_amount", "status",
                 "placed_at", "created_at", "updated_at"]
LINE_COLUMNS = ["id", "order_id", "sku", "name", "category", "quantity", "unit_price", "amount"]
ENTRY_COLUMNS = ["id", "customer_id", "kind", "points", "qualifying", "pending", "remaining", "shortfall", "reason",
                 "source", "order_id", "idempotency_key", "detail", "created_at", "available_at", "expires_at"]
EVENT_COLUMNS = ["id", "type", "source", "customer_id", "summary", "data", "on_timeline", "occurred_at"]
CUSTOMER_COLUMNS = ["id", "name", "consent_email", "consent_sms", "consent_push", "created_at", "updated_at",
                    "order_count", "total_spent"]


async def load_customers(url: str, path: Path, now: datetime) -> dict[str, int]:
    """The customers, their identities and emails, with the ids the floor gives them."""
    ids: dict[str, int] = {}
    async with Loader(url) as db:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for n, row in enumerate(rows, start=1):
            ids[row["external_id"]] = n
        await db.copy("customers", CUSTOMER_COLUMNS,
                      [(n, r["name"], False, False, False, now, now, 0, 0) for n, r in enumerate(rows, start=1)])
        await db.copy("customer_identities", ["id", "customer_id", "kind", "value"],
                      [(n, n, "external", r["external_id"]) for n, r in enumerate(rows, start=1)])
        await db.copy("customer_contacts", ["id", "customer_id", "kind", "value"],
                      [(n, n, "email", r["email"]) for n, r in enumerate(rows, start=1)])
        if not db.sqlite:
            for table in ("customers", "customer_identities", "customer_contacts"):
                await db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {len(rows)})")
    return ids


async def load_orders(url: str, path: Path, ids: dict[str, int], now: datetime) -> int:
    """The orders and what follows from them (see the module notes); the number of orders."""
    from tenure.core.db import Database
    from tenure.core.services.order_months import rebuild

    order_id = line_id = entry_id = event_id = 0
    seen: set[int] = set()
    sqlite = url.startswith("sqlite")
    moment = "?" if sqlite else "$1::timestamptz"
    async with Loader(url) as db:
        for chunk in _orders(path):
            orders, lines, entries, events = [], [], [], []
            for row in chunk:
                order_id += 1
                cid = ids[row["customer_external_id"]]
                placed = datetime.fromisoformat(row["placed_at"])
                amount = 0
                for line in row["lines"]:
                    line_id += 1
                    total = line["quantity"] * line["unit_price"]
                    amount += total
                    lines.append((line_id, order_id, line["sku"], line["name"], line["category"], line["quantity"],
                                  line["unit_price"], total))
                orders.append((order_id, cid, row["channel"], row["external_id"], row["currency"], amount, 0, "paid",
                               placed, now, now))
                until = placed + timedelta(days=RETURN_DAYS)
                pending = until > now
                expires = placed + timedelta(days=EXPIRY_DAYS)
                points = amount * POINTS_PER // PER_AMOUNT
                earned = [(points, f"order:{order_id}")]
                if cid not in seen:
                    seen.add(cid)
                    earned.append((FIRST_ORDER_BONUS, "first_order"))
                for value, key in earned:
                    entry_id += 1
                    entries.append((entry_id, cid, "earn", value, value if key != "first_order" else 0, pending,
                                    value, 0, f"order {row['external_id']} (shop)", "order", order_id, key, "{}",
                                    now, until if pending else now, expires))
                data = {"orderId": order_id, "customerId": cid, "channel": row["channel"],
                        "externalId": row["external_id"], "currency": row["currency"], "amount": amount,
                        "refundedAmount": 0, "status": "paid", "placedAt": placed.isoformat()}
                event_id += 1
                events.append((event_id, "order.recorded", "core", cid, "order.recorded", json.dumps(data), False, now))
            await db.copy("orders", ORDER_COLUMNS, orders)
            await db.copy("order_lines", LINE_COLUMNS, lines)
            await db.copy("loyalty_entries", ENTRY_COLUMNS, entries)
            await db.copy("events", EVENT_COLUMNS, events)
        figures = ("SELECT customer_id, count(*) AS n, sum(amount) AS s, min(placed_at) AS f, max(placed_at) AS l "
                   "FROM orders WHERE status <> 'cancelled' GROUP BY customer_id")
        await db.execute(f"UPDATE customers SET order_count = a.n, total_spent = a.s, first_order_at = a.f, "
                         f"last_order_at = a.l FROM ({figures}) a WHERE customers.id = a.customer_id")
        await db.execute(
            "INSERT INTO loyalty_accounts (customer_id, balance, pending, lifetime_earned, shortfall, updated_at) "
            "SELECT customer_id, sum(CASE WHEN pending THEN 0 ELSE points END), "
            "sum(CASE WHEN pending THEN points ELSE 0 END), "
            f"sum(points), 0, {moment} FROM loyalty_entries "
            "GROUP BY customer_id", now)
        await db.execute("INSERT INTO churn_stale (customer_id, marked_at) SELECT DISTINCT customer_id, "
                         f"{moment} FROM orders", now)
        if not sqlite:
            for table in ("orders", "order_lines", "loyalty_entries", "events"):
                await db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
    database = Database(url)
    try:
        await rebuild(database)
    finally:
        await database.dispose()
    return order_id


FIGURES = {
    "orders": "SELECT count(*) FROM orders",
    "order lines": "SELECT count(*) FROM order_lines",
    "customers with orders": "SELECT count(*) FROM customers WHERE order_count > 0",
    "sum of order_count": "SELECT coalesce(sum(order_count), 0) FROM customers",
    "sum of total_spent": "SELECT coalesce(sum(total_spent), 0) FROM customers",
    "order_months rows": "SELECT count(*) FROM order_months",
    "sum of order_months revenue": "SELECT coalesce(sum(revenue), 0) FROM order_months",
    "loyalty entries": "SELECT count(*) FROM loyalty_entries",
    "loyalty lifetime points": "SELECT coalesce(sum(lifetime_earned), 0) FROM loyalty_accounts",
    "churn marks": "SELECT count(*) FROM churn_stale",
    "tier memberships": "SELECT count(*) FROM tier_memberships",
    "events": "SELECT count(*) FROM events",
}


async def figures(url: str) -> dict[str, int]:
    """What a side left in the database, to compare the two."""
    from sqlalchemy import text

    from tenure.core.db import Database

    db = Database(url)
    try:
        async with db.reader() as session:
            return {name: int(await session.scalar(text(sql)) or 0) for name, sql in FIGURES.items()}
    finally:
        await db.dispose()
