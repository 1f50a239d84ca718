"""Earning throughput and the member API's speed.

Orders per second through ``recordOrder`` with the loyalty and tiers plugins off (the
baseline) and on (points earned, tier checked, in the order's transaction), in the same run,
one request at a time and 8 at once; then ``me`` requests per second for a member with a
long ledger. Requests go through the whole ASGI app in process (no network).

    python bench/loyalty_bench.py              # SQLite in a temporary folder
    TENURE_BENCH_DATABASE_URL=postgresql+asyncpg://... python bench/loyalty_bench.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenure.testing import TenureHarness, create_all, truncate_all

ORDERS = int(os.environ.get("TENURE_BENCH_ORDERS", "200"))
ME_REQUESTS = int(os.environ.get("TENURE_BENCH_ME", "200"))
CONCURRENCY = 8
RECORD = """mutation($i: RecordOrderInput!) { recordOrder(input: $i) { created userErrors { message } } }"""
ME = """{ me { name points { balance pending expiringSoon { points at } }
  pointsLedger(first: 20) { totalCount edges { node { kind points draws { points } } } }
  affordableRewards { name } tier { tier { name benefits { pointsMultiplier perks } }
  progress { nextTier { name } spendToGo } } } }"""


async def _customers(tenure: TenureHarness, n: int) -> list[str]:
    ids = []
    for i in range(n):
        data = await tenure.ok("mutation($i: CustomerInput!) { createCustomer(input: $i) { customer { id } } }",
                               {"i": {"name": f"Bench {i}", "tags": ["vip"] if i % 5 == 0 else []}})
        ids.append(data["createCustomer"]["customer"]["id"])
    return ids


async def _setup_programme(tenure: TenureHarness) -> None:
    for tier in ({"name": "Member", "rank": 0}, {"name": "Silver", "rank": 1, "minSpend": 50_000},
                 {"name": "Gold", "rank": 2, "minSpend": 150_000, "pointsMultiplier": 200}):
        await tenure.ok("mutation($i: TierInput!) { createTier(input: $i) { userErrors { message } } }", {"i": tier})
    await tenure.ok("""mutation { a: createEarnRule(input: {name: "vip", kind: "multiplier", percent: 150, tag: "vip"})
        { userErrors { message } } b: createEarnRule(input: {name: "welcome", kind: "bonus", points: 50,
        trigger: "first_order"}) { userErrors { message } } c: createReward(input: {name: "Mug", cost: 300})
        { userErrors { message } } }""")


def _order(customer: str, n: int, tag: str) -> dict[str, Any]:
    return {"i": {"customerId": customer, "channel": "bench", "externalId": f"{tag}-{n}", "currency": "USD",
                  "lines": [{"sku": "tea", "quantity": 1 + n % 3, "unitPrice": 1250, "category": "tea"},
                            {"sku": "cup", "quantity": 1, "unitPrice": 800}]}}


async def _orders_per_second(tenure: TenureHarness, customers: list[str], tag: str, concurrency: int) -> float:
    key = await tenure.key("integration")
    queue = list(range(ORDERS))

    async def worker() -> None:
        while queue:
            n = queue.pop()
            answer = await tenure.gql(RECORD, _order(customers[n % len(customers)], n, tag), key=key)
            assert not answer.get("errors") and answer["data"]["recordOrder"]["created"], answer

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return ORDERS / (time.perf_counter() - started)


async def _me_per_second(tenure: TenureHarness, customer: str) -> tuple[float, int]:
    token = tenure.member_token(int(customer))
    await tenure.ok(ME, key=token)
    with tenure.count_statements() as counter:
        data = await tenure.ok(ME, key=token)
    started = time.perf_counter()
    for _ in range(ME_REQUESTS):
        await tenure.ok(ME, key=token)
    assert data["me"]["pointsLedger"]["totalCount"] > 0
    return ME_REQUESTS / (time.perf_counter() - started), counter.count


async def _run(url: str, plugins: list[str]) -> dict[str, Any]:
    postgres = not url.startswith("sqlite")
    if postgres:
        await truncate_all(url)
    env = {"TENURE_LOYALTY_RETURN_WINDOW_DAYS": "0"}
    results: dict[str, Any] = {}
    async with TenureHarness.start(url, plugins=plugins, create_tables=not postgres, env=env) as tenure:
        if plugins:
            await _setup_programme(tenure)
        customers = await _customers(tenure, 40)
        results["sequential"] = await _orders_per_second(tenure, customers, "s", 1)
        results["concurrent"] = await _orders_per_second(tenure, customers, "c", CONCURRENCY)
        if plugins:
            for n in range(200):  # a long ledger for the member: many small orders
                await tenure.gql(RECORD, _order(customers[0], n, "m"), key=await tenure.key("integration"))
            results["me"], results["statements"] = await _me_per_second(tenure, customers[0])
    return results


async def main() -> None:
    logging.disable(logging.INFO)
    url = os.environ.get("TENURE_BENCH_DATABASE_URL", "")
    folder = None
    if not url:
        folder = tempfile.TemporaryDirectory()
    started = time.perf_counter()
    if url:
        await create_all(url)

    def db(name: str) -> str:
        return url or f"sqlite+aiosqlite:///{Path(folder.name) / name}"  # type: ignore[union-attr]

    off = await _run(db("off.db"), [])
    on = await _run(db("on.db"), ["loyalty", "tiers"])
    if url:
        await truncate_all(url)
    kind = "PostgreSQL" if url else "SQLite (file, WAL)"
    print(f"Tenure loyalty benchmark: {platform.platform()}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {kind}; {ORDERS} orders per row, {ME_REQUESTS} me requests")
    print()
    print(f"| {'measure':<44} | {'plugins off':>11} | {'loyalty + tiers':>15} | {'on / off':>8} |")
    print(f"|{'-' * 46}|{'-' * 13}|{'-' * 17}|{'-' * 10}|")
    for label, name in (("recordOrder, orders/s, 1 at a time", "sequential"),
                        (f"recordOrder, orders/s, {CONCURRENCY} at once", "concurrent")):
        print(f"| {label:<44} | {off[name]:>11.0f} | {on[name]:>15.0f} | {on[name] / off[name]:>7.0%} |")
    print(f"| {'me (points, ledger, tier, rewards), req/s':<44} | {'-':>11} | {on['me']:>15.0f} | {'':>8} |")
    print(f"| {'me, SQL statements per request':<44} | {'-':>11} | {on['statements']:>15} | {'':>8} |")
    print()
    print(f"took {time.perf_counter() - started:.1f} s")
    if folder is not None:
        folder.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
