"""The same push arriving several times at once (a channel retrying): recorded once,
every caller gets the one record, and the figures count it once."""

from __future__ import annotations

import asyncio

from tenure.testing import TenureHarness, pk_of, truncate_all
from tests.core.helpers import ERRORS, RECORD_ORDER, create_customer

UPSERT = f"""mutation($input: UpsertCustomerInput!) {{
  upsertCustomer(input: $input) {{ created customer {{ id }} {ERRORS} }}
}}"""


async def test_the_same_order_at_once_is_recorded_once(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    key = await tenure.key()
    order = {"customerId": cid, "channel": "web", "externalId": "RACE-1", "currency": "USD", "amount": 700}
    answers = await asyncio.gather(*[tenure.ok(RECORD_ORDER, {"input": order}, key=key) for _ in range(6)])
    payloads = [a["recordOrder"] for a in answers]
    assert all(p["userErrors"] == [] for p in payloads), payloads
    assert sum(p["created"] for p in payloads) == 1
    assert len({p["order"]["id"] for p in payloads}) == 1
    figures = await tenure.ok("query($id: ID!) { customer(id: $id) { orderCount totalSpent { amount } } }", {"id": cid})
    assert figures["customer"] == {"orderCount": 1, "totalSpent": {"amount": 700}}
    assert await tenure.scalar("SELECT count(*) FROM events WHERE type = 'order.recorded'") == 1


async def test_the_same_customer_pushed_at_once_is_created_once(tenure: TenureHarness) -> None:
    key = await tenure.key()
    push = {"identity": {"kind": "pos", "value": "RACE"}, "customer": {"name": "Rita"}}
    answers = await asyncio.gather(*[tenure.ok(UPSERT, {"input": push}, key=key) for _ in range(6)])
    payloads = [a["upsertCustomer"] for a in answers]
    assert all(p["userErrors"] == [] for p in payloads), payloads
    assert sum(p["created"] for p in payloads) == 1
    assert len({p["customer"]["id"] for p in payloads}) == 1
    assert await tenure.scalar("SELECT count(*) FROM customers") == 1


async def test_a_second_push_while_the_first_is_uncommitted(tenure: TenureHarness) -> None:
    from tenure.core.services.orders import OrderData, record_order

    cid = pk_of(await create_customer(tenure))
    data = OrderData(customer_id=cid, channel="web", external_id="SLOW-1", currency="USD", amount=900)
    written, release = asyncio.Event(), asyncio.Event()

    async def first() -> tuple[int, bool]:
        async with tenure.transaction() as ctx:
            order, created = await record_order(ctx, data)
            written.set()
            await release.wait()
            return order.id, created

    async def second() -> tuple[int, bool, bool]:
        await written.wait()
        async with tenure.transaction() as ctx:
            order, created = await record_order(ctx, data)
            return order.id, created

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await asyncio.sleep(0.3)  # the second is now waiting on the first's locks
    release.set()
    (first_id, first_created), (second_id, second_created) = await one, await two
    assert first_created and not second_created and first_id == second_id
    assert await tenure.scalar("SELECT count(*) FROM orders") == 1
    assert await tenure.scalar("SELECT order_count FROM customers WHERE id = :c", c=cid) == 1


async def test_a_second_upsert_while_the_first_is_uncommitted(tenure: TenureHarness) -> None:
    from tenure.core.services.customers import CustomerData, upsert_customer

    written, release = asyncio.Event(), asyncio.Event()

    async def first() -> tuple[int, bool]:
        async with tenure.transaction() as ctx:
            customer, created = await upsert_customer(ctx, "pos", "SLOW", CustomerData(name="Sam"))
            written.set()
            await release.wait()
            return customer.id, created

    async def second() -> tuple[int, bool]:
        await written.wait()
        async with tenure.transaction() as ctx:
            customer, created = await upsert_customer(ctx, "pos", "SLOW", CustomerData(name="Sam", tags=["late"]))
            return customer.id, created

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await asyncio.sleep(0.3)
    release.set()
    (first_id, first_created), (second_id, second_created) = await one, await two
    assert first_created and not second_created and first_id == second_id
    assert await tenure.scalar("SELECT count(*) FROM customers") == 1
    assert await tenure.scalar("SELECT tag FROM customer_tags") == "late"


async def test_the_same_external_id_for_another_customer_while_the_first_is_uncommitted(
        tenure: TenureHarness) -> None:
    """Two customers' orders under one channel and external id at once: the first is recorded,
    the second is refused with a userError and its transaction goes on (its other writes land)."""
    from tenure.core.errors import Conflict
    from tenure.core.services.orders import OrderData, record_order

    ada, bob = pk_of(await create_customer(tenure)), pk_of(await create_customer(tenure, name="Bob"))
    written, release = asyncio.Event(), asyncio.Event()

    async def first() -> int:
        async with tenure.transaction() as ctx:
            order, _ = await record_order(ctx, OrderData(customer_id=ada, channel="web", external_id="TWIN-1",
                                                         currency="USD", amount=500))
            written.set()
            await release.wait()
            return order.id

    async def second() -> str:
        await written.wait()
        async with tenure.transaction() as ctx:
            try:
                await record_order(ctx, OrderData(customer_id=bob, channel="web", external_id="TWIN-1",
                                                  currency="USD", amount=500))
            except Conflict as error:
                refused = error.field
            await record_order(ctx, OrderData(customer_id=bob, channel="web", external_id="TWIN-2",
                                              currency="USD", amount=300))
            return refused

    async def let_go() -> None:
        await written.wait()
        await asyncio.sleep(0.3)  # the second is waiting on the first's insert (PostgreSQL) or lock
        release.set()

    order_id, refused, _ = await asyncio.gather(first(), second(), let_go())
    assert refused == "externalId"
    assert await tenure.scalar("SELECT customer_id FROM orders WHERE external_id = 'TWIN-1'") == ada
    assert await tenure.scalar("SELECT count(*) FROM orders") == 2
    assert await tenure.scalar("SELECT order_count FROM customers WHERE id = :c", c=bob) == 1
    assert await tenure.scalar("SELECT order_count FROM customers WHERE id = :c", c=ada) == 1
    assert order_id


async def test_a_task_opens_for_a_customer_whose_order_is_being_recorded(postgres_url: str) -> None:
    """A churn job opens a follow-up task for a customer while an order of theirs is being
    recorded: the task only refers to the customer, so it does not wait for the order (it
    did when the order locked the row FOR UPDATE, and a job then holding the customer's churn
    rows deadlocked with the order waiting for them). PostgreSQL only: SQLite runs one
    writing transaction at a time."""
    from tenure.core.services.orders import OrderData, record_order
    from tenure.core.services.tasks import NewTask, open_tasks

    try:
        async with TenureHarness.start(postgres_url, plugins=[]) as tenure:
            cid = pk_of(await create_customer(tenure))
            written, release = asyncio.Event(), asyncio.Event()

            async def order() -> bool:
                async with tenure.transaction() as ctx:
                    _, created = await record_order(ctx, OrderData(
                        customer_id=cid, channel="web", external_id="HELD-1", currency="USD", amount=900))
                    written.set()
                    await release.wait()
                    return created

            async def task() -> int:
                await written.wait()
                async with tenure.transaction() as ctx:
                    opened = await open_tasks(ctx, [NewTask("Churn risk", cid, f"{cid}:1")], source="churn")
                    return opened[f"{cid}:1"]

            recording = asyncio.create_task(order())
            try:
                task_id = await asyncio.wait_for(task(), timeout=5)  # while the order holds its locks
            finally:
                release.set()
            assert await recording
            assert await tenure.scalar("SELECT customer_id FROM tasks WHERE id = :t", t=task_id) == cid
            assert await tenure.scalar("SELECT order_count FROM customers WHERE id = :c", c=cid) == 1
    finally:
        await truncate_all(postgres_url)
