"""The cases: each measured on Tenure and on its floor in the same run, on the same data."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

from tenure.core import auth
from tenure.core.db import Database
from tenure.core.settings import Settings

SECRET = "bench-secret-key-bench-secret-key-0123456789"


@dataclass
class Row:
    case: str
    tenure: float | None
    floor: float | None
    unit: str
    target: str
    ratio: float | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.tenure and self.floor and self.unit == "req/s":
            self.ratio = round(self.tenure / self.floor, 3)


@dataclass
class Features:
    """Which plugin fields the assembled schema offers (the bench asks for them when it does)."""

    member: set[str]
    customer: set[str]
    mutations: set[str]

    @classmethod
    def of(cls, settings: Settings, plugins: Any) -> Features:
        from tenure.schema.build import build_schema

        schema = build_schema(plugins, settings)

        def fields(name: str) -> set[str]:
            found = schema._schema.get_type(name)
            return set(getattr(found, "fields", None) or ())

        mutation = schema._schema.mutation_type
        return cls(fields("Member"), fields("Customer"), set(mutation.fields) if mutation else set())


def me_query(features: Features) -> str:
    extra = ""
    if "points" in features.member:
        extra += " points { balance pending lifetimeEarned qualifying expiringSoon { points at } }"
    if "affordableRewards" in features.member:
        extra += " affordableRewards { id name cost }"
    if "tier" in features.member:
        extra += " tier { __typename }"
    return "query Me { me { id name birthday locale consent { email sms push } emails" + extra + " } }"


def portal_query(features: Features, first: int) -> str:
    extra = ""
    if "points" in features.customer:
        extra += " points { balance }"
    for name in ("tier", "churnRisk"):
        if name in features.customer:
            extra += f" {name} {{ __typename }}"
    return (f"query Portal {{ customers(first: {first}) {{ nodes {{ id name orderCount lastOrderAt "
            "totalSpent { amount currency } owner { name } orders(first: 5) { nodes { id externalId placedAt status "
            f"amount {{ amount currency }} }} }}{extra} }} pageInfo {{ hasNextPage endCursor }} }} }}")


RECORD_ORDER = ("mutation Record($input: RecordOrderInput!) { recordOrder(input: $input) { "
                "order { id externalId } created userErrors { field message } } }")
REDEEM = ("mutation Redeem($input: RedeemPointsInput!) { redeemPoints(input: $input) { "
          "entry { id points } userErrors { field message } } }")


async def admin_key(url: str) -> str:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return (await auth.create_api_key(session, name="bench", role="admin")).key
    finally:
        await db.dispose()


def member_tokens(ids: list[int]) -> list[str]:
    return [auth.member_token(SECRET.encode(), cid, 86400)[0] for cid in ids]


def graphql_body(query: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": query, "variables": variables or {}})


def order_inputs(customer_ids: list[int], count: int, seed: int) -> list[dict[str, Any]]:
    """recordOrder inputs; ``__N__`` in the external id is made unique by the load generator."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        lines = [{"sku": f"SKU-{rng.randint(1, 40)}", "name": "Item", "category": "general",
                  "quantity": rng.choice((1, 2)), "unitPrice": rng.randint(500, 9000)}
                 for _ in range(rng.choice((1, 2)))]
        out.append({"customerId": str(rng.choice(customer_ids)), "channel": "bench", "externalId": "__N__",
                    "currency": "USD", "lines": lines})
    return out


def same_json(tenure: Any, floor: Any) -> tuple[bool, list[str]]:
    """Whether the two answers agree on everything the floor returns, and the fields only
    Tenure returns (plugin fields the floor has no hand-written SQL for)."""
    extra: set[str] = set()

    def strip(a: Any, b: Any) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            extra.update(k for k in a if k not in b)
            return {k: strip(v, b[k]) for k, v in a.items() if k in b}
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return [strip(x, y) for x, y in zip(a, b, strict=True)]
        return a

    same = json.dumps(strip(tenure, floor), sort_keys=True) == json.dumps(floor, sort_keys=True)
    return same, sorted(extra)


async def statement_counts(url: str, features: Features, plugins: list[str], sizes: tuple[int, ...]) -> dict[int, int]:
    """SQL statements one ``customers(first: N)`` request runs, every plugin field asked for."""
    from tenure.testing import TenureHarness

    counts = {}
    async with TenureHarness.start(url, plugins=plugins, create_tables=False, max_complexity=1_000_000) as tenure:
        for n in sizes:
            query = portal_query(features, n)
            await tenure.ok(query)  # warm: the key lookup and caches
            with tenure.count_statements() as counter:
                await tenure.ok(query)
            counts[n] = counter.count
    return counts


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
