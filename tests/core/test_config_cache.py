"""Configuration kept per process: an order reads no earn rule, tier or survey while they
stand still, and the next order after a change made anywhere (another process included)
follows the new rule."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from tenure.testing import TenureHarness

RULE = """mutation($i: EarnRuleInput!) { createEarnRule(input: $i) { rule { id } userErrors { message } } }"""
TIER = """mutation($i: TierInput!) { createTier(input: $i) { tier { id } userErrors { message } } }"""
ORDER = """mutation($i: RecordOrderInput!) { recordOrder(input: $i) { order { id } userErrors { message } } }"""
CUSTOMER = """mutation { createCustomer(input: {name: "Ada"}) { customer { id } } }"""
POINTS_AND_TIER = """query($id: ID!) { customer(id: $id) { points { pending balance } tier { tier { name } } } }"""

ANOTHER_PROCESS = """
import asyncio, sys
from tenure.testing import TenureHarness

async def main() -> None:
    async with TenureHarness.start(sys.argv[1], plugins=["loyalty", "tiers"], create_tables=False) as app:
        changed = await app.ok(
            'mutation($i: UpdateEarnRuleInput!) { updateEarnRule(input: $i) { userErrors { message } } }',
            {"i": {"id": sys.argv[2], "rule": {"name": "Base", "kind": "base", "points": 3, "perAmount": 100}}})
        assert changed["updateEarnRule"]["userErrors"] == [], changed
        made = await app.ok('mutation { createTier(input: {name: "Gold", rank: 1, minOrders: 4, windowDays: 365, '
                            'graceDays: 30}) { userErrors { message } } }')
        assert made["createTier"]["userErrors"] == [], made

asyncio.run(main())
"""


async def order(app: TenureHarness, customer: str, n: int) -> None:
    answer = await app.ok(ORDER, {"i": {"customerId": customer, "channel": "shop", "externalId": f"o-{n}",
                                        "currency": "USD", "amount": 10_000}})
    assert answer["recordOrder"]["userErrors"] == []


async def test_a_change_made_by_another_process_applies_to_the_next_order(
        make_tenure: Callable[..., Any], database_url: str, tmp_path: Path) -> None:
    env = {"TENURE_LOYALTY_RETURN_WINDOW_DAYS": "0"}
    async with make_tenure(plugins=["loyalty", "tiers"], env=env) as app:
        rule = (await app.ok(RULE, {"i": {"name": "Base", "kind": "base", "points": 1, "perAmount": 100}}))
        rule_id = rule["createEarnRule"]["rule"]["id"]
        bronze = await app.ok(TIER, {"i": {"name": "Bronze", "rank": 0, "minOrders": 1, "windowDays": 365,
                                           "graceDays": 30}})
        assert bronze["createTier"]["userErrors"] == []
        ada = (await app.ok(CUSTOMER))["createCustomer"]["customer"]["id"]
        await order(app, ada, 1)
        await order(app, ada, 2)

        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)

        event.listen(app.db.engine.sync_engine, "before_cursor_execute", record)
        try:
            await order(app, ada, 3)
        finally:
            event.remove(app.db.engine.sync_engine, "before_cursor_execute", record)
        configuration_reads = [s for s in seen if any(f"FROM {table}" in s for table in (
            "loyalty_earn_rules", "tiers ", "webhook_subscriptions"))]
        assert configuration_reads == []
        assert sum("FROM config_version" in s for s in seen) == 1
        after_three = (await app.ok(POINTS_AND_TIER, {"id": ada}))["customer"]
        assert after_three["points"]["balance"] == 300
        assert after_three["tier"]["tier"]["name"] == "Bronze"

        script = tmp_path / "change.py"
        script.write_text(textwrap.dedent(ANOTHER_PROCESS))
        done = await asyncio.to_thread(subprocess.run, [sys.executable, str(script), database_url, rule_id],
                                       capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
        assert done.returncode == 0, done.stderr[-2000:]

        await order(app, ada, 4)  # 3 points per dollar now, and the fourth order reaches Gold
        after_four = (await app.ok(POINTS_AND_TIER, {"id": ada}))["customer"]
        assert after_four["points"]["balance"] == 300 + 300
        assert after_four["tier"]["tier"]["name"] == "Gold"


async def test_a_change_in_a_transaction_is_seen_by_that_transaction_and_gone_with_its_rollback(
        make_tenure: Callable[..., Any]) -> None:
    from tenure.plugins.loyalty.rules import load_rules

    async with make_tenure(plugins=["loyalty"]) as app:
        await app.ok(RULE, {"i": {"name": "Base", "kind": "base", "points": 1, "perAmount": 100}})
        async with app.transaction() as ctx:
            assert [r.points for r in (await load_rules(ctx.session)).rules] == [1]  # kept from here on
        try:
            async with app.transaction() as ctx:
                from tenure.plugins.loyalty.models import EarnRule

                stored = await ctx.session.get(EarnRule, await ctx.session.scalar(select(EarnRule.id)))
                stored.points = 7
                await ctx.session.flush()
                assert [r.points for r in (await load_rules(ctx.session)).rules] == [7]
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        async with app.transaction() as ctx:
            assert [r.points for r in (await load_rules(ctx.session)).rules] == [1]
