"""The clients of the chaos test: mixed mutations sent the way a careful partner sends
them (an externalId or idempotency key on each, the same request again until it is
acknowledged), some twice at once to both API processes; and the book of what was sent."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tenure.testing import pk_of

RECORD = """mutation($input: RecordOrderInput!) { recordOrder(input: $input) {
  order { id } userErrors { field message code } } }"""
REFUND = """mutation($input: RefundOrderInput!) { refundOrder(input: $input) {
  order { id } userErrors { field message code } } }"""
INTERACTION = """mutation($input: LogInteractionInput!) { logInteraction(input: $input) {
  interaction { id } userErrors { field message code } } }"""
REDEEM = """mutation($input: RedeemPointsInput!) { redeemPoints(input: $input) {
  entry { id } userErrors { field message code } } }"""
UPDATE_SUBSCRIPTION = """mutation($input: UpdateSubscriptionInput!) { updateSubscription(input: $input) {
  subscription { id } userErrors { field message code } } }"""
NODE = {"recordOrder": "order", "refundOrder": "order", "logInteraction": "interaction", "redeemPoints": "entry",
        "updateSubscription": "subscription"}


@dataclass
class Sent:
    """One logical mutation and what became of it."""

    kind: str
    key: str
    target: int
    amount: int
    acknowledged: bool = False
    answer_ids: set[str] = field(default_factory=set)


@dataclass
class Book:
    sent: list[Sent] = field(default_factory=list)
    http_requests: int = 0
    transport_failures: int = 0
    server_errors: int = 0
    unavailable: int = 0
    graphql_errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    double_submits: int = 0
    gave_up: int = 0

    def of(self, kind: str) -> list[Sent]:
        return [s for s in self.sent if s.kind == kind]


@dataclass
class Owned:
    """What one client works on alone, so its requests never race another client's."""

    customers: list[int]
    subscriptions: list[int] = field(default_factory=list)
    orders: list[tuple[int, int, str]] = field(default_factory=list)  # (id, amount, external id)
    refunded: dict[int, int] = field(default_factory=dict)
    uncertain: set[int] = field(default_factory=set)  # orders with an unacknowledged refund


class Driver:
    def __init__(self, ports: list[int], key: str, rng: random.Random, book: Book, *, loyalty: bool,
                 renewals: bool, give_up_after: float = 25.0) -> None:
        self.ports, self.key, self.rng, self.book = ports, key, rng, book
        self.loyalty, self.renewals, self.give_up_after = loyalty, renewals, give_up_after
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0),
                                        headers={"Authorization": f"Bearer {key}"},
                                        limits=httpx.Limits(max_keepalive_connections=0))

    async def close(self) -> None:
        await self.client.aclose()

    async def _until_acknowledged(self, query: str, variables: dict[str, Any], name: str,
                                  port: int | None = None) -> str | None:
        """Send until a definite answer; the id of the record it names, or None."""
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            target = port or self.rng.choice(self.ports)
            self.book.http_requests += 1
            try:
                response = await self.client.post(f"http://127.0.0.1:{target}/graphql",
                                                  json={"query": query, "variables": variables})
            except httpx.TransportError:
                self.book.transport_failures += 1
                port = None  # that process is down: try any
                await asyncio.sleep(0.1 + self.rng.random() * 0.2)
                continue
            answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            codes = {(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []}
            if codes == {"UNAVAILABLE"}:  # the database is out of reach: said clearly, try again
                self.book.unavailable += 1
                await asyncio.sleep(0.3)
                continue
            if response.status_code >= 500:
                self.book.server_errors += 1
                await asyncio.sleep(0.2)
                continue
            if answer.get("errors"):
                self.book.graphql_errors.append(str(answer["errors"])[:300])
                await asyncio.sleep(0.2)
                continue
            payload = answer["data"][name]
            if payload["userErrors"]:
                self.book.refused.append(f"{name} {variables}: {payload['userErrors']}")
                return None
            return str(payload[NODE[name]]["id"])
        self.book.gave_up += 1
        return None

    async def send(self, sent: Sent, query: str, variables: dict[str, Any], name: str) -> str | None:
        self.book.sent.append(sent)
        if self.rng.random() < 0.1 and len(self.ports) > 1:
            # A double submit: the same request to both API processes at once.
            self.book.double_submits += 1
            ids = await asyncio.gather(*(self._until_acknowledged(query, variables, name, port)
                                         for port in self.ports[:2]))
        else:
            ids = [await self._until_acknowledged(query, variables, name)]
        found = {i for i in ids if i is not None}
        sent.answer_ids |= found
        sent.acknowledged = bool(found)
        return next(iter(found)) if found else None

    async def one(self, client: int, n: int, owned: Owned) -> None:
        choices = ["order"] * 4 + ["refund"] * 2 + ["interaction"]
        choices += ["redeem"] * 2 if self.loyalty else []
        choices += ["subscription"] if self.renewals and owned.subscriptions else []
        kind = self.rng.choice(choices)
        refundable = [o for o in owned.orders if o[0] not in owned.uncertain
                      and o[1] - owned.refunded.get(o[0], 0) >= 3]
        if kind == "refund" and not refundable:
            kind = "order"
        if kind == "order":
            customer, amount = self.rng.choice(owned.customers), self.rng.randint(300, 9000)
            external = f"c{client}-o{n}"
            variables = {"input": {"customerId": str(customer), "channel": "chaos", "externalId": external,
                                   "currency": "USD", "amount": amount}}
            order_id = await self.send(Sent("order", external, customer, amount), RECORD, variables, "recordOrder")
            if order_id is not None:
                owned.orders.append((pk_of(order_id), amount, external))
        elif kind == "refund":
            order_id, amount, _ = self.rng.choice(refundable)
            part = self.rng.randint(1, (amount - owned.refunded.get(order_id, 0)) // 3)
            key = f"c{client}-r{n}"
            variables = {"input": {"orderId": str(order_id), "amount": part, "idempotencyKey": key}}
            sent = Sent("refund", key, order_id, part)
            if await self.send(sent, REFUND, variables, "refundOrder") is not None:
                owned.refunded[order_id] = owned.refunded.get(order_id, 0) + part
            else:
                owned.uncertain.add(order_id)
        elif kind == "interaction":
            customer, external = self.rng.choice(owned.customers), f"c{client}-i{n}"
            variables = {"input": {"customerId": str(customer), "kind": "visit", "channel": "chaos",
                                   "externalId": external}}
            await self.send(Sent("interaction", external, customer, 0), INTERACTION, variables, "logInteraction")
        elif kind == "redeem":
            customer, points, key = self.rng.choice(owned.customers), self.rng.randint(1, 40), f"c{client}-p{n}"
            variables = {"input": {"customerId": str(customer), "points": points, "reason": "chaos",
                                   "idempotencyKey": key}}
            await self.send(Sent("redeem", key, customer, points), REDEEM, variables, "redeemPoints")
        else:
            subscription, value = self.rng.choice(owned.subscriptions), self.rng.randint(1000, 99_000)
            variables = {"input": {"id": str(subscription), "value": value}}
            await self.send(Sent("subscription", f"c{client}-s{n}", subscription, value), UPDATE_SUBSCRIPTION,
                            variables, "updateSubscription")
