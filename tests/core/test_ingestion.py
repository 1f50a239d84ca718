"""Orders in batches: an import of a generated history (refunds, cancellations, rows in a
wrong currency, duplicates) ends exactly where recording the same orders one by one
through the API ends, apart from what an import counts as of each order's time (expiry,
tiers); it sends nothing for the past; ``recordOrders`` answers per order; the coalesced
churn rescore scores as a recount does."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from tenure.core.db import Database
from tenure.core.import_files import Row, open_rows
from tenure.core.imports import _next_batch, import_file
from tenure.core.models import Event
from tenure.plugins.tiers.models import Membership
from tenure.testing import TenureHarness, pk_of, truncate_all
from tests.plugins.loyalty_support import create_reward, create_rule
from tests.plugins.test_tiers import standard_tiers
from tests.support.receivers import http_receiver, smtp_server

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PLUGINS = ["loyalty", "tiers", "churn", "nps"]
#: A tier window (days) longer than :func:`history`'s two years.
WHOLE_HISTORY = 800
ORDER = """mutation($i: RecordOrderInput!) { recordOrder(input: $i) { order { id } created
  userErrors { field message code } } }"""
CANCEL = "mutation($i: CancelOrderInput!) { cancelOrder(input: $i) { userErrors { message } } }"
REFUND = "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { userErrors { message } } }"


def history(seed: int = 11, customers: int = 30, orders: int = 200) -> tuple[list[dict[str, Any]],
                                                                             list[dict[str, Any]]]:
    """Customers and two years of their orders, in time order: mostly paid, some cancelled,
    refunded or partly refunded, a few in a currency the server does not take, and a few
    sent twice."""
    rng = random.Random(seed)
    people = [{"external_id": f"C{n}", "name": f"Customer {n}", "tags": "vip" if n % 7 == 0 else ""}
              for n in range(customers)]
    rows: list[dict[str, Any]] = []
    for n in range(orders):
        placed = NOW - timedelta(days=730) + timedelta(minutes=rng.randrange(0, 729 * 24 * 60))
        amount = rng.choice([1500, 4200, 9900, 25_000, 60_000])
        row: dict[str, Any] = {"customer_external_id": f"C{rng.randrange(customers)}", "channel": "shop",
                               "external_id": f"O{n}", "currency": "USD", "placed_at": placed.isoformat(),
                               "lines": [{"sku": "tea", "quantity": 1, "unit_price": amount - 500, "category": "tea"},
                                         {"sku": "cup", "quantity": 1, "unit_price": 500, "category": "ware"}]}
        roll = rng.random()
        if roll < 0.06:
            row["status"] = "cancelled"
        elif roll < 0.12:
            row["status"] = "refunded"
        elif roll < 0.18:
            row["status"], row["refunded_amount"] = "partially_refunded", amount // 3
        elif roll < 0.21:
            row["currency"] = "EUR"
        rows.append(row)
    rows.sort(key=lambda r: r["placed_at"])
    for n in (5, len(rows) // 4, len(rows) // 2):  # sent again later, as a flaky exporter would
        rows.insert(n + 20, dict(rows[n]))
    return people, rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def configure(tenure: TenureHarness, tier_window_days: int | None = None) -> None:
    """Earn rules (a base rate, a tag multiplier, a first-order bonus), tiers with a points
    multiplier, and a survey after each order."""
    for rule in ({"name": "Base", "kind": "base", "points": 1, "perAmount": 100},
                 {"name": "VIP", "kind": "multiplier", "tag": "vip", "percent": 150},
                 {"name": "Welcome", "kind": "bonus", "points": 50, "trigger": "first_order"}):
        assert (await create_rule(tenure, **rule))["userErrors"] == [], rule
    await standard_tiers(tenure, tier_window_days)
    made = await tenure.ok("""mutation { createSurvey(input: {name: "After purchase", delayDays: 3}) {
        userErrors { message } } }""")
    assert made["createSurvey"]["userErrors"] == []


async def load_customers(tenure: TenureHarness, tmp: Path, people: list[dict[str, Any]]) -> None:
    stream = open_rows(write_jsonl(tmp / "people.jsonl", people), "customers")
    report = await import_file(tenure.db, tenure.settings, tenure.plugins, stream)
    assert report.created == len(people) and not report.rejected


async def state(tenure: TenureHarness) -> dict[str, Any]:
    """What a user can see of orders, points, tiers, the rollup and churn, by external ids."""

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        async with tenure.db.reader() as session:
            return sorted(tuple(str(v) for v in r) for r in (await session.execute(text(sql))).all())

    who = "(SELECT value FROM customer_identities i WHERE i.customer_id = {0} AND i.kind = 'external')"
    return {
        "orders": await rows("SELECT channel, external_id, status, amount, refunded_amount FROM orders"),
        "customers": await rows(f"SELECT {who.format('c.id')}, order_count, total_spent, first_order_at, "
                                "last_order_at FROM customers c"),
        "accounts": await rows(f"SELECT {who.format('a.customer_id')}, balance, pending, lifetime_earned, shortfall "
                               "FROM loyalty_accounts a"),
        "entries": await rows(f"SELECT {who.format('e.customer_id')}, e.kind, e.points, e.qualifying, e.pending, "
                              "e.remaining, e.shortfall, o.external_id FROM loyalty_entries e "
                              "LEFT JOIN orders o ON o.id = e.order_id"),
        "tiers": await rows(f"SELECT {who.format('m.customer_id')}, t.name FROM tier_memberships m "
                            "JOIN tiers t ON t.id = m.tier_id"),
        "months": await rows(f"SELECT {who.format('m.customer_id')}, month, orders, revenue, prev_month, "
                             "next_month, first_month FROM order_months m"),
        "scores": await rows(f"SELECT {who.format('s.customer_id')}, last_order_at, frequency, monetary, r, f, m, "
                             "segment, stage, usual_gap_days, cancellations, fired, health FROM churn_scores s"),
    }


async def one_by_one(tenure: TenureHarness, rows: list[dict[str, Any]]) -> None:
    """The same orders through the API, in the file's order, each cancellation or refund
    right after its order."""
    ids: dict[str, int] = {}
    for row in rows:
        external = row["customer_external_id"]
        if external not in ids:
            ids[external] = int(await tenure.scalar(
                "SELECT customer_id FROM customer_identities WHERE kind = 'external' AND value = :v", v=external))
        answer = await tenure.ok(ORDER, {"i": {
            "customerId": str(ids[external]), "channel": row["channel"], "externalId": row["external_id"],
            "currency": row["currency"], "placedAt": row["placed_at"],
            "lines": [{"sku": li["sku"], "quantity": li["quantity"], "unitPrice": li["unit_price"],
                       "category": li["category"]} for li in row["lines"]]}})
        payload = answer["recordOrder"]
        if payload["userErrors"] or not payload["created"]:
            continue
        order_id = payload["order"]["id"]
        if row.get("status") == "cancelled":
            assert (await tenure.ok(CANCEL, {"i": {"orderId": order_id}}))["cancelOrder"]["userErrors"] == []
        elif row.get("status") in ("refunded", "partially_refunded"):
            refund = {"orderId": order_id, "amount": row.get("refunded_amount")}
            assert (await tenure.ok(REFUND, {"i": refund}))["refundOrder"]["userErrors"] == []


@pytest.mark.parametrize("customers, orders, batch_size", [(30, 200, 1000), (80, 400, 1000), (80, 400, 45)],
                         ids=["few-customers", "wide-rounds", "batches-overlapping"])
async def test_an_import_ends_where_the_same_orders_one_by_one_end(
        make_tenure: Callable[..., Any], tmp_path: Path, frozen_clock: Any, customers: int, orders: int,
        batch_size: int) -> None:
    # Wide rounds (more than bulk.COPY_FROM orders, entries and lines at once) take the
    # PostgreSQL COPY path with ids from the sequences; narrow ones the executemany path.
    # Small batches run two at once on PostgreSQL, a customer's rows waiting for the batch
    # in flight that has the customer.
    frozen_clock.set(NOW)
    people, rows = history(customers=customers, orders=orders)
    # Tiers over a window longer than the history: an import qualifies each order as of its
    # own time and the API as of now, and over such a window both count every order before.
    async with make_tenure(plugins=PLUGINS) as tenure:
        url = tenure.settings.database_url
        await configure(tenure, WHOLE_HISTORY)
        await load_customers(tenure, tmp_path, people)
        stream = open_rows(write_jsonl(tmp_path / "orders.jsonl", rows), "orders")
        report = await import_file(tenure.db, tenure.settings, tenure.plugins, stream, batch_size=batch_size)
        assert report.already_imported == 3
        wrong_currency = sum(1 for r in rows if r["currency"] == "EUR")
        assert len(report.rejected) == wrong_currency > 0
        assert all("TENURE_CURRENCY" in r.reason for r in report.rejected)
        assert report.created == len(rows) - 3 - wrong_currency
        await tenure.run_jobs()
        imported = await state(tenure)
        # An import counts expiry from each order's time: a lot earned 400 days ago is past it.
        expiring = await tenure.scalar(
            "SELECT count(*) FROM loyalty_entries e JOIN orders o ON o.id = e.order_id "
            "WHERE e.kind = 'earn' AND e.expires_at < :now", now=NOW)
        assert expiring > 0
    if url.startswith("postgresql"):
        await truncate_all(url)
        second = url
    else:
        second = f"sqlite+aiosqlite:///{tmp_path / 'one_by_one.db'}"
    async with TenureHarness.start(second, plugins=PLUGINS, create_tables=second.startswith("sqlite")) as tenure:
        await configure(tenure, WHOLE_HISTORY)
        await load_customers(tenure, tmp_path, people)
        await one_by_one(tenure, rows)
        await tenure.run_jobs()
        recorded = await state(tenure)
    assert imported["orders"] == recorded["orders"]
    for part in ("customers", "accounts", "entries", "tiers", "months", "scores"):
        assert imported[part] == recorded[part], part
    assert len(imported["tiers"]) > 1 and any(t[1] == "Gold" for t in imported["tiers"])
    assert any(e[1] == "reverse" for e in imported["entries"])


def test_a_customer_s_rows_wait_behind_the_batch_in_flight_in_file_order() -> None:
    # Two batches run at once on PostgreSQL: the next one leaves out the customers of the
    # one in flight, and once one of a customer's rows waits, so do all their later rows.
    def row(line: int, customer: str) -> Row:
        return Row(line, {"customer_external_id": customer, "external_id": f"o{line}"}, key="")

    rows = [row(1, "a"), row(2, "b"), row(3, "c"), row(4, "a"), row(5, "d"), row(6, "c"), row(7, "e")]
    batch, waiting = _next_batch(rows, {("customer_external_id", "b")}, size=3)
    assert [r.line for r in batch] == [1, 3, 4]
    # The batch is full from line 5 on: the rest wait, in file order.
    assert [r.line for r in waiting] == [2, 5, 6, 7]
    batch, waiting = _next_batch(waiting, {("customer_external_id", "a"), ("customer_external_id", "c")}, size=3)
    assert [r.line for r in batch] == [2, 5, 7]
    assert [r.line for r in waiting] == [6]


async def test_an_import_sends_nothing_for_the_past(make_tenure: Callable[..., Any], tmp_path: Path,
                                                    frozen_clock: Any) -> None:
    frozen_clock.set(NOW)
    people, rows = history(seed=3, customers=12, orders=60)
    with smtp_server() as mailbox, http_receiver() as hooks:
        async with make_tenure(plugins=PLUGINS, smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            await configure(tenure)
            await create_reward(tenure, name="Mug", cost=10)  # reachable at once: nobody is told of the past
            subscribed = await tenure.ok("""mutation($u: String!) { createWebhookSubscription(input: {url: $u}) {
                userErrors { message } } }""", {"u": hooks.url})
            assert subscribed["createWebhookSubscription"]["userErrors"] == []
            await load_customers(tenure, tmp_path, people)
            await tenure.run_jobs()
            hooks.delivered.clear()
            stream = open_rows(write_jsonl(tmp_path / "orders.jsonl", rows), "orders")
            report = await import_file(tenure.db, tenure.settings, tenure.plugins, stream)
            assert report.created > 40
            await tenure.run_jobs()
            assert await tenure.scalar("SELECT count(*) FROM nps_invitations") == 0
            assert await tenure.scalar("SELECT count(*) FROM messages") == 0
            assert await tenure.scalar("SELECT count(*) FROM tasks WHERE source <> 'churn'") == 0
            assert mailbox.messages == []
            # The events feed has the orders; subscribers hear once, from the summary.
            feed = await tenure.scalar("SELECT count(*) FROM events WHERE type = 'order.recorded'")
            assert feed == report.created
            types = [json.loads(body)["type"] for _, body in hooks.delivered]
            assert types.count("import.completed") == 1 and "order.recorded" not in types, types
            summary = next(json.loads(b) for _, b in hooks.delivered if json.loads(b)["type"] == "import.completed")
            assert summary["data"]["created"] == report.created
            assert summary["data"]["rejected"] == len(report.rejected)
            # Points were earned all the same, as of the orders' own times.
            assert await tenure.scalar("SELECT sum(lifetime_earned) FROM loyalty_accounts") > 0
            # An order through the API afterwards is live again: its customer is invited.
            customer = await tenure.scalar("SELECT customer_id FROM customer_identities WHERE value = 'C1'")
            await tenure.ok(ORDER, {"i": {"customerId": str(customer), "channel": "shop", "externalId": "live-1",
                                          "currency": "USD", "amount": 1000}})
            assert await tenure.scalar("SELECT count(*) FROM nps_invitations") == 1


async def test_an_import_qualifies_tiers_as_of_each_order_s_time(make_tenure: Callable[..., Any], tmp_path: Path,
                                                                 frozen_clock: Any) -> None:
    """Two years ago a customer spent 120,000 within two months: Gold then (a 365-day
    window), so the second order's points and the next ones are doubled. Recorded today
    through the API, the same orders would reach no more than Member, their window being
    the last year. A second customer's one order last week makes them Gold at once, as
    it would today."""
    frozen_clock.set(NOW)
    people = [{"external_id": "A", "name": "Early"}, {"external_id": "B", "name": "Recent"}]

    def order(who: str, number: str, days_ago: int, amount: int) -> dict[str, Any]:
        return {"customer_external_id": who, "channel": "shop", "external_id": number, "currency": "USD",
                "placed_at": (NOW - timedelta(days=days_ago)).isoformat(), "amount": amount}

    rows = [order("A", "A1", 700, 60_000), order("A", "A2", 650, 60_000), order("B", "B1", 7, 120_000),
            order("A", "A3", 30, 10_000)]
    rows.sort(key=lambda r: r["placed_at"])
    async with make_tenure(plugins=PLUGINS) as tenure:
        await configure(tenure)
        await load_customers(tenure, tmp_path, people)
        report = await import_file(tenure.db, tenure.settings, tenure.plugins,
                                   open_rows(write_jsonl(tmp_path / "orders.jsonl", rows), "orders"))
        assert report.created == 4 and not report.rejected

        async def rows_of(sql: str) -> list[tuple[Any, ...]]:
            async with tenure.db.reader() as session:
                return [tuple(r) for r in (await session.execute(text(sql))).all()]

        points = dict(await rows_of("SELECT o.external_id, e.points FROM loyalty_entries e JOIN orders o "
                                    "ON o.id = e.order_id WHERE e.idempotency_key LIKE 'order:%'"))
        # 1 point per 100; doubled once Gold (A2 made A Gold before its points were counted).
        assert points == {"A1": 600, "A2": 1200, "A3": 200, "B1": 2400}
        memberships = dict(await rows_of("SELECT i.value, t.name FROM tier_memberships m JOIN tiers t "
                                         "ON t.id = m.tier_id JOIN customer_identities i "
                                         "ON i.customer_id = m.customer_id"))
        assert memberships == {"A": "Gold", "B": "Gold"}
        a = await tenure.scalar("SELECT customer_id FROM customer_identities WHERE value = 'A'")
        async with tenure.db.reader() as session:
            membership = (await session.execute(select(Membership).where(Membership.customer_id == a))).scalar_one()
            moves = [(e.summary.split(":")[0], e.occurred_at) for e in (await session.scalars(
                select(Event).where(Event.type == "tiers.changed", Event.customer_id == a).order_by(Event.id)))]
        # Gold since the order that reached it, and on the timeline then; its reach lapsed a
        # year after A1 (A3 alone does not keep it), which the review after the import sees.
        assert membership.since == NOW - timedelta(days=650)
        assert membership.expires_at == NOW - timedelta(days=700 - 365)
        assert moves == [("joined Silver", NOW - timedelta(days=700)), ("moved up to Gold", NOW - timedelta(days=650))]


async def test_record_orders_answers_each_order(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=PLUGINS) as tenure:
        await configure(tenure)
        made = await tenure.ok('mutation { createCustomer(input: {name: "Ada"}) { customer { id } } }')
        ada = made["createCustomer"]["customer"]["id"]
        batch = """mutation($o: [RecordOrderInput!]!) { recordOrders(input: {orders: $o}) {
            results { index created order { externalId customer { id } } userErrors { field code } }
            userErrors { field code } } }"""

        def order(ref: str, **extra: Any) -> dict[str, Any]:
            return {"customerId": ada, "channel": "pos", "externalId": ref, "currency": "USD", "amount": 2000,
                    **extra}

        orders = [order("A"), order("B", currency="EUR"), order("C", customerId="999999"), order("A"),
                  order("D", customerId="x"), order("E", amount=-5), order("F")]
        answer = (await tenure.ok(batch, {"o": orders}))["recordOrders"]
        assert answer["userErrors"] == []
        results = answer["results"]
        assert [r["index"] for r in results] == list(range(7))
        assert [r["created"] for r in results] == [True, False, False, False, False, False, True]
        assert [[e["field"] for e in r["userErrors"]] for r in results] == [
            [], [["input", "orders", "1", "currency"]], [["input", "orders", "2", "customerId"]], [],
            [["input", "orders", "4", "customerId"]], [["input", "orders", "5", "amount"]], []]
        assert results[3]["order"]["externalId"] == "A"  # the same order again: the one recorded
        # Sent again (a retry after a time-out): nothing new, the same orders come back.
        again = (await tenure.ok(batch, {"o": [order("A"), order("F")]}))["recordOrders"]["results"]
        assert [(r["created"], r["order"]["externalId"]) for r in again] == [(False, "A"), (False, "F")]
        assert await tenure.scalar("SELECT count(*) FROM orders") == 2
        assert await tenure.scalar("SELECT order_count FROM customers WHERE id = :c", c=pk_of(ada)) == 2
        # Both earned points, and the first carried the welcome bonus: 20 + 50 + 20.
        assert await tenure.scalar("SELECT lifetime_earned FROM loyalty_accounts") == 90
        too_many = (await tenure.ok(batch, {"o": [order(f"M{n}") for n in range(tenure.settings.max_page_size + 1)]}))
        assert too_many["recordOrders"]["userErrors"] == [{"field": ["input", "orders"], "code": "TOO_MANY"}]
        assert await tenure.scalar("SELECT count(*) FROM orders") == 2


async def test_a_burst_of_orders_costs_one_rescore_that_equals_a_recount(make_tenure: Callable[..., Any],
                                                                         frozen_clock: Any) -> None:
    frozen_clock.set(NOW)
    async with make_tenure(plugins=["churn"], env={"TENURE_CHURN_RESCORE_DELAY_SECONDS": "5"}) as tenure:
        made = await tenure.ok('mutation { a: createCustomer(input: {name: "Ada"}) { customer { id } } '
                               'b: createCustomer(input: {name: "Ben"}) { customer { id } } }')
        ada, ben = made["a"]["customer"]["id"], made["b"]["customer"]["id"]
        from tenure.plugins.churn.service import rescore_all

        await rescore_all(tenure.transaction)
        for n in range(12):
            who = ada if n % 3 else ben
            await tenure.ok(ORDER, {"i": {"customerId": who, "channel": "web", "externalId": f"burst-{n}",
                                          "currency": "USD", "amount": 1000 + n,
                                          "placedAt": (NOW - timedelta(days=40 - n)).isoformat()}})
        queued = await tenure.scalar("SELECT count(*) FROM outbox WHERE job = 'churn.rescore_marked'")
        assert queued == 1
        assert await tenure.run_jobs() == {}  # not due before the window closes
        frozen_clock.advance(seconds=6)
        assert (await tenure.run_jobs()).get("done", 0) >= 1
        coalesced = await scores(tenure)
        assert coalesced[pk_of(ada)][0] == 8 and coalesced[pk_of(ben)][0] == 4  # orders in the RFM window
        await rescore_all(tenure.transaction, recount=True)
        assert await scores(tenure) == coalesced


async def scores(tenure: TenureHarness) -> dict[int, tuple[Any, ...]]:
    async with tenure.db.reader() as session:
        from sqlalchemy import text

        # The RFM quintiles of an event's rescore stay on the scale of the last full rescore
        # on purpose; every figure below is the customer's own.
        found = await session.execute(text("SELECT customer_id, frequency, monetary, last_order_at, usual_gap_days, "
                                           "cancellations, stage, fired, health FROM churn_scores"))
        return {int(r[0]): tuple(r[1:]) for r in found.all()}


def test_an_import_killed_halfway_resumes_with_nothing_lost_or_doubled(database_url: str, tmp_path: Path) -> None:
    import asyncio
    import os
    import shutil
    import signal
    import subprocess
    import time

    people, rows = history(seed=5, customers=150, orders=3000)
    customers_file = write_jsonl(tmp_path / "people.jsonl", people)
    orders_file = write_jsonl(tmp_path / "orders.jsonl", rows)
    tenure = shutil.which("tenure")
    assert tenure

    def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "TENURE_DATABASE_URL": url, "TENURE_PLUGINS": ",".join(PLUGINS),
               "TENURE_ENVIRONMENT": "test"}
        return subprocess.run([tenure, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)

    def count(url: str) -> int:
        async def read() -> int:
            db = Database(url)
            try:
                async with db.reader() as session:
                    return int(await session.scalar(text("SELECT count(*) FROM orders")) or 0)
            finally:
                await db.dispose()

        return asyncio.run(read())

    def prepare(url: str) -> None:
        if url.startswith("sqlite"):  # the PostgreSQL test database has its tables already
            assert run(url, "migrate").returncode == 0
        assert run(url, "import", "customers", str(customers_file)).returncode == 0

    def final_state(url: str) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            async with TenureHarness.start(url, plugins=PLUGINS, create_tables=False) as harness:
                return await state(harness)

        return asyncio.run(read())

    prepare(database_url)
    env = {**os.environ, "TENURE_DATABASE_URL": database_url, "TENURE_PLUGINS": ",".join(PLUGINS),
           "TENURE_ENVIRONMENT": "test"}
    process = subprocess.Popen([tenure, "import", "orders", str(orders_file)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while process.poll() is None and count(database_url) == 0:
        assert time.monotonic() < deadline, "the import wrote nothing in 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    halfway = count(database_url)
    assert 0 < halfway < len(rows) - 500, halfway
    resumed = run(database_url, "import", "orders", str(orders_file))
    assert f"{halfway} already imported" in resumed.stdout or "already imported" in resumed.stdout, resumed.stdout
    after_resume = final_state(database_url)
    again = run(database_url, "import", "orders", str(orders_file))
    assert " 0 were new" in again.stdout, again.stdout
    assert final_state(database_url) == after_resume

    if database_url.startswith("postgresql"):
        asyncio.run(truncate_all(database_url))
        clean = database_url
    else:
        clean = f"sqlite+aiosqlite:///{tmp_path / 'clean.db'}"
    prepare(clean)
    assert run(clean, "import", "orders", str(orders_file)).returncode == 1  # the rows in a wrong currency
    assert final_state(clean) == after_resume


async def test_postgresql_knows_the_size_of_the_tables_an_import_filled(postgres_url: str, tmp_path: Path) -> None:
    # The planner goes by each table's statistics; one that still believes ``orders`` empty
    # plans a batch's "already recorded?" look-up as a scan comparing every row with every
    # key, and an import slows down with each row it has written.
    people = [{"external_id": f"C{n}", "name": f"Customer {n}"} for n in range(300)]
    rows = [{"customer_external_id": f"C{n % 300}", "channel": "shop", "external_id": f"O{n}", "currency": "USD",
             "placed_at": (NOW - timedelta(days=400) + timedelta(hours=n)).isoformat(),
             "lines": [{"sku": "tea", "quantity": 1, "unit_price": 1500}]} for n in range(2500)]
    try:
        async with TenureHarness.start(postgres_url, plugins=[]) as tenure:
            await load_customers(tenure, tmp_path, people)
            stream = open_rows(write_jsonl(tmp_path / "orders.jsonl", rows), "orders")
            report = await import_file(tenure.db, tenure.settings, tenure.plugins, stream)
            assert report.created == 2500
            for table in ("orders", "order_lines"):
                believed = await tenure.scalar("SELECT reltuples FROM pg_class WHERE relname = :t", t=table)
                assert believed >= 2000, (table, believed)
    finally:
        await truncate_all(postgres_url)
