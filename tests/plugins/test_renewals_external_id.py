"""createSubscription with the client's ``externalId``: a retry (also many at once) returns
the subscription created the first time; the same id with other parameters, or for another
customer, is refused naming ``externalId`` and writes nothing; without it every call creates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tenure.testing import TenureHarness, pk_of
from tests.core.test_messages import customer

CREATE = """mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) {
  subscription { id externalId value { amount } customerId } userErrors { field message code } } }"""


def _input(customer_id: int, **change: Any) -> dict[str, Any]:
    return {"customerId": str(customer_id), "plan": "pro", "value": 12_000, "startsOn": "2026-02-01",
            "endsOn": "2027-02-01", "externalId": "shop-sub-77", **change}


async def _count(tenure: TenureHarness) -> int:
    return int((await tenure.ok("{ subscriptions { totalCount } }"))["subscriptions"]["totalCount"])


async def _timeline_entries(tenure: TenureHarness) -> int:
    return int(await tenure.scalar("SELECT count(*) FROM events WHERE type = 'renewals.subscription_created'"))


async def test_a_retry_with_the_same_external_id_creates_one_subscription(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["renewals"]) as tenure:
        await tenure.ok('mutation { createPlan(input: {code: "pro", name: "Pro"}) { userErrors { field } } }')
        ada = await customer(tenure, "Ada", "ada@example.com")
        ben = await customer(tenure, "Ben", "ben@example.com")
        first = (await tenure.ok(CREATE, {"input": _input(ada)}))["createSubscription"]
        assert first["userErrors"] == [] and first["subscription"]["externalId"] == "shop-sub-77"
        again = (await tenure.ok(CREATE, {"input": _input(ada, externalId="  shop-sub-77 ")}))["createSubscription"]
        assert again == first
        assert await _count(tenure) == 1 and await _timeline_entries(tenure) == 1

        for change in ({"value": 13_000}, {"endsOn": "2027-03-01"}, {"autoRenew": True}, {"customerId": str(ben)}):
            refused = (await tenure.ok(CREATE, {"input": _input(ada, **change)}))["createSubscription"]
            assert refused["subscription"] is None
            [error] = refused["userErrors"]
            assert (error["field"], error["code"]) == (["input", "externalId"], "CONFLICT"), change
            assert f"subscription {pk_of(first['subscription']['id'])}" in error["message"]
        too_long = (await tenure.ok(CREATE, {"input": _input(ada, externalId="x" * 101)}))["createSubscription"]
        assert [(e["field"], e["code"]) for e in too_long["userErrors"]] == [(["input", "externalId"], "TOO_LONG")]
        assert await _count(tenure) == 1 and await _timeline_entries(tenure) == 1

        # Without an externalId nothing is deduplicated; another id is another subscription.
        for change in ({"externalId": None}, {"externalId": None}, {"externalId": "shop-sub-78"}):
            made = (await tenure.ok(CREATE, {"input": _input(ben, **change)}))["createSubscription"]
            assert made["userErrors"] == []
        assert await _count(tenure) == 4


async def test_concurrent_retries_create_one_subscription(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["renewals"]) as tenure:
        await tenure.ok('mutation { createPlan(input: {code: "pro", name: "Pro"}) { userErrors { field } } }')
        ada = await customer(tenure, "Ada", "ada@example.com")
        key = await tenure.key("integration")
        answers = await asyncio.gather(*[tenure.gql(CREATE, {"input": _input(ada)}, key=key) for _ in range(12)])
        assert all("errors" not in a for a in answers), [a for a in answers if "errors" in a][:1]
        results = [a["data"]["createSubscription"] for a in answers]
        assert all(r["userErrors"] == [] for r in results), results
        assert len({r["subscription"]["id"] for r in results}) == 1
        assert await _count(tenure) == 1 and await _timeline_entries(tenure) == 1
