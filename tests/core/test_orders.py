"""Orders (once per channel, cancel, refunds, idempotency keys), interactions and the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import ERRORS, LOG_INTERACTION, RECORD_ORDER, create_customer, record_order, row_counts

FIGURES = "query($id: ID!) { customer(id: $id) { orderCount totalSpent { amount currency } firstOrderAt lastOrderAt } }"
CANCEL = (
    f"mutation($id: ID!) {{ cancelOrder(input: {{orderId: $id}}) {{ order {{ status net {{ amount }} }} {ERRORS} }} }}"
)
REFUND = f"""mutation($input: RefundOrderInput!) {{
  refundOrder(input: $input) {{ order {{ status refunded {{ amount }} net {{ amount }} }} {ERRORS} }}
}}"""


async def test_an_order_is_recorded_once_per_channel(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    first = await record_order(tenure, cid, "A-1", 1250)
    assert first["created"] is True and first["order"]["amount"] == {"amount": 1250, "currency": "USD"}
    await tenure.key()
    before = await row_counts(tenure)
    again = await record_order(tenure, cid, "A-1", 1250)
    assert again["created"] is False and again["order"]["id"] == first["order"]["id"]
    assert await row_counts(tenure) == before
    other_channel = await tenure.ok(
        RECORD_ORDER,
        {"input": {"customerId": cid, "channel": "pos", "externalId": "A-1", "currency": "USD", "amount": 300}},
    )
    assert other_channel["recordOrder"]["created"] is True
    figures = (await tenure.ok(FIGURES, {"id": cid}))["customer"]
    assert figures["orderCount"] == 2 and figures["totalSpent"] == {"amount": 1550, "currency": "USD"}


async def test_same_external_id_with_another_amount_is_refused(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    await record_order(tenure, cid, "A-1", 1250)
    before = await row_counts(tenure)
    clash = await record_order(tenure, cid, "A-1", 999)
    assert clash["order"] is None and clash["created"] is False
    assert clash["userErrors"][0]["field"] == ["input", "externalId"] and clash["userErrors"][0]["code"] == "CONFLICT"
    assert await row_counts(tenure) == before
    figures = (await tenure.ok(FIGURES, {"id": cid}))["customer"]
    assert figures["orderCount"] == 1 and figures["totalSpent"]["amount"] == 1250


async def test_lines_make_the_amount(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    data = await tenure.ok(
        'mutation($c: ID!) { recordOrder(input: {customerId: $c, channel: "web", externalId: "L1", currency: "usd", '
        'lines: [{sku: "tea", quantity: 3, unitPrice: 450, name: "Tea"}, {sku: "cup", quantity: 1, unitPrice: 1000}]})'
        " { order { id amount { amount currency } } } }",
        {"c": cid},
    )
    order = data["recordOrder"]["order"]
    assert order["amount"] == {"amount": 2350, "currency": "USD"}
    lines = await tenure.ok("query($id: ID!) { order(id: $id) { lines { sku quantity amount } } }", {"id": order["id"]})
    assert lines["order"]["lines"] == [
        {"sku": "tea", "quantity": 3, "amount": 1350},
        {"sku": "cup", "quantity": 1, "amount": 1000},
    ]


async def test_cancel_takes_the_order_out_of_the_figures(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    kept = await record_order(tenure, cid, "K", 500, placedAt="2025-01-01T10:00:00Z")
    cancelled = await record_order(tenure, cid, "C", 2000, placedAt="2025-03-01T10:00:00Z")
    data = await tenure.ok(CANCEL, {"id": cancelled["order"]["id"]})
    assert data["cancelOrder"]["order"] == {"status": "CANCELLED", "net": {"amount": 0}}
    figures = (await tenure.ok(FIGURES, {"id": cid}))["customer"]
    assert figures["orderCount"] == 1 and figures["totalSpent"]["amount"] == 500
    assert figures["lastOrderAt"].startswith("2025-01-01")
    again = await tenure.ok(CANCEL, {"id": cancelled["order"]["id"]})
    assert again["cancelOrder"]["order"]["status"] == "CANCELLED"
    refund = await tenure.ok(REFUND, {"input": {"orderId": cancelled["order"]["id"]}})
    assert refund["refundOrder"]["userErrors"][0]["field"] == ["input", "orderId"]
    assert kept["order"]["status"] == "PAID"
    events = await tenure.ok('{ events(first: 10, types: ["order.cancelled"]) { totalCount } }')
    assert events["events"]["totalCount"] == 1


async def test_refund_whole_and_partial(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    order = (await record_order(tenure, cid, "R", 10_000))["order"]
    part = await tenure.ok(REFUND, {"input": {"orderId": order["id"], "amount": 2500}})
    assert part["refundOrder"]["order"] == {
        "status": "PARTIALLY_REFUNDED",
        "refunded": {"amount": 2500},
        "net": {"amount": 7500},
    }
    assert (await tenure.ok(FIGURES, {"id": cid}))["customer"]["totalSpent"]["amount"] == 7500
    too_much = await tenure.ok(REFUND, {"input": {"orderId": order["id"], "amount": 7501}})
    assert too_much["refundOrder"]["userErrors"] == [
        {"field": ["input", "amount"], "message": "at most 7500 is left to refund", "code": "TOO_MUCH"}
    ]
    rest = await tenure.ok(REFUND, {"input": {"orderId": order["id"]}})
    assert rest["refundOrder"]["order"] == {"status": "REFUNDED", "refunded": {"amount": 10_000}, "net": {"amount": 0}}
    assert (await tenure.ok(FIGURES, {"id": cid}))["customer"]["totalSpent"]["amount"] == 0
    done = await tenure.ok(REFUND, {"input": {"orderId": order["id"]}})
    assert done["refundOrder"]["userErrors"][0]["code"] == "ALREADY_REFUNDED"
    cancel = await tenure.ok(CANCEL, {"id": order["id"]})
    assert cancel["cancelOrder"]["userErrors"][0]["field"] == ["input", "orderId"]


async def test_refund_with_an_idempotency_key_happens_once(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    order = (await record_order(tenure, cid, "I", 5000))["order"]
    request = {"orderId": order["id"], "amount": 1000, "idempotencyKey": "refund-77"}
    first = await tenure.ok(REFUND, {"input": request})
    second = await tenure.ok(REFUND, {"input": request})
    assert first["refundOrder"]["order"]["refunded"] == {"amount": 1000}
    assert second["refundOrder"] == first["refundOrder"]
    assert (await tenure.ok(FIGURES, {"id": cid}))["customer"]["totalSpent"]["amount"] == 4000
    events = await tenure.ok('{ events(first: 10, types: ["order.refunded"]) { totalCount } }')
    assert events["events"]["totalCount"] == 1
    reused = await tenure.ok(REFUND, {"input": {**request, "amount": 2000}})
    assert reused["refundOrder"]["userErrors"][0]["field"] == ["input", "idempotencyKey"]
    assert (await tenure.ok(FIGURES, {"id": cid}))["customer"]["totalSpent"]["amount"] == 4000


async def test_interactions_once_per_external_id_and_last_interaction(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    given = {
        "customerId": cid,
        "kind": "Visit",
        "channel": "store",
        "occurredAt": "2026-01-05T12:00:00Z",
        "summary": "Came by",
        "payload": {"store": "north"},
        "externalId": "v-1",
    }
    first = (await tenure.ok(LOG_INTERACTION, {"input": given}))["logInteraction"]
    again = (await tenure.ok(LOG_INTERACTION, {"input": given}))["logInteraction"]
    assert first["created"] is True and again["created"] is False
    assert again["interaction"]["id"] == first["interaction"]["id"] and first["interaction"]["kind"] == "visit"
    data = await tenure.ok(
        "query($id: ID!) { customer(id: $id) { lastInteractionAt interactions { totalCount "
        "nodes { payload summary } } } }",
        {"id": cid},
    )
    customer = data["customer"]
    assert customer["lastInteractionAt"].startswith("2026-01-05T12:00:00")
    assert customer["interactions"]["totalCount"] == 1
    assert customer["interactions"]["nodes"] == [{"payload": {"store": "north"}, "summary": "Came by"}]


async def test_timeline_mixes_orders_interactions_and_plugin_events_newest_first(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    base = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def at(days: int) -> str:
        return (base + timedelta(days=days)).isoformat()

    await record_order(tenure, cid, "T1", 100, placedAt=at(1))
    await tenure.ok(
        LOG_INTERACTION, {"input": {"customerId": cid, "kind": "call", "channel": "phone", "occurredAt": at(3)}}
    )
    await record_order(tenure, cid, "T2", 200, placedAt=at(5))
    await tenure.ok(
        LOG_INTERACTION, {"input": {"customerId": cid, "kind": "visit", "channel": "store", "occurredAt": at(2)}}
    )
    async with tenure.transaction() as ctx:
        await ctx.publish(
            "loyalty.points_earned",
            source="loyalty",
            customer_id=pk_of(cid),
            summary="+20 points",
            timeline=True,
            occurred_at=base + timedelta(days=4),
        )
        await ctx.publish("internal.noise", source="loyalty", customer_id=pk_of(cid), summary="not on the timeline")
    query = (
        "query($id: ID!, $after: String) { customer(id: $id) { timeline(first: 3, after: $after) { totalCount "
        "pageInfo { hasNextPage endCursor } edges { node { kind summary at order { externalId } "
        "interaction { kind } event { type } } } } } }"
    )
    page1 = (await tenure.ok(query, {"id": cid}))["customer"]["timeline"]
    assert page1["totalCount"] == 5 and page1["pageInfo"]["hasNextPage"] is True
    page2 = (await tenure.ok(query, {"id": cid, "after": page1["pageInfo"]["endCursor"]}))["customer"]["timeline"]
    assert page2["pageInfo"]["hasNextPage"] is False
    nodes = [e["node"] for e in page1["edges"] + page2["edges"]]
    assert [n["summary"] for n in nodes] == ["Order T2 (paid)", "+20 points", "call", "visit", "Order T1 (paid)"]
    assert [n["at"][:10] for n in nodes] == ["2026-01-06", "2026-01-05", "2026-01-04", "2026-01-03", "2026-01-02"]
    assert nodes[0]["order"] == {"externalId": "T2"} and nodes[1]["event"] == {"type": "loyalty.points_earned"}
    assert nodes[2]["interaction"] == {"kind": "call"}


async def test_amounts_beyond_32_bits(tenure: TenureHarness) -> None:
    # 30 million in a two-decimal currency: over GraphQL's 32-bit Int, so amounts are Long.
    cid = await create_customer(tenure)
    big = await record_order(tenure, cid, "BIG", 3_000_000_000)
    assert big["order"]["amount"] == {"amount": 3_000_000_000, "currency": "USD"}
    refund = await tenure.ok(REFUND, {"input": {"orderId": big["order"]["id"], "amount": 2_500_000_000}})
    assert refund["refundOrder"]["order"]["net"] == {"amount": 500_000_000}
    assert (await tenure.ok(FIGURES, {"id": cid}))["customer"]["totalSpent"]["amount"] == 500_000_000
    for wrong in (2**53, 12.5, "100"):
        answer = await tenure.gql(RECORD_ORDER, {"input": {"customerId": cid, "channel": "web", "externalId": "W",
                                                           "currency": "USD", "amount": wrong}}, key=await tenure.key())
        assert answer["data"] is None and "Long" in answer["errors"][0]["message"], answer
