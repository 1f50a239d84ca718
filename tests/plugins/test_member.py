"""The member API (mobile apps): ``me`` shows the member's points, ledger, tier, benefits,
progress and affordable rewards; a member redeems for themselves and can never read or
change another customer; ``me`` costs the same few statements however long the ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tenure.core.models import Role
from tenure.plugins.loyalty.models import Account, Entry
from tenure.schema.permissions import TenurePermission
from tenure.testing import TenureHarness, global_id
from tests.plugins.loyalty_support import NOW, adjust, create_reward, ledger, new_customer, points, record_order
from tests.plugins.test_tiers import standard_tiers

ME = """{ me { id name
  points { balance pending lifetimeEarned qualifying expiringSoon { points at } }
  pointsLedger(first: 5) { totalCount edges { node { id kind points reason draws { lotId points } } } }
  affordableRewards { id name cost }
  tier { tier { name benefits { pointsMultiplier discountPercent perks } } since
         progress { nextTier { name } spendToGo } whatIf(spend: 20000) { reachesNextTier message } } } }"""

REDEEM_REWARD = """mutation($i: RedeemRewardInput!) { redeemReward(input: $i) { balance entry { id points }
  userErrors { field code } } }"""


async def _two_members(tenure: TenureHarness) -> tuple[int, int, int]:
    await standard_tiers(tenure)
    ada, bob = await new_customer(tenure, "Ada"), await new_customer(tenure, "Bob")
    await record_order(tenure, ada, "A1", 60_000)
    await record_order(tenure, bob, "B1", 120_000)
    mug = await create_reward(tenure, name="Mug", cost=500)
    await create_reward(tenure, name="Bike", cost=100_000)
    return ada, bob, mug


async def test_me_shows_points_tier_progress_and_what_can_be_afforded(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        ada, _, mug = await _two_members(tenure)
        me = (await tenure.ok(ME, key=tenure.member_token(ada)))["me"]
        assert me["name"] == "Ada"
        assert me["points"] == {"balance": 600, "pending": 0, "lifetimeEarned": 600, "qualifying": 600,
                                "expiringSoon": []}
        assert [e["node"]["points"] for e in me["pointsLedger"]["edges"]] == [600]
        assert me["affordableRewards"] == [{"id": global_id("Reward", mug), "name": "Mug", "cost": 500}]
        assert me["tier"]["tier"] == {"name": "Silver", "benefits": {"pointsMultiplier": 100, "discountPercent": 5,
                                                                     "perks": []}}
        assert me["tier"]["progress"] == {"nextTier": {"name": "Gold"}, "spendToGo": 40_000}
        assert me["tier"]["whatIf"] == {"reachesNextTier": False,
                                        "message": "An order of 200.00 USD leaves Gold 200.00 USD more spend away"}


async def test_a_member_redeems_a_reward_for_themselves(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        ada, _, mug = await _two_members(tenure)
        token = tenure.member_token(ada)
        done = await tenure.ok(REDEEM_REWARD, {"i": {"rewardId": str(mug), "idempotencyKey": "app-1"}}, key=token)
        assert done["redeemReward"]["balance"] == 100 and done["redeemReward"]["entry"]["points"] == -500
        again = await tenure.ok(REDEEM_REWARD, {"i": {"rewardId": str(mug), "idempotencyKey": "app-1"}}, key=token)
        assert again["redeemReward"]["entry"] == done["redeemReward"]["entry"]
        short = await tenure.ok(REDEEM_REWARD, {"i": {"rewardId": str(mug)}}, key=token)
        assert short["redeemReward"]["userErrors"] == [{"field": ["input", "rewardId"], "code": "INSUFFICIENT_POINTS"}]
        me = (await tenure.ok(ME, key=token))["me"]
        assert me["points"]["balance"] == 100 and me["affordableRewards"] == []


async def test_a_member_can_never_read_or_change_another_customer(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        ada, bob, mug = await _two_members(tenure)
        token = tenure.member_token(ada)
        # Every root field loyalty and tiers add that a member may call at all, by its permission rule.
        reachable = set()
        for plugin, contribution in tenure.plugins.schema_contributions:
            if plugin not in ("loyalty", "tiers"):
                continue
            for root in (contribution.query, contribution.mutation):
                for field in root.__strawberry_definition__.fields:  # type: ignore[union-attr]
                    rules = [p for p in field.permission_classes if issubclass(p, TenurePermission)]
                    assert rules, field.python_name
                    if all(Role.MEMBER in rule.roles for rule in rules):
                        reachable.add(field.python_name)
        assert reachable == {"rewards", "redeem_reward", "tiers"}
        # rewards and tiers are the catalogue, no customer's data; redeemReward refuses another customer.
        before = await points(tenure, bob)
        other = await tenure.gql(REDEEM_REWARD, {"i": {"rewardId": str(mug), "customerId": str(bob)}}, key=token)
        assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN" and other["data"] is None
        assert await points(tenure, bob) == before
        catalogue = await tenure.ok("{ rewards { name } tiers { name } }", key=token)
        assert [r["name"] for r in catalogue["rewards"]] == ["Mug", "Bike"]
        # Staff fields stay closed to a member, whatever id they name.
        for query, variables in [
            ("query($id: ID!) { customer(id: $id) { points { balance } tier { tier { name } } } }", {"id": str(bob)}),
            ("query($id: ID!) { customer(id: $id) { pointsLedger(first: 5) { totalCount } } }", {"id": str(bob)}),
            ("mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { balance } }",
             {"i": {"customerId": str(bob), "points": 1, "reason": "x"}}),
            ("mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { balance } }",
             {"i": {"customerId": str(ada), "points": 1000, "reason": "x"}}),
            ("mutation($i: SetCustomerTierInput!) { setCustomerTier(input: $i) { userErrors { field } } }",
             {"i": {"customerId": str(ada), "tierId": "3", "reason": "x"}}),
            ("mutation($i: AwardReferralInput!) { awardReferral(input: $i) { balance } }",
             {"i": {"referrerId": str(ada), "referredCustomerId": str(bob)}}),
            ("{ pointsLiability { outstanding } tierDistribution { customers } }", {}),
        ]:
            answer = await tenure.gql(query, variables, key=token)
            assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", query
        # What me shows is Ada's alone: her ledger entries, and lots drawn from are hers.
        await tenure.ok(REDEEM_REWARD, {"i": {"rewardId": str(mug)}}, key=token)
        mine = {e["id"] for e in await ledger(tenure, ada)}
        me = (await tenure.ok(ME, key=token))["me"]
        shown = [e["node"] for e in me["pointsLedger"]["edges"]]
        assert {e["id"] for e in shown} == mine
        assert all(d["lotId"] in mine for e in shown for d in e["draws"])
        assert me["id"] == global_id("Customer", ada) and me["points"]["balance"] == 100
        assert me["tier"]["tier"]["name"] == "Silver"
        assert (await points(tenure, bob))["balance"] == 2_400  # 1,200 points doubled: that order reached Gold


async def _member_with_entries(tenure: TenureHarness, n: int) -> int:
    cid = await new_customer(tenure, f"Member {n}")
    async with tenure.transaction() as ctx:
        now = ctx.now()
        ctx.session.add(Account(customer_id=cid, balance=n, pending=0, lifetime_earned=n, shortfall=0, updated_at=now))
        ctx.session.add_all([
            Entry(customer_id=cid, kind="earn", points=1, qualifying=1, pending=False, remaining=1, shortfall=0,
                  reason=f"visit {i}", source="plugin", detail={}, created_at=now - timedelta(minutes=i),
                  available_at=now, expires_at=now + timedelta(days=10 + i % 40))
            for i in range(n)])
    return cid


async def test_me_costs_the_same_few_statements_with_a_thousand_entries(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        await standard_tiers(tenure)
        await create_reward(tenure, name="Mug", cost=5)
        small, large = await _member_with_entries(tenure, 10), await _member_with_entries(tenure, 1_000)
        await adjust(tenure, large, -3)
        counts = []
        for cid in (small, large):
            token = tenure.member_token(cid)
            await tenure.ok(ME, key=token)
            with tenure.count_statements() as counter:
                me = (await tenure.ok(ME, key=token))["me"]
            counts.append(counter.count)
        assert me["pointsLedger"]["totalCount"] == 1_001 and me["points"]["balance"] == 997
        assert me["points"]["expiringSoon"][0]["points"] > 0
        assert counts[0] == counts[1] and counts[1] <= 12, counts
