"""Relay's conventions: global ids and ``node(id:)`` behind each type's own rule, ids of the
wrong type refused, pages in both directions, links that cost no statement per row, and
business errors as enum codes with paths."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from tenure.core.services.customers import CustomerData, create_customer
from tenure.core.services.orders import OrderData, record_order
from tenure.schema.types.errors import ErrorCode
from tenure.testing import TenureHarness, global_id, pk_of
from tests.core.helpers import create_customer as create_customer_over_api
from tests.core.helpers import record_order as record_order_over_api
from tests.core.helpers import row_counts

ROOT = Path(__file__).resolve().parents[2]

NODE = "query($id: ID!) { node(id: $id) { id __typename ... on Customer { name } ... on Order { externalId } } }"


async def test_every_id_is_global_and_node_reads_it_back(tenure: TenureHarness) -> None:
    customer = await create_customer_over_api(tenure, "Ada")
    assert pk_of(customer) > 0 and customer == global_id("Customer", pk_of(customer))
    order = (await record_order_over_api(tenure, customer, "W-1", 1000))["order"]["id"]
    assert order == global_id("Order", pk_of(order))

    found = (await tenure.ok(NODE, {"id": customer}))["node"]
    assert found == {"id": customer, "__typename": "Customer", "name": "Ada"}
    found = (await tenure.ok(NODE, {"id": order}))["node"]
    assert found == {"id": order, "__typename": "Order", "externalId": "W-1"}

    many = await tenure.ok("query($ids: [ID!]!) { nodes(ids: $ids) { id __typename } }",
                           {"ids": [order, global_id("Customer", 999_999), customer]})
    assert many["nodes"] == [{"id": order, "__typename": "Order"}, None, {"id": customer, "__typename": "Customer"}]

    # The same object answers to its global id and, for older clients, its plain id.
    for given in (customer, str(pk_of(customer))):
        assert (await tenure.ok("query($id: ID!) { customer(id: $id) { id } }", {"id": given}))["customer"] == {
            "id": customer}


async def test_node_keeps_each_types_rule(make_tenure: Any) -> None:
    async with make_tenure(plugins=["loyalty"]) as tenure:
        ada, bob = await create_customer_over_api(tenure, "Ada"), await create_customer_over_api(tenure, "Bob")
        for who in (ada, bob):
            await tenure.ok('mutation($c: ID!) { adjustPoints(input: {customerId: $c, points: 50, reason: "gift"}) '
                            "{ userErrors { code } } }", {"c": who})
        ledger = "query($id: ID!) { customer(id: $id) { pointsLedger { nodes { id } } } }"
        ada_entry = (await tenure.ok(ledger, {"id": ada}))["customer"]["pointsLedger"]["nodes"][0]["id"]
        bob_entry = (await tenure.ok(ledger, {"id": bob}))["customer"]["pointsLedger"]["nodes"][0]["id"]
        entry = "query($id: ID!) { node(id: $id) { id ... on PointsEntry { points } } }"

        member = await tenure.client_for("member", customer_id=ada)
        assert (await member.ok(entry, {"id": ada_entry}))["node"] == {"id": ada_entry, "points": 50}
        # Another member's entry is as if it did not exist.
        assert (await member.ok(entry, {"id": bob_entry}))["node"] is None
        # A customer record is for the back office, even the member's own.
        refused = await member.gql(NODE, {"id": ada})
        assert refused["data"]["node"] is None
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        staff = await tenure.client_for("staff")
        assert (await staff.ok(entry, {"id": bob_entry}))["node"] == {"id": bob_entry, "points": 50}
        # The event log stays for admins and integrations.
        event = (await tenure.ok("{ events(first: 1) { nodes { id } } }"))["events"]["nodes"][0]["id"]
        refused = await staff.gql("query($id: ID!) { node(id: $id) { id } }", {"id": event})
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_id_of_another_type_is_refused_and_nothing_is_written(tenure: TenureHarness) -> None:
    customer = await create_customer_over_api(tenure, "Ada")
    order = (await record_order_over_api(tenure, customer, "W-1", 1000))["order"]["id"]
    before = await row_counts(tenure)
    payload = await record_order_over_api(tenure, order, "W-2", 500)
    assert payload["order"] is None
    assert payload["userErrors"] == [{"field": ["input", "customerId"], "code": "INVALID_ID",
                                      "message": f"{order!r} is an id of type Order, not Customer"}]
    assert await row_counts(tenure) == before
    answer = await tenure.gql("query($id: ID!) { order(id: $id) { id } }", {"id": customer}, key=await tenure.key())
    assert answer["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


CUSTOMERS = """query($first: Int, $after: String, $last: Int, $before: String) {
  customers(first: $first, after: $after, last: $last, before: $before, orderBy: {field: NAME, direction: ASC}) {
    nodes { name } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""

ORDERS = """query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  customer(id: $id) { orders(first: $first, after: $after, last: $last, before: $before) {
    totalCount nodes { externalId } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }"""


async def _walk(tenure: TenureHarness, query: str, path: list[str], variables: dict[str, Any],
                backwards: bool) -> list[str]:
    """Every item of a list, page by page of 40, forwards with first/after or backwards with
    last/before; the names of the items in the list's own order."""
    seen: list[str] = []
    cursor = None
    while True:
        paging = {"last": 40, "before": cursor} if backwards else {"first": 40, "after": cursor}
        page: Any = await tenure.ok(query, {**variables, **paging})
        for key in path:
            page = page[key]
        items = [next(iter(node.values())) for node in page["nodes"]]
        assert len(items) == 40 or not (page["pageInfo"]["hasPreviousPage"] if backwards
                                        else page["pageInfo"]["hasNextPage"])
        seen = items + seen if backwards else seen + items
        info = page["pageInfo"]
        if backwards:
            assert info["hasNextPage"] == (cursor is not None)
            if not info["hasPreviousPage"]:
                return seen
            cursor = info["startCursor"]
        else:
            assert info["hasPreviousPage"] == (cursor is not None)
            if not info["hasNextPage"]:
                return seen
            cursor = info["endCursor"]


async def test_lists_page_forwards_and_backwards_past_a_hundred(tenure: TenureHarness) -> None:
    async with tenure.transaction() as ctx:
        customers = [await create_customer(ctx, CustomerData(name=f"Customer {n:03d}")) for n in range(130)]
        for n in range(120):
            await record_order(ctx, OrderData(customer_id=customers[0].id, channel="web", external_id=f"W-{n:03d}",
                                              currency="USD", amount=100))
    names = [f"Customer {n:03d}" for n in range(130)]
    assert await _walk(tenure, CUSTOMERS, ["customers"], {}, backwards=False) == names
    assert await _walk(tenure, CUSTOMERS, ["customers"], {}, backwards=True) == names

    newest_first = [f"W-{n:03d}" for n in reversed(range(120))]
    owner = {"id": global_id("Customer", customers[0].id)}
    assert await _walk(tenure, ORDERS, ["customer", "orders"], owner, backwards=False) == newest_first
    assert await _walk(tenure, ORDERS, ["customer", "orders"], owner, backwards=True) == newest_first

    # `before` bounds a forward page too: the items between two cursors.
    first = (await tenure.ok(CUSTOMERS, {"first": 10}))["customers"]["pageInfo"]["endCursor"]
    tenth_from_end = (await tenure.ok(CUSTOMERS, {"last": 10}))["customers"]["pageInfo"]["startCursor"]
    middle = (await tenure.ok(CUSTOMERS, {"first": 100, "after": first, "before": tenth_from_end}))
    assert [n["name"] for n in middle["customers"]["nodes"]] == names[10:110]


EVENTS = """query($n: Int!) { events(first: $n) { nodes { id customer { id name } } } }"""


async def test_a_link_costs_the_same_statements_for_any_page_size(tenure: TenureHarness) -> None:
    async with tenure.transaction() as ctx:
        for n in range(100):
            await create_customer(ctx, CustomerData(name=f"Customer {n}"))
    key = await tenure.key()
    counts = {}
    for size in (10, 100):
        with tenure.count_statements() as counter:
            data = await tenure.ok(EVENTS, {"n": size}, key=key)
        nodes = data["events"]["nodes"]
        assert len(nodes) == size and all(n["customer"]["name"].startswith("Customer ") for n in nodes)
        counts[size] = counter.count
    assert counts[10] == counts[100], counts


async def test_user_errors_carry_an_enum_code_and_a_path(tenure: TenureHarness) -> None:
    customer = await create_customer_over_api(tenure, "Ada")
    lines = [{"sku": "A", "name": "A", "quantity": 1, "unitPrice": 100},
             {"sku": "B", "name": "B", "quantity": 0, "unitPrice": 100}]
    payload = await record_order_over_api(tenure, customer, "W-1", 100, lines=lines)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_QUANTITY", ["input", "lines", "1", "quantity"])]


def _raised_codes() -> set[str]:
    """Every code a service of the core or a built-in plugin gives a ``UserError``."""
    codes = {"invalid", "not_found", "conflict"}
    for folder in ("core", "plugins", "schema"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for call in ast.walk(ast.parse(path.read_text())):
                if not isinstance(call, ast.Call):
                    continue
                name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
                if name not in {"UserError", "DomainUserError", "DomainError", "Refusal"}:
                    continue
                given = call.args[2] if len(call.args) >= 3 else None
                given = next((k.value for k in call.keywords if k.arg == "code"), given)
                if isinstance(given, ast.Constant) and isinstance(given.value, str):
                    codes.add(given.value)
    return codes


def test_every_code_the_services_raise_is_an_enum_value() -> None:
    assert _raised_codes() - {code.value for code in ErrorCode} == set()
