"""Exactly-once effects: a generated sequence of requests, each sent one to three times,
some of the repeats at the same moment, leaves exactly one effect per request, and every
repeat gets the first answer. The same key with other parameters is refused."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from tenure.testing import TenureHarness, pk_of

UPSERT = """mutation($kind: String!, $value: String!, $name: String!) {
  upsertCustomer(input: {identity: {kind: $kind, value: $value}, customer: {name: $name}}) {
    customer { id } userErrors { field message code } } }"""
RECORD = """mutation($input: RecordOrderInput!) { recordOrder(input: $input) {
  order { id } userErrors { field message code } } }"""
REFUND = """mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
  order { id } userErrors { field message code } } }"""
VISIT = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  interaction { id } userErrors { field message code } } }"""
ADJUST = """mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) {
  entry { id } userErrors { field message code } } }"""
REDEEM = """mutation($input: RedeemPointsInput!) { redeemPoints(input: $input) {
  entry { id } userErrors { field message code } } }"""


@dataclass
class Plan:
    """What the requests should leave behind."""

    identities: dict[str, str] = field(default_factory=dict)  # identity value -> name
    orders: dict[str, tuple[int, int]] = field(default_factory=dict)  # external id -> (customer, amount)
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (external id, amount)
    redeems: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (customer, points)
    visits: dict[str, int] = field(default_factory=dict)  # external id -> customer


async def _send(tenure: TenureHarness, key: str, query: str, variables: dict[str, Any], times: int,
                together: bool) -> list[dict[str, Any]]:
    if together:
        return list(await asyncio.gather(*[tenure.gql(query, variables, key=key) for _ in range(times)]))
    return [await tenure.gql(query, variables, key=key) for _ in range(times)]


def _one_answer(answers: list[dict[str, Any]], field_name: str, node: str) -> str:
    """Every copy succeeded and named the same record."""
    ids = set()
    for answer in answers:
        assert not answer.get("errors"), answer
        payload = answer["data"][field_name]
        assert payload["userErrors"] == [], payload
        ids.add(payload[node]["id"])
    assert len(ids) == 1, f"{field_name} repeats answered {ids}"
    return ids.pop()


@pytest.mark.parametrize("seed", [1, 2])
async def test_repeated_requests_have_one_effect_each(checked_tenure: Any, seed: int) -> None:
    rng = random.Random(seed)
    async with checked_tenure(plugins=["loyalty"] if seed == 2 else []) as tenure:
        key, admin = await tenure.key("integration"), await tenure.key("admin")
        loyalty = tenure.plugins.is_enabled("loyalty")
        plan = Plan()
        customers: list[int] = []
        order_ids: dict[str, int] = {}
        for step in range(40):
            times, together = rng.choice([1, 2, 3]), rng.random() < 0.5
            kind = rng.choice(["upsert", "order", "order", "refund", "redeem", "visit"] if customers else ["upsert"])
            if kind == "upsert":
                value = f"U{rng.randint(1, 8)}"  # the same identity again updates, never duplicates
                plan.identities[value] = name = f"Name {step}"
                variables = {"kind": "pos", "value": value, "name": name}
                answers = await _send(tenure, key, UPSERT, variables, times, together)
                cid = pk_of(_one_answer(answers, "upsertCustomer", "customer"))
                if cid not in customers:
                    customers.append(cid)
                    if loyalty:
                        grant = {"customerId": str(cid), "points": 10_000, "reason": "start",
                                 "idempotencyKey": f"G{cid}"}
                        _one_answer(await _send(tenure, admin, ADJUST, {"input": grant}, 2, True), "adjustPoints",
                                    "entry")
            elif kind == "order":
                external, customer, amount = f"E{step}", rng.choice(customers), rng.randint(500, 5000)
                plan.orders[external] = (customer, amount)
                variables = {"input": {"customerId": str(customer), "channel": "shop", "externalId": external,
                                       "currency": "USD", "amount": amount}}
                order_ids[external] = pk_of(_one_answer(await _send(tenure, key, RECORD, variables, times, together),
                                                      "recordOrder", "order"))
            elif kind == "refund" and order_ids:
                external = rng.choice(sorted(order_ids))
                left = plan.orders[external][1] - sum(a for e, a in plan.refunds.values() if e == external)
                if left < 2:
                    continue
                amount = rng.randint(1, left // 2)
                plan.refunds[f"R{step}"] = (external, amount)
                variables = {"input": {"orderId": str(order_ids[external]), "amount": amount,
                                       "idempotencyKey": f"R{step}"}}
                _one_answer(await _send(tenure, key, REFUND, variables, times, together), "refundOrder", "order")
            elif kind == "visit":
                plan.visits[f"V{step}"] = customer = rng.choice(customers)
                variables = {"input": {"customerId": str(customer), "kind": "visit", "channel": "store",
                                       "externalId": f"V{step}"}}
                _one_answer(await _send(tenure, key, VISIT, variables, times, together), "logInteraction",
                            "interaction")
            elif kind == "redeem" and loyalty:
                customer, points = rng.choice(customers), rng.randint(1, 200)
                plan.redeems[f"P{step}"] = (customer, points)
                variables = {"input": {"customerId": str(customer), "points": points, "reason": "coffee",
                                       "idempotencyKey": f"P{step}"}}
                _one_answer(await _send(tenure, key, REDEEM, variables, times, together), "redeemPoints", "entry")

        assert await tenure.scalar("SELECT count(*) FROM customers") == len(plan.identities) == len(customers)
        assert await tenure.scalar("SELECT count(*) FROM customer_identities") == len(plan.identities)
        for value, name in plan.identities.items():
            found = await tenure.scalar("SELECT c.name FROM customers c JOIN customer_identities i "
                                        "ON i.customer_id = c.id WHERE i.value = :v", v=value)
            assert found == name
        assert await tenure.scalar("SELECT count(*) FROM orders") == len(plan.orders)
        for external, (customer, _amount) in plan.orders.items():
            refunded = sum(a for e, a in plan.refunds.values() if e == external)
            row = await tenure.scalar("SELECT customer_id * 1000000000 + refunded_amount FROM orders "
                                      "WHERE external_id = :e", e=external)
            assert row == customer * 1_000_000_000 + refunded, external
        visits = await tenure.scalar("SELECT count(*) FROM interactions WHERE channel = 'store'")
        assert visits == len(plan.visits)
        spent = sum(a for _, a in plan.orders.values()) - sum(a for _, a in plan.refunds.values())
        assert await tenure.scalar("SELECT sum(total_spent) FROM customers") == spent
        if loyalty:
            redeemed = await tenure.scalar("SELECT count(*) FROM loyalty_entries WHERE idempotency_key LIKE 'P%'")
            assert redeemed == len(plan.redeems)
            for cid in customers:
                balance = await tenure.scalar("SELECT balance FROM loyalty_accounts WHERE customer_id = :c", c=cid)
                ledger = await tenure.scalar("SELECT sum(points) FROM loyalty_entries WHERE customer_id = :c "
                                             "AND pending = :f", c=cid, f=False)
                assert balance == ledger
                assert balance == 10_000 - sum(p for c, p in plan.redeems.values() if c == cid) + await tenure.scalar(
                    "SELECT coalesce(sum(points), 0) FROM loyalty_entries WHERE customer_id = :c AND source = 'order' "
                    "AND pending = :f", c=cid, f=False)


async def test_the_same_key_with_other_parameters_is_refused(make_tenure: Any) -> None:
    async with make_tenure(plugins=["loyalty"]) as tenure:
        key = await tenure.key("integration")
        cid = (await tenure.ok(UPSERT, {"kind": "pos", "value": "A", "name": "Ann"}, key=key))["upsertCustomer"]
        customer = cid["customer"]["id"]
        order = {"customerId": customer, "channel": "shop", "externalId": "X1", "currency": "USD", "amount": 1000}
        order_id = (await tenure.ok(RECORD, {"input": order}, key=key))["recordOrder"]["order"]["id"]
        other = await tenure.ok(RECORD, {"input": {**order, "amount": 999}}, key=key)
        assert other["recordOrder"]["userErrors"][0]["field"] == ["input", "externalId"]
        first = {"orderId": order_id, "amount": 100, "idempotencyKey": "K1"}
        assert (await tenure.ok(REFUND, {"input": first}, key=key))["refundOrder"]["userErrors"] == []
        reused = await tenure.ok(REFUND, {"input": {**first, "amount": 200}}, key=key)
        assert reused["refundOrder"]["userErrors"][0] == {
            "field": ["input", "idempotencyKey"], "code": "IDEMPOTENCY_KEY_REUSED",
            "message": "this idempotency key was already used with different parameters"}
        grant = {"customerId": customer, "points": 500, "reason": "start", "idempotencyKey": "G"}
        assert (await tenure.ok(ADJUST, {"input": grant}))["adjustPoints"]["userErrors"] == []
        spend = {"customerId": customer, "points": 50, "reason": "tea", "idempotencyKey": "S1"}
        assert (await tenure.ok(REDEEM, {"input": spend}, key=key))["redeemPoints"]["userErrors"] == []
        changed = await tenure.ok(REDEEM, {"input": {**spend, "points": 60}}, key=key)
        assert changed["redeemPoints"]["userErrors"][0]["field"] == ["input", "idempotencyKey"]
        assert await tenure.scalar("SELECT refunded_amount FROM orders") == 100
        assert await tenure.scalar("SELECT count(*) FROM loyalty_entries WHERE idempotency_key = 'S1'") == 1
