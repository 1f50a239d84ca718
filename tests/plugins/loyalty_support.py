"""Shared steps of the loyalty, tiers and member tests: create customers, record orders,
read points, all through the GraphQL API as a client would."""

from __future__ import annotations

from typing import Any

from tenure.testing import TenureHarness, pk_of

#: Points at once (no return window) unless a test says otherwise.
NOW = {"TENURE_LOYALTY_RETURN_WINDOW_DAYS": "0"}

POINTS = """query($id: ID!) { customer(id: $id) { points { balance pending lifetimeEarned qualifying shortfall
  expiringSoon { points at } } } }"""


async def new_customer(tenure: TenureHarness, name: str = "Ada", **fields: Any) -> int:
    data = await tenure.ok(
        "mutation($i: CustomerInput!) { createCustomer(input: $i) { customer { id } userErrors { message } } }",
        {"i": {"name": name, **fields}})
    return pk_of(data["createCustomer"]["customer"]["id"])


async def record_order(tenure: TenureHarness, customer_id: int, external_id: str, amount: int,
                       lines: list[dict[str, Any]] | None = None, **extra: Any) -> int:
    data = await tenure.ok(
        """mutation($i: RecordOrderInput!) { recordOrder(input: $i) { order { id } userErrors { field message } } }""",
        {"i": {"customerId": str(customer_id), "channel": "web", "externalId": external_id, "currency": "USD",
               "amount": amount, "lines": lines or [], **extra}})
    assert data["recordOrder"]["userErrors"] == [], data
    return pk_of(data["recordOrder"]["order"]["id"])


async def refund(tenure: TenureHarness, order_id: int, amount: int | None = None) -> None:
    data = await tenure.ok(
        "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { userErrors { field message } } }",
        {"i": {"orderId": str(order_id), "amount": amount}})
    assert data["refundOrder"]["userErrors"] == [], data


async def cancel(tenure: TenureHarness, order_id: int) -> None:
    data = await tenure.ok("mutation($i: CancelOrderInput!) { cancelOrder(input: $i) { userErrors { message } } }",
                           {"i": {"orderId": str(order_id)}})
    assert data["cancelOrder"]["userErrors"] == [], data


async def points(tenure: TenureHarness, customer_id: int) -> dict[str, Any]:
    data = await tenure.ok(POINTS, {"id": str(customer_id)})
    return data["customer"]["points"]  # type: ignore[no-any-return]


async def adjust(tenure: TenureHarness, customer_id: int, amount: int, reason: str = "goodwill",
                 **extra: Any) -> dict[str, Any]:
    data = await tenure.ok(
        """mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { balance entry { id points }
             userErrors { field message code } } }""",
        {"i": {"customerId": str(customer_id), "points": amount, "reason": reason, **extra}})
    return data["adjustPoints"]  # type: ignore[no-any-return]


REDEEM = """mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { balance
  entry { id points draws { lotId points } } userErrors { field message code } } }"""


async def redeem(tenure: TenureHarness, customer_id: int, amount: int, key: str | None = None,
                 *, api_key: str | None = None) -> dict[str, Any]:
    answer = await tenure.gql(REDEEM, {"i": {"customerId": str(customer_id), "points": amount, "reason": "coupon",
                                             "idempotencyKey": key}},
                              key=api_key or await tenure.key("admin"))
    assert not answer.get("errors"), answer
    return answer["data"]["redeemPoints"]  # type: ignore[no-any-return]


async def create_rule(tenure: TenureHarness, **rule: Any) -> dict[str, Any]:
    data = await tenure.ok(
        """mutation($i: EarnRuleInput!) { createEarnRule(input: $i) { rule { id name kind }
             userErrors { field message code } } }""", {"i": rule})
    return data["createEarnRule"]  # type: ignore[no-any-return]


async def create_reward(tenure: TenureHarness, **reward: Any) -> int:
    data = await tenure.ok(
        """mutation($i: RewardInput!) { createReward(input: $i) { reward { id } userErrors { field message } } }""",
        {"i": reward})
    assert data["createReward"]["userErrors"] == [], data
    return pk_of(data["createReward"]["reward"]["id"])


async def check_invariants(tenure: TenureHarness) -> list[str]:
    from tenure.core.checks import run_invariants

    return await run_invariants(tenure.db, tenure.plugins)


async def run_job(tenure: TenureHarness, job: str) -> None:
    """Queue a scheduled job as the scheduler would, and run everything due."""
    async with tenure.transaction() as ctx:
        await ctx.enqueue(job, {})
    await tenure.run_jobs()


LEDGER = """query($id: ID!, $first: Int!, $after: String) { customer(id: $id) {
  pointsLedger(first: $first, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id kind points pending remaining shortfall reason source orderId draws { lotId points } } } } } }"""


async def ledger(tenure: TenureHarness, customer_id: int, first: int = 50) -> list[dict[str, Any]]:
    data = await tenure.ok(LEDGER, {"id": str(customer_id), "first": first})
    return [e["node"] for e in data["customer"]["pointsLedger"]["edges"]]


async def merge(tenure: TenureHarness, survivor: int, merged: int) -> None:
    data = await tenure.ok(
        "mutation($i: MergeCustomersInput!) { mergeCustomers(input: $i) { userErrors { field message } } }",
        {"i": {"survivorId": str(survivor), "mergedId": str(merged)}})
    assert data["mergeCustomers"]["userErrors"] == [], data
