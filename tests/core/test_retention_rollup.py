"""The order months rollup that the retention figures read: it stays equal to the orders
through every change (record, backdated record, cancel, partial and full refund, merge), the
figures read from it equal the definitions worked out from the orders themselves, `tenure
check` catches drift and a rebuild repairs it, and the migration fills it from the orders of
a live database."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import bindparam, text

from tenure.cli import main
from tenure.core.checks import run_invariants
from tenure.core.services import customers, order_months, orders
from tenure.core.services.customers import CustomerData
from tenure.core.services.orders import OrderData
from tenure.core.services.retention import PeriodFigures, month_start
from tenure.testing import TenureHarness, freeze_time
from tests.core.test_migrations import fresh_postgres  # noqa: F401  (a fixture)

NOW = datetime(2026, 1, 15, tzinfo=UTC)
ROWS = "SELECT month, orders, revenue, prev_month, next_month, first_month FROM order_months WHERE customer_id = :c " \
       "ORDER BY month"


def m(year: int, month: int) -> int:
    return year * 12 + month - 1


async def rows(tenure: TenureHarness, customer_id: int) -> list[tuple[int, ...]]:
    async with tenure.db.reader() as session:
        return [tuple(r) for r in (await session.execute(text(ROWS), {"c": customer_id})).all()]


async def drift(tenure: TenureHarness) -> list[str]:
    async with tenure.db.reader() as session:
        return await order_months.check(session)


async def record(ctx: Any, cid: int, ext: str, amount: int, year: int, month: int, day: int = 10) -> Any:
    order, _ = await orders.record_order(ctx, OrderData(customer_id=cid, channel="web", external_id=ext,
                                                        currency="USD", amount=amount,
                                                        placed_at=datetime(year, month, day, 12, tzinfo=UTC)))
    return order


async def test_the_rollup_follows_every_change_to_the_orders(make_tenure: Any) -> None:
    with freeze_time(NOW):
        async with make_tenure(plugins=[]) as tenure:
            async with tenure.transaction() as ctx:
                a = (await customers.create_customer(ctx, CustomerData(name="A"))).id
                b = (await customers.create_customer(ctx, CustomerData(name="B"))).id
                await record(ctx, a, "a1", 100, 2025, 3)
                await record(ctx, a, "a2", 200, 2025, 3, 20)       # same month
                await record(ctx, a, "a3", 300, 2025, 7)           # a new latest month
                await record(ctx, a, "a4", 400, 2025, 5)           # backdated, a month of its own
                first = await record(ctx, a, "a0", 50, 2025, 1)    # backdated before the first month
                await record(ctx, a, "a5", 10, 2025, 7, 1)         # backdated, into a month already there
            assert await rows(tenure, a) == [
                (m(2025, 1), 1, 50, None, m(2025, 3), m(2025, 1)),
                (m(2025, 3), 2, 300, m(2025, 1), m(2025, 5), m(2025, 1)),
                (m(2025, 5), 1, 400, m(2025, 3), m(2025, 7), m(2025, 1)),
                (m(2025, 7), 2, 310, m(2025, 5), None, m(2025, 1)),
            ]
            async with tenure.transaction() as ctx:
                may = await ctx.session.scalar(text("SELECT id FROM orders WHERE external_id = 'a4'"))
                march = await ctx.session.scalar(text("SELECT id FROM orders WHERE external_id = 'a2'"))
                july = await ctx.session.scalar(text("SELECT id FROM orders WHERE external_id = 'a3'"))
                await orders.cancel_order(ctx, may)                 # empties May: the list closes the gap
                await orders.cancel_order(ctx, first.id)            # empties the first month: a new cohort
                await orders.refund_order(ctx, march, 50, None)     # partial
                await orders.refund_order(ctx, july, None, None)    # full: the order still counts, for 0
            assert await rows(tenure, a) == [
                (m(2025, 3), 2, 250, None, m(2025, 7), m(2025, 3)),
                (m(2025, 7), 2, 10, m(2025, 3), None, m(2025, 3)),
            ]
            async with tenure.transaction() as ctx:
                await record(ctx, b, "b1", 1000, 2025, 2)
                await record(ctx, b, "b2", 2000, 2025, 7)
                await record(ctx, b, "b3", 3000, 2025, 9)
                await customers.merge_customers(ctx, a, b)
            assert await rows(tenure, a) == [
                (m(2025, 2), 1, 1000, None, m(2025, 3), m(2025, 2)),
                (m(2025, 3), 2, 250, m(2025, 2), m(2025, 7), m(2025, 2)),
                (m(2025, 7), 3, 2010, m(2025, 3), m(2025, 9), m(2025, 2)),
                (m(2025, 9), 1, 3000, m(2025, 7), None, m(2025, 2)),
            ]
            assert await rows(tenure, b) == []
            assert await drift(tenure) == []


async def test_a_batch_of_orders_keeps_the_rollup_as_one_by_one(make_tenure: Any) -> None:
    # Each round of a batch holds one order per customer and keeps the months of all of
    # them at once: a customer's first month, the same month, a new latest month, backdated
    # months of their own, before the first and into one already there, side by side.
    def order(cid: int, ext: str, amount: int, year: int, month: int, day: int = 10) -> OrderData:
        return OrderData(customer_id=cid, channel="web", external_id=ext, currency="USD", amount=amount,
                         placed_at=datetime(year, month, day, 12, tzinfo=UTC))

    with freeze_time(NOW):
        async with make_tenure(plugins=[]) as tenure:
            async with tenure.transaction() as ctx:
                ids = [(await customers.create_customer(ctx, CustomerData(name=n))).id for n in "ABC"]
            a, b, c = ids
            async with tenure.transaction() as ctx:
                outcomes = await orders.record_orders(ctx, [
                    order(a, "a1", 100, 2025, 3), order(b, "b1", 7, 2025, 6), order(c, "c1", 5, 2025, 1),
                    order(a, "a2", 200, 2025, 3, 20), order(b, "b2", 8, 2025, 4),
                    order(a, "a3", 300, 2025, 7), order(c, "c2", 6, 2025, 1, 2),
                    order(a, "a4", 400, 2025, 5), order(b, "b3", 9, 2025, 8),
                    order(a, "a0", 50, 2025, 1), order(a, "a5", 10, 2025, 7, 1)])
            assert [o.error for o in outcomes] == [None] * 11
            assert await rows(tenure, a) == [
                (m(2025, 1), 1, 50, None, m(2025, 3), m(2025, 1)),
                (m(2025, 3), 2, 300, m(2025, 1), m(2025, 5), m(2025, 1)),
                (m(2025, 5), 1, 400, m(2025, 3), m(2025, 7), m(2025, 1)),
                (m(2025, 7), 2, 310, m(2025, 5), None, m(2025, 1)),
            ]
            assert await rows(tenure, b) == [
                (m(2025, 4), 1, 8, None, m(2025, 6), m(2025, 4)),
                (m(2025, 6), 1, 7, m(2025, 4), m(2025, 8), m(2025, 4)),
                (m(2025, 8), 1, 9, m(2025, 6), None, m(2025, 4)),
            ]
            assert await rows(tenure, c) == [(m(2025, 1), 2, 11, None, None, m(2025, 1))]
            assert await drift(tenure) == []


async def test_the_check_names_drift_and_a_rebuild_repairs_it(make_tenure: Any) -> None:
    with freeze_time(NOW):
        async with make_tenure(plugins=[]) as tenure:
            async with tenure.transaction() as ctx:
                cid = (await customers.create_customer(ctx, CustomerData(name="A"))).id
                await record(ctx, cid, "a1", 100, 2025, 3)
                await record(ctx, cid, "a2", 200, 2025, 5)
            assert await run_invariants(tenure.db, tenure.plugins) == []
            async with tenure.db.transaction() as session:
                await session.execute(text("UPDATE order_months SET revenue = 999 WHERE month = :m"), {"m": m(2025, 3)})
                await session.execute(text("DELETE FROM order_months WHERE month = :m"), {"m": m(2025, 5)})
                await session.execute(text("INSERT INTO order_months VALUES (:c, :m, 1, 5, NULL, NULL, :m)"),
                                      {"c": cid, "m": m(2025, 8)})
            problems = await run_invariants(tenure.db, tenure.plugins)
            assert problems == [
                f"core: order months match the orders: customer {cid}, 2025-03: the rollup says orders 1, revenue 999,"
                " previous month None, next month 24304, first month 24302; the orders say orders 1, revenue 100,"
                " previous month None, next month 24304, first month 24302",
                f"core: order months match the orders: customer {cid}, 2025-05: the orders say orders 1, revenue 200,"
                " previous month 24302, next month None, first month 24302 but the rollup has no row (run"
                " `tenure retention rebuild`)",
                f"core: order months match the orders: customer {cid}, 2025-08: the rollup has a row (orders 1,"
                " revenue 5, previous month None, next month None, first month 24307) but no order counts in that"
                " month",
            ]
            assert await order_months.rebuild(tenure.db, batch=1000) == 2
            assert await run_invariants(tenure.db, tenure.plugins) == []


# -- The figures against their definitions, on generated orders --------------------------------


@dataclass
class Placed:
    customer: int
    month: int
    net: int


def _expected(placed: list[Placed], members: dict[str, set[int]], first: int, last: int, step: int,
              window: int) -> list[tuple[str, PeriodFigures]]:
    """Every figure straight from DOMAIN.md's definitions and the service's docstring."""
    out = []
    for group, people in sorted(members.items()):
        mine = [p for p in placed if p.customer in people]
        months = {c: {p.month for p in mine if p.customer == c} for c in people}
        firsts = {c: min(ms) for c, ms in months.items() if ms}

        def counting(t: int, months: dict[int, set[int]] = months) -> set[int]:
            return {c for c, ms in months.items() if any(t - window <= x < t for x in ms)}

        for p in range(first, last, step):
            inside = [x for x in mine if p <= x.month < p + step]
            per = {c: sum(1 for x in inside if x.customer == c) for c in people}
            buyers = {c for c, n in per.items() if n}
            new = {c for c, f in firsts.items() if p <= f < p + step}
            joined = buyers - counting(p)
            out.append((group, PeriodFigures(
                group=None, start=month_start(p), end=month_start(p + step),
                customers_at_start=len(counting(p)), customers_at_end=len(counting(p + step)),
                new_customers=len(new), returning_customers=len(joined - new), buyers=len(buyers),
                repeat_buyers=sum(1 for n in per.values() if n >= 2), orders=len(inside),
                revenue=sum(x.net for x in inside),
                historic_revenue=sum(x.net for x in mine if x.month < p + step),
                customers_so_far=sum(1 for f in firsts.values() if f < p + step),
                lifetime_cap_periods=12 / step)))
    return out


async def _generate(tenure: TenureHarness) -> tuple[list[Placed], dict[str, set[int]], dict[str, set[int]]]:
    """30 customers, orders over 2024-2025 recorded in random order (so many are backdated),
    some cancelled, some refunded in part or in full, and one merge."""
    rng = random.Random(5)
    placed: dict[int, Placed] = {}
    channels: dict[int, str] = {}
    tags: dict[int, str] = {}
    async with tenure.transaction() as ctx:
        ids = []
        for n in range(30):
            channel = rng.choice(["web", "pos"])
            tag = rng.choice(["vip", "b2b", None])
            customer = await customers.create_customer(
                ctx, CustomerData(name=f"C{n}", source_channel=channel, tags=[tag] if tag else []))
            ids.append(customer.id)
            channels[customer.id] = channel
            if tag:
                tags[customer.id] = tag
        wanted = [(cid, rng.randrange(24), rng.randrange(100, 5000)) for cid in ids for _ in range(rng.randrange(7))]
        rng.shuffle(wanted)
        for k, (cid, month, amount) in enumerate(wanted):
            order = await record(ctx, cid, f"o{k}", amount, 2024 + month // 12, month % 12 + 1, rng.randrange(1, 28))
            placed[order.id] = Placed(cid, m(2024, 1) + month, amount)
        for order_id in rng.sample(sorted(placed), 25):
            roll = rng.random()
            if roll < 0.4:
                await orders.cancel_order(ctx, order_id)
                del placed[order_id]
            elif roll < 0.7:
                await orders.refund_order(ctx, order_id, 50, None)
                placed[order_id].net -= 50
            else:
                await orders.refund_order(ctx, order_id, None, None)
                placed[order_id].net = 0
        survivor, merged = ids[0], ids[1]
        await customers.merge_customers(ctx, survivor, merged)
    for p in placed.values():
        p.customer = survivor if p.customer == merged else p.customer
    channels.pop(merged)
    tags.pop(merged, None)
    by_channel = {c: {i for i, ch in channels.items() if ch == c} for c in set(channels.values())}
    by_tag = {t: {i for i, tg in tags.items() if tg == t} for t in set(tags.values())}
    return list(placed.values()), by_channel, by_tag


FIELDS = ("start", "customersAtStart", "customersAtEnd", "newCustomers", "returningCustomers", "retainedCustomers",
          "retentionRate", "churnRate", "repeatPurchaseRate", "orders", "revenue", "averageOrderValue",
          "purchaseFrequency", "historicClv", "predictedClv")
QUERY = ("""query($g: RetentionGroupBy!, $by: RetentionDimension) {
  retention(from: "2024-01-01", to: "2026-01-01", groupBy: $g, by: $by) { group """ + " ".join(FIELDS) + " } }")


def _as_answer(group: str, f: PeriodFigures, grouped: bool) -> dict[str, Any]:
    values = (f.start.isoformat(), f.customers_at_start, f.customers_at_end, f.new_customers, f.returning_customers,
              f.retained, f.crr, f.churn_rate, f.repeat_purchase_rate, f.orders, f.revenue, f.average_order_value,
              f.purchase_frequency, f.historic_clv, f.predicted_clv)
    return {"group": group if grouped else None, **dict(zip(FIELDS, values, strict=True))}


@pytest.mark.parametrize("window", [3, 12])
async def test_the_figures_equal_their_definitions_on_generated_orders(make_tenure: Any, window: int) -> None:
    env = {"TENURE_RETENTION_ACTIVE_WINDOW_MONTHS": str(window), "TENURE_RETENTION_MAX_LIFETIME_YEARS": "1"}
    with freeze_time(NOW):
        async with make_tenure(plugins=[], env=env) as tenure:
            placed, by_channel, by_tag = await _generate(tenure)
            assert await drift(tenure) == []
            everyone = {"": {p.customer for p in placed}}
            cases = [("MONTH", 1, None, everyone), ("QUARTER", 3, None, everyone), ("MONTH", 1, "CHANNEL", by_channel),
                     ("QUARTER", 3, "TAG", by_tag)] + ([("YEAR", 12, None, everyone)] if window >= 12 else [])
            for grouping, step, by, members in cases:
                answer = (await tenure.ok(QUERY, {"g": grouping, "by": by}))["retention"]
                want = [_as_answer(g, f, by is not None)
                        for g, f in _expected(placed, members, m(2024, 1), m(2026, 1), step, window)]
                assert answer == want, (grouping, by)


# -- The migration fills the rollup from the orders of a live database ---------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    else:
        yield str(request.getfixturevalue("fresh_postgres"))


def test_the_migration_fills_the_rollup_from_existing_orders(migrated_url: str) -> None:
    from alembic import command

    from tenure.core.db import Database, UTCDateTime
    from tenure.core.migrate import alembic_config
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings

    settings = Settings.from_env({"TENURE_DATABASE_URL": migrated_url, "TENURE_PLUGINS": "",
                                  "TENURE_ENVIRONMENT": "test"}, env_file=None)
    cfg = alembic_config(settings, load_plugins(settings))
    command.upgrade(cfg, "core@0003")

    async def load() -> None:
        db = Database(migrated_url)
        try:
            async with db.transaction() as session:
                await session.execute(text(
                    "INSERT INTO customers (id, name, order_count, total_spent, consent_email, consent_sms,"
                    " consent_push, created_at, updated_at) VALUES (1, 'A', 3, 600, false, false, false, :t, :t)")
                    .bindparams(bindparam("t", type_=UTCDateTime())), {"t": NOW})
                for n, (placed, amount, refunded, status) in enumerate([
                        ("2025-03-05 10:00:00", 100, 0, "paid"), ("2025-03-30 23:59:59", 200, 50, "partially_refunded"),
                        ("2025-04-01 00:00:00", 999, 0, "cancelled"), ("2025-06-01 00:00:00", 350, 0, "paid")]):
                    await session.execute(text(
                        "INSERT INTO orders (id, customer_id, channel, external_id, currency, amount, refunded_amount,"
                        " status, placed_at, created_at, updated_at) VALUES (:i, 1, 'web', :e, 'USD', :a, :r, :s,"
                        " :p, :p, :p)").bindparams(bindparam("p", type_=UTCDateTime())),
                        {"i": n + 1, "e": f"x{n}", "a": amount, "r": refunded, "s": status,
                         "p": datetime.fromisoformat(placed).replace(tzinfo=UTC)})
        finally:
            await db.dispose()

    async def read() -> tuple[list[tuple[int, ...]], list[str]]:
        db = Database(migrated_url)
        try:
            async with db.reader() as session:
                found = [tuple(r) for r in (await session.execute(text(ROWS), {"c": 1})).all()]
                return found, await order_months.check(session)
        finally:
            await db.dispose()

    asyncio.run(load())
    command.upgrade(cfg, "core@head")
    found, problems = asyncio.run(read())
    assert found == [(m(2025, 3), 2, 250, None, m(2025, 6), m(2025, 3)),
                     (m(2025, 6), 1, 350, m(2025, 3), None, m(2025, 3))]
    assert problems == []
    rebuilt = CliRunner().invoke(main, ["retention", "rebuild"], env={"TENURE_DATABASE_URL": migrated_url,
                                                                      "TENURE_PLUGINS": ""})
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "2 customer months written" in rebuilt.output
    assert asyncio.run(read()) == (found, [])


async def test_changes_to_one_customer_at_once_leave_the_rollup_equal_to_the_orders(make_tenure: Any) -> None:
    """Orders in new, existing and earlier months, cancels and refunds of one customer, all at
    once: each change queues on the customer's row, none is lost, none deadlocks."""
    with freeze_time(NOW):
        async with make_tenure(plugins=[]) as tenure:
            async with tenure.transaction() as ctx:
                cid = (await customers.create_customer(ctx, CustomerData(name="A"))).id
                first = [(await record(ctx, cid, f"s{n}", 100, 2025, month)).id for n, month in enumerate((2, 6, 9))]
            key = await tenure.key()
            record_q = "mutation($i: RecordOrderInput!) { recordOrder(input: $i) { userErrors { message } } }"
            change_q = ("mutation($c: CancelOrderInput!, $r: RefundOrderInput!) { cancelOrder(input: $c) "
                        "{ userErrors { message } } refundOrder(input: $r) { userErrors { message } } }")
            work = [tenure.ok(record_q, {"i": {"customerId": str(cid), "channel": "web", "externalId": f"c{n}",
                                               "currency": "USD", "amount": 10 + n,
                                               "placedAt": f"2025-{1 + n % 11:02d}-15T10:00:00Z"}}, key=key)
                    for n in range(8)]
            work.append(tenure.ok(change_q, {"c": {"orderId": str(first[1])}, "r": {"orderId": str(first[2]),
                                                                                    "amount": 30}}, key=key))
            answers = await asyncio.gather(*work)
            assert all(not e for a in answers for p in a.values() for e in p["userErrors"]), answers
            assert await drift(tenure) == []
            months = [r[0] for r in await rows(tenure, cid)]
            assert months == sorted({m(2025, 2), m(2025, 9)} | {m(2025, 1 + n % 11) for n in range(8)})
