"""The invariants behind ``tenure check`` hold after a busy day, and the check notices and
names a balance or a figure that drifted."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tenure.core.checks import run_invariants
from tenure.testing import TenureHarness, pk_of

RECORD = """mutation($input: RecordOrderInput!) {
  recordOrder(input: $input) { order { id } userErrors { message } } }"""


async def busy_day(tenure: TenureHarness, seed: int = 5) -> list[str]:
    """Customers, orders, refunds, cancellations, interactions, a merge, and redemptions
    when loyalty is on; returns the customer ids."""
    rng = random.Random(seed)
    ids = []
    for n in range(12):
        data = await tenure.ok(f'mutation {{ createCustomer(input: {{name: "C{n}", emails: ["c{n}@x.io"]}}) '
                               "{ customer { id } } }")
        ids.append(data["createCustomer"]["customer"]["id"])
    orders = []
    for n in range(40):
        variables = {"input": {"customerId": rng.choice(ids), "channel": "shop", "externalId": f"O{n}",
                               "currency": "USD", "amount": rng.randint(100, 20_000)}}
        orders.append((await tenure.ok(RECORD, variables))["recordOrder"]["order"]["id"])
    for order in rng.sample(orders, 10):
        await tenure.ok(f'mutation {{ refundOrder(input: {{orderId: "{order}", amount: 50, '
                        f'idempotencyKey: "r{order}"}}) {{ userErrors {{ message }} }} }}')
    for order in rng.sample(orders, 5):
        await tenure.gql(f'mutation {{ refundOrder(input: {{orderId: "{order}"}}) {{ userErrors {{ message }} }} }}',
                         key=await tenure.key())
    for order in rng.sample(orders, 5):
        await tenure.gql(f'mutation {{ cancelOrder(input: {{orderId: "{order}"}}) {{ userErrors {{ message }} }} }}',
                         key=await tenure.key())
    for cid in ids[:6]:
        await tenure.ok(f'mutation {{ logInteraction(input: {{customerId: "{cid}", kind: "visit", channel: "store"}}) '
                        "{ created } }")
    merged = await tenure.ok(f'mutation {{ mergeCustomers(input: {{survivorId: "{ids[0]}", mergedId: "{ids[1]}"}}) '
                             "{ userErrors { message } } }")
    assert merged["mergeCustomers"]["userErrors"] == []
    ids.remove(ids[1])
    if tenure.plugins.is_enabled("loyalty"):
        for cid in ids:
            await tenure.ok(f'mutation {{ adjustPoints(input: {{customerId: "{cid}", points: 300, reason: "gift"}}) '
                            "{ userErrors { message } } }")
            await tenure.ok(f'mutation {{ redeemPoints(input: {{customerId: "{cid}", points: 120, reason: "tea"}}) '
                            "{ userErrors { message } } }")
    await tenure.run_jobs()
    return ids


async def test_invariants_hold_after_a_busy_day_with_every_plugin(checked_tenure: Any) -> None:
    async with checked_tenure(plugins=None) as tenure:
        await busy_day(tenure)
        assert len(tenure.plugins.checks) >= 2  # the core's and at least loyalty's


async def test_the_check_names_what_drifted(make_tenure: Any) -> None:
    async with make_tenure(plugins=["loyalty"]) as tenure:
        ids = await busy_day(tenure)
        assert await run_invariants(tenure.db, tenure.plugins) == []
        async with tenure.db.transaction() as session:
            from sqlalchemy import text

            await session.execute(text("UPDATE customers SET total_spent = total_spent + 1 WHERE id = :c"),
                                  {"c": pk_of(ids[2])})
            await session.execute(text("UPDATE loyalty_accounts SET balance = balance + 7 WHERE customer_id = :c"),
                                  {"c": pk_of(ids[3])})
        problems = await run_invariants(tenure.db, tenure.plugins)
        assert any(f"customer {pk_of(ids[2])}" in p for p in problems), problems
        assert any(p.startswith("loyalty:") and f"customer {pk_of(ids[3])}" in p for p in problems), problems


@pytest.mark.sqlite_only
def test_tenure_check_exits_non_zero_and_says_why(tmp_path: Path, database_url: str) -> None:
    env = {**os.environ, "TENURE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'check.db'}",
           "TENURE_PLUGINS": "loyalty"}
    tenure = [sys.executable, "-c", "from tenure.cli import main; main()"]
    subprocess.run([*tenure, "migrate"], env=env, check=True, capture_output=True, cwd=tmp_path)
    passed = subprocess.run([*tenure, "check"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert passed.returncode == 0 and "all checks passed" in passed.stdout, passed.stdout + passed.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "check.db") as db:
        db.execute("INSERT INTO customers (name, consent_email, consent_sms, consent_push, created_at, updated_at, "
                   "order_count, total_spent) VALUES ('X', 0, 0, 0, '2026-01-01', '2026-01-01', 3, 999)")
    failed = subprocess.run([*tenure, "check"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert failed.returncode == 1
    assert "3 orders and 999 spent on record, but the orders add up to 0 and 0" in failed.stdout
