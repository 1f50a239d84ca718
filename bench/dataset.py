"""The benchmark's data set on PostgreSQL: ``n`` customers with orders loaded with COPY (the
volume), then a "hot" set of customers loaded through the services by ``tenure demo``'s
loader, so that the enabled plugins hold real data (points, tiers ...) for the customers the
portal page and the member app read. The hot customers are the newest, so they fill the
first page of ``customers(first: 100)``.

A data set already there with the same sizes is reused: building 100k customers takes a
while, reading it back costs nothing.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tenure.core.db import Base, Database, enabled_tables
from tenure.core.outbox import drain
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings
from tenure.demo import load_demo

BULK_KIND = "bench"
HOT_KIND = "shop"  # what core.demo gives its customers


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@dataclass
class DataSet:
    customers: int
    hot_ids: list[int]
    orders: int
    built_seconds: float | None  # None when reused


async def _counts(conn: asyncpg.Connection) -> tuple[int, int]:
    bulk = await conn.fetchval("SELECT count(*) FROM customer_identities WHERE kind = $1", BULK_KIND)
    hot = await conn.fetchval("SELECT count(*) FROM customer_identities WHERE kind = $1", HOT_KIND)
    return int(bulk), int(hot)


async def _recreate(url: str, plugins: PluginManager) -> None:
    """A fresh schema with the enabled plugins' tables, made from the models (the bench
    measures the running server, not the migrations, which the test suite checks)."""
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()
    tables = enabled_tables([n for n in plugins.names() if n != "core"])
    db = Database(url)
    try:
        async with db.engine.begin() as sa_conn:
            await sa_conn.run_sync(lambda c: Base.metadata.create_all(c, tables=tables))
    finally:
        await db.dispose()


def _bulk_rows(n: int, seed: int, now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    customers, contacts, identities, orders, lines = [], [], [], [], []
    order_id = line_id = 0
    start = now - timedelta(days=730)
    for cid in range(1, n + 1):
        created = start + timedelta(seconds=rng.randint(0, 86400 * 700))
        count = rng.choice((0, 1, 1, 2, 3, 4, 5, 6, 8, 10))
        placed = sorted(created + timedelta(seconds=rng.randint(0, int((now - created).total_seconds()) - 60))
                        for _ in range(count))
        spent = 0
        for at in placed:
            order_id += 1
            amount = 0
            for sku_n in range(rng.choice((1, 1, 2))):
                line_id += 1
                price, qty = rng.randint(300, 9000), rng.choice((1, 1, 2))
                amount += price * qty
                sku = f"SKU-{sku_n}-{price % 50}"
                lines.append((line_id, order_id, sku, "Item", "general", qty, price, price * qty))
            orders.append((order_id, cid, "shop", f"B{order_id:09d}", "USD", amount, 0, "paid", at, at, at))
            spent += amount
        customers.append((cid, f"Bench Customer {cid}", "shop", None, None, None, True, False, False, created, created,
                          placed[0] if placed else None, placed[-1] if placed else None, count, spent, None, None))
        contacts.append((cid, cid, "email", f"bench{cid}@example.com"))
        identities.append((cid, cid, BULK_KIND, f"B{cid:07d}"))
    return {"customers": customers, "customer_contacts": contacts, "customer_identities": identities,
            "orders": orders, "order_lines": lines}


COLUMNS = {
    "customers": ("id", "name", "source_channel", "owner_id", "birthday", "locale", "consent_email", "consent_sms",
                  "consent_push", "created_at", "updated_at", "first_order_at", "last_order_at", "order_count",
                  "total_spent", "last_interaction_at", "erased_at"),
    "customer_contacts": ("id", "customer_id", "kind", "value"),
    "customer_identities": ("id", "customer_id", "kind", "value"),
    "orders": ("id", "customer_id", "channel", "external_id", "currency", "amount", "refunded_amount", "status",
               "placed_at", "created_at", "updated_at"),
    "order_lines": ("id", "order_id", "sku", "name", "category", "quantity", "unit_price", "amount"),
}


async def _copy(conn: asyncpg.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    for table in ("customers", "customer_contacts", "customer_identities", "orders", "order_lines"):
        await conn.copy_records_to_table(table, records=rows[table], columns=list(COLUMNS[table]))
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT coalesce(max(id), 1) FROM {table}))")


async def ensure(url: str, settings: Settings, plugins: PluginManager, customers: int, hot: int,
                 say: Any = print, rebuild: bool = False) -> DataSet:
    """The data set of ``customers`` bulk customers and ``hot`` service-made ones, built if missing."""
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        found = await _counts(conn)
        existing = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        if any(t.name not in existing for t in enabled_tables([n for n in plugins.names() if n != "core"])):
            found = (-1, -1)  # a plugin was turned on since: its tables are missing
    except asyncpg.UndefinedTableError:
        found = (-1, -1)
    finally:
        await conn.close()
    built: float | None = None
    if found != (customers, hot) or rebuild:
        began = time.perf_counter()
        say(f"building the data set: {customers} customers by COPY, {hot} through the services ...")
        await _recreate(url, plugins)
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            await _copy(conn, _bulk_rows(customers, 11, datetime.now(UTC)))
        finally:
            await conn.close()
        db = Database(url)
        try:
            await load_demo(db, settings, plugins, customers=hot, seed=3)
        finally:
            await db.dispose()
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            # Every hot customer has an owner, so a page of any size asks the owner loader and
            # the statement counts of customers(first: N) compare like with like.
            await conn.execute("UPDATE customers SET owner_id = (SELECT min(id) FROM staff_users) "
                               "WHERE owner_id IS NULL AND id > $1", customers)
        finally:
            await conn.close()
        built = time.perf_counter() - began
        say(f"  built in {built:.1f} s")
    # Work queued by earlier runs (surveys, rescoring after orders) is done now, so that the
    # server does not do it while a read case is being measured.
    db = Database(url)
    try:
        done = await drain(db, plugins, settings)
    finally:
        await db.dispose()
    if done:
        say(f"  ran the queued jobs first: {', '.join(f'{n} {state}' for state, n in sorted(done.items()))}")
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        await conn.execute("ANALYZE")
        hot_ids = [r[0] for r in await conn.fetch(
            "SELECT customer_id FROM customer_identities WHERE kind = $1 ORDER BY customer_id", HOT_KIND)]
        orders = int(await conn.fetchval("SELECT count(*) FROM orders"))
        return DataSet(customers=customers, hot_ids=hot_ids, orders=orders, built_seconds=built)
    finally:
        await conn.close()
