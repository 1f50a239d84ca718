"""Webhooks to a real HTTP receiver: signed, recorded, retried with backoff, replayable;
and the events feed a partner catches up from."""

from __future__ import annotations

import hashlib
import hmac
import json

from core import clock
from core.testing import TenureHarness
from tests.core.helpers import ERRORS, create_customer, record_order
from tests.support.receivers import http_receiver

SUBSCRIBE = f"""mutation($input: CreateWebhookSubscriptionInput!) {{
  createWebhookSubscription(input: $input) {{ subscription {{ id eventTypes }} secret {ERRORS} }}
}}"""
DELIVERIES = """query($id: ID!) { webhookDeliveries(subscriptionId: $id, first: 10) {
  nodes { id eventId attempt statusCode ok error } } }"""


def _signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_signed_delivery_retry_and_replay(tenure: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    with http_receiver() as receiver:
        hook = await tenure.ok(SUBSCRIBE, {"input": {"url": receiver.url, "eventTypes": ["order.*"]}})
        subscription, secret = (
            hook["createWebhookSubscription"]["subscription"],
            hook["createWebhookSubscription"]["secret"],
        )
        cid = await create_customer(tenure, "Hooked")
        receiver.answers = [500]
        order = await record_order(tenure, cid, "W-1", 4200)
        assert await tenure.run_jobs() == {"done": 1}
        assert len(receiver.requests) == 1  # the customer.created event is not subscribed to
        failed = (await tenure.ok(DELIVERIES, {"id": subscription["id"]}))["webhookDeliveries"]["nodes"]
        assert [(d["attempt"], d["statusCode"], d["ok"]) for d in failed] == [(1, 500, False)]
        assert failed[0]["error"] == "the receiver answered HTTP 500"
        assert await tenure.run_jobs() == {}  # the retry waits for its backoff
        frozen_clock.advance(seconds=tenure.settings.job_backoff_seconds)
        assert await tenure.run_jobs() == {"done": 1}
        assert len(receiver.requests) == 2
        for request in receiver.requests:
            assert request.headers["x-tenure-signature"] == _signature(secret, request.body)
            assert request.headers["x-tenure-event-type"] == "order.recorded"
        body = json.loads(receiver.requests[1].body)
        assert body["type"] == "order.recorded" and body["data"]["orderId"] == int(order["order"]["id"])
        assert body["data"]["amount"] == 4200 and body["customerId"] == int(cid)
        assert receiver.requests[0].headers["x-tenure-event-id"] == receiver.requests[1].headers["x-tenure-event-id"]
        deliveries = (await tenure.ok(DELIVERIES, {"id": subscription["id"]}))["webhookDeliveries"]["nodes"]
        assert [(d["attempt"], d["ok"]) for d in deliveries] == [(2, True), (1, False)]
        replay = await tenure.ok(
            f"mutation($id: ID!) {{ replayWebhookDelivery(deliveryId: $id) {{ queued {ERRORS} }} }}",
            {"id": deliveries[0]["id"]},
        )
        assert replay["replayWebhookDelivery"] == {"queued": True, "userErrors": []}
        assert await tenure.run_jobs() == {"done": 1}
        assert len(receiver.requests) == 3
        assert receiver.requests[2].body == receiver.requests[1].body
        assert receiver.requests[2].headers["x-tenure-signature"] == _signature(secret, receiver.requests[2].body)


async def test_an_unreachable_receiver_is_recorded_and_given_up(
    make_tenure: object, frozen_clock: clock.FrozenClock
) -> None:
    async with make_tenure(plugins=[], job_max_attempts=2) as tenure:  # type: ignore[operator]
        with http_receiver() as receiver:
            gone = receiver.url
        hook = await tenure.ok(SUBSCRIBE, {"input": {"url": gone}})
        subscription = hook["createWebhookSubscription"]["subscription"]
        await create_customer(tenure, "Lost")
        assert await tenure.run_jobs() == {"done": 1}
        frozen_clock.advance(minutes=5)
        assert await tenure.run_jobs() == {"done": 1}
        frozen_clock.advance(hours=2)
        assert await tenure.run_jobs() == {}
        deliveries = (await tenure.ok(DELIVERIES, {"id": subscription["id"]}))["webhookDeliveries"]["nodes"]
        assert [d["attempt"] for d in deliveries] == [2, 1]
        assert all(not d["ok"] and d["statusCode"] is None and "could not reach" in d["error"] for d in deliveries)


async def test_a_partner_catches_up_from_the_feed(tenure: TenureHarness) -> None:
    partner = await tenure.key("integration", scopes=["events:read"])
    query = """query($after: String) { events(first: 2, after: $after) {
      pageInfo { hasNextPage endCursor } nodes { id type customerId } } }"""
    cid = await create_customer(tenure, "Feed")
    await record_order(tenure, cid, "F-1", 100)
    seen: list[str] = []
    cursor = None
    while True:
        page = (await tenure.ok(query, {"after": cursor}, key=partner))["events"]
        seen += [n["type"] for n in page["nodes"]]
        cursor = page["pageInfo"]["endCursor"] or cursor
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert seen == ["customer.created", "order.recorded"]
    # The partner was down while these happened; it asks from where it stopped.
    await record_order(tenure, cid, "F-2", 200)
    await tenure.ok(
        'mutation($c: ID!) { logInteraction(input: {customerId: $c, kind: "call", channel: "phone"}) { created } }',
        {"c": cid},
    )
    page = (await tenure.ok(query, {"after": cursor}, key=partner))["events"]
    assert [n["type"] for n in page["nodes"]] == ["order.recorded", "interaction.logged"]
    ids = [int(n["id"]) for n in page["nodes"]]
    assert ids == sorted(ids)
    empty = (await tenure.ok(query, {"after": page["pageInfo"]["endCursor"]}, key=partner))["events"]
    assert empty["nodes"] == [] and empty["pageInfo"]["hasNextPage"] is False
    other = await tenure.key("integration", scopes=["orders:write"])
    denied = await tenure.gql(query, {"after": None}, key=other)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
