"""A page of customers with their related rows costs the same few statements at any size."""

from __future__ import annotations

from tenure.core.services.customers import CustomerData, create_customer
from tenure.core.services.interactions import log_interaction
from tenure.core.services.orders import LineData, OrderData, record_order
from tenure.core.services.tasks import open_task
from tenure.testing import TenureHarness, pk_of

PAGE = """query($n: Int!) { customers(first: $n) { totalCount edges { cursor node {
  id name emails phones tags identities { kind value } owner { id email }
  orders(first: 3) { totalCount edges { node { externalId lines { sku } amount { amount } customer { id } } } }
  interactions(first: 3) { totalCount nodes { kind } }
  tasks(first: 3) { totalCount nodes { title assignee { email } } }
  openTasks: tasks(first: 3, status: OPEN) { totalCount }
} } } }"""


async def _load(tenure: TenureHarness, count: int) -> None:
    key = await tenure.key("staff", staff_email="owner@example.com")
    staff_id = pk_of((await tenure.ok("{ viewer { staffUser { id } } }", key=key))["viewer"]["staffUser"]["id"])
    async with tenure.transaction() as ctx:
        for n in range(count):
            customer = await create_customer(
                ctx,
                CustomerData(
                    name=f"Customer {n}",
                    emails=[f"c{n}@example.com"],
                    phones=[f"+1555000{n:04d}"],
                    tags=["a", "b"],
                    identities=[("pos", f"P{n}")],
                    owner_id=staff_id if n % 2 else None,
                ),
            )
            for o in range(2):
                await record_order(
                    ctx,
                    OrderData(
                        customer_id=customer.id,
                        channel="web",
                        external_id=f"{n}-{o}",
                        currency="USD",
                        lines=[LineData("sku", 1, 100 + o)],
                    ),
                )
            await log_interaction(ctx, customer.id, "visit", "store")
            await open_task(ctx, title=f"Call {n}", customer_id=customer.id)


async def test_statement_count_does_not_grow_with_the_page(tenure: TenureHarness) -> None:
    await _load(tenure, 100)
    key = await tenure.key()
    counts = {}
    for size in (10, 100):
        with tenure.count_statements() as counter:
            data = await tenure.ok(PAGE, {"n": size}, key=key)
        nodes = [e["node"] for e in data["customers"]["edges"]]
        assert len(nodes) == size
        assert all(
            len(n["orders"]["edges"]) == 2 and n["orders"]["edges"][0]["node"]["lines"] == [{"sku": "sku"}]
            for n in nodes
        )
        assert all(n["tasks"]["totalCount"] == 1 and n["openTasks"]["totalCount"] == 1 for n in nodes)
        owned = [n for n in nodes if n["owner"] is not None]
        assert owned and all(n["owner"]["email"] == "owner@example.com" for n in owned)
        assert all(
            n["tasks"]["nodes"][0]["assignee"] == ({"email": n["owner"]["email"]} if n["owner"] else None)
            for n in nodes
        )
        counts[size] = counter.count
    assert counts[10] == counts[100], counts
    # About one statement per relation asked for (and the caller's key), whatever the page size.
    assert counts[100] <= 20, counts
