"""What the portal needs from the API: `serverInfo` names the plugins that are on without
introspection, and a customer's orders, interactions and tasks page on past the first page
with `after`, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tenure.core import __version__
from tenure.core.services.customers import CustomerData, create_customer
from tenure.core.services.orders import OrderData, record_order
from tenure.testing import TenureHarness

PAGES = """query($id: ID!, $after: String) { customer(id: $id) {
  orders(first: 2, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
                                    nodes { externalId } } } }"""


async def test_server_info_names_the_plugins_that_are_on_to_every_signed_in_caller(make_tenure: Any) -> None:
    async with make_tenure(plugins=["loyalty", "nps"], currency="KWD") as tenure:
        async with tenure.transaction() as ctx:
            ada = await create_customer(ctx, CustomerData(name="Ada", emails=["ada@example.com"]))
        query = "{ serverInfo { version currency plugins { name version summary } } }"
        for key in (await tenure.key("staff"), await tenure.key("integration"), tenure.member_token(ada.id)):
            info = (await tenure.ok(query, key=key))["serverInfo"]
            assert info["version"] == __version__ and info["currency"] == "KWD"
            assert [p["name"] for p in info["plugins"]] == ["core", "loyalty", "nps"]
            assert all(p["summary"] and p["version"] for p in info["plugins"])
        refused = await tenure.gql(query)
        assert refused["errors"] and refused.get("data") is None


async def _customer_with_orders(tenure: TenureHarness, count: int) -> int:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    async with tenure.transaction() as ctx:
        ada = await create_customer(ctx, CustomerData(name="Ada", emails=["ada@example.com"]))
        for n in range(count):
            # Two orders share each moment: the id breaks the tie, so no order is skipped or repeated.
            await record_order(ctx, OrderData(customer_id=ada.id, channel="shop", external_id=f"A-{n}",
                                              currency="USD", amount=1000 + n,
                                              placed_at=start + timedelta(days=n // 2)))
        return int(ada.id)


async def test_a_customers_orders_page_on_with_after_to_the_last_one(tenure: TenureHarness) -> None:
    customer = await _customer_with_orders(tenure, 5)
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = (await tenure.ok(PAGES, {"id": str(customer), "after": after}))["customer"]["orders"]
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [o["externalId"] for o in page["nodes"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert sorted(seen) == [f"A-{n}" for n in range(5)] and len(set(seen)) == 5
    assert seen[0] == "A-4" and seen[-1] in {"A-0", "A-1"}  # newest first


async def test_interactions_and_tasks_take_after_too(tenure: TenureHarness) -> None:
    customer = await _customer_with_orders(tenure, 0)
    for n in range(3):
        await tenure.ok("mutation($c: ID!, $t: String!) { createTask(input: {title: $t, customerId: $c}) "
                        "{ userErrors { message } } }", {"c": str(customer), "t": f"Call {n}"})
        await tenure.ok("mutation($c: ID!, $s: String!) { logInteraction(input: {customerId: $c, kind: \"call\", "
                        "channel: \"phone\", summary: $s}) { userErrors { message } } }",
                        {"c": str(customer), "s": f"Talk {n}"})
    query = """query($id: ID!, $a: String, $b: String) { customer(id: $id) {
      tasks(first: 2, after: $a) { pageInfo { endCursor } nodes { title } }
      interactions(first: 2, after: $b) { pageInfo { endCursor } nodes { summary } } } }"""
    first = (await tenure.ok(query, {"id": str(customer)}))["customer"]
    rest = (await tenure.ok(query, {"id": str(customer), "a": first["tasks"]["pageInfo"]["endCursor"],
                                    "b": first["interactions"]["pageInfo"]["endCursor"]}))["customer"]
    titles = [t["title"] for t in first["tasks"]["nodes"] + rest["tasks"]["nodes"]]
    summaries = [i["summary"] for i in first["interactions"]["nodes"] + rest["interactions"]["nodes"]]
    assert sorted(titles) == ["Call 0", "Call 1", "Call 2"]
    assert sorted(summaries) == ["Talk 0", "Talk 1", "Talk 2"]
    bad = await tenure.gql(query, {"id": str(customer), "a": "not-a-cursor"}, key=await tenure.key())
    assert bad["errors"] and "cursor" in bad["errors"][0]["message"].lower()
