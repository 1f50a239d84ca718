"""Membership tiers through the API: instant upgrades, graceful downgrades, overrides,
merges, the multiplier loyalty applies, and the reports."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from tenure.core.clock import FrozenClock
from tenure.plugins.tiers import qualify
from tenure.testing import TenureHarness
from tests.plugins.loyalty_support import NOW, merge, new_customer, points, record_order, refund, run_job

TIER = """query($id: ID!, $spend: Int!) { customer(id: $id) { tier { tier { name benefits { pointsMultiplier
  discountPercent perks } } since expiresAt willDowngradeOn manual reason
  progress { nextTier { name } spendToGo ordersToGo pointsToGo }
  whatIf(spend: $spend) { reachesNextTier message } } } }"""


async def create_tier(tenure: TenureHarness, **tier: Any) -> dict[str, Any]:
    data = await tenure.ok("""mutation($i: TierInput!) { createTier(input: $i) { tier { id name }
        userErrors { field code } } }""", {"i": tier})
    return data["createTier"]  # type: ignore[no-any-return]


async def standard_tiers(tenure: TenureHarness, window_days: int | None = None) -> dict[str, str]:
    made = {}
    for tier in ({"name": "Member", "rank": 0},
                 {"name": "Silver", "rank": 1, "minSpend": 50_000, "discountPercent": 5},
                 {"name": "Gold", "rank": 2, "minSpend": 100_000, "graceDays": 30, "pointsMultiplier": 200,
                  "perks": ["free shipping"]}):
        if window_days is not None:
            tier["windowDays"] = window_days
        answer = await create_tier(tenure, **tier)
        assert answer["userErrors"] == []
        made[tier["name"]] = answer["tier"]["id"]  # type: ignore[index]
    return made


async def tier_of(tenure: TenureHarness, customer_id: int, spend: int = 0) -> dict[str, Any]:
    return (await tenure.ok(TIER, {"id": str(customer_id), "spend": spend}))["customer"]["tier"]  # type: ignore[no-any-return]


async def timeline(tenure: TenureHarness, customer_id: int) -> list[str]:
    data = await tenure.ok("""query($id: ID!) { customer(id: $id) { timeline(first: 50) { edges { node {
        kind summary event { type } } } } } }""", {"id": str(customer_id)})
    return [e["node"]["summary"] for e in data["customer"]["timeline"]["edges"]
            if e["node"]["event"] and e["node"]["event"]["type"].startswith("tiers.")]


async def test_upgrade_at_once_and_downgrade_only_after_the_grace_period(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["tiers"]) as tenure:
        await standard_tiers(tenure)
        cid = await new_customer(tenure)
        start = await tier_of(tenure, cid, 60_000)
        assert start["tier"]["name"] == "Member" and start["progress"]["nextTier"]["name"] == "Silver"
        assert start["whatIf"] == {"reachesNextTier": True, "message": "One more order of 600.00 USD reaches Silver"}
        await record_order(tenure, cid, "T1", 60_000)
        silver = await tier_of(tenure, cid, 30_000)
        assert silver["tier"]["name"] == "Silver" and silver["tier"]["benefits"]["discountPercent"] == 5
        assert silver["progress"] == {"nextTier": {"name": "Gold"}, "spendToGo": 40_000, "ordersToGo": None,
                                      "pointsToGo": None}
        assert silver["expiresAt"].startswith("2027-06-01")
        assert silver["whatIf"] == {"reachesNextTier": False,
                                    "message": "An order of 300.00 USD leaves Gold 100.00 USD more spend away"}
        frozen_clock.advance(days=10)
        order = await record_order(tenure, cid, "T2", 40_000)
        gold = await tier_of(tenure, cid)
        assert gold["tier"]["name"] == "Gold" and gold["since"].startswith("2026-06-11")
        assert "order T2: spend 1000.00 USD in the last 365 days" in gold["reason"]
        await refund(tenure, order)
        assert (await tier_of(tenure, cid))["tier"]["name"] == "Gold"
        await run_job(tenure, "tiers.review")
        pending = await tier_of(tenure, cid)
        assert pending["tier"]["name"] == "Gold" and pending["willDowngradeOn"].startswith("2026-07-11")
        frozen_clock.advance(days=29)
        await run_job(tenure, "tiers.review")
        assert (await tier_of(tenure, cid))["tier"]["name"] == "Gold"
        frozen_clock.advance(days=2)
        await run_job(tenure, "tiers.review")
        await run_job(tenure, "tiers.review")
        after = await tier_of(tenure, cid)
        assert after["tier"]["name"] == "Silver" and after["willDowngradeOn"].startswith("2027-07-01")
        story = await timeline(tenure, cid)
        assert story[0].startswith("moved down to Silver: spend 600.00 USD in the last 365 days no longer reaches Gold")
        assert any(s.startswith("no longer reaches Gold; keeps it until 2026-07-11") for s in story)
        assert any(s.startswith("moved up to Gold") for s in story)
        assert any(s.startswith("joined Silver") for s in story)


async def test_a_manual_tier_is_not_undone_by_the_review(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["tiers"]) as tenure:
        ids = await standard_tiers(tenure)
        cid = await new_customer(tenure)
        data = await tenure.ok("""mutation($i: SetCustomerTierInput!) { setCustomerTier(input: $i) {
            tier { tier { name } manual reason } userErrors { field } } }""",
                               {"i": {"customerId": str(cid), "tierId": ids["Gold"], "reason": "influencer deal"}})
        chosen = data["setCustomerTier"]["tier"]
        assert chosen["tier"] == {"name": "Gold"} and chosen["manual"] is True
        assert chosen["reason"].endswith("influencer deal")
        for _ in range(3):
            frozen_clock.advance(days=40)
            await run_job(tenure, "tiers.review")
        assert (await tier_of(tenure, cid))["tier"]["name"] == "Gold"
        bad = await tenure.ok("""mutation($i: SetCustomerTierInput!) { setCustomerTier(input: $i) {
            userErrors { field code } } }""", {"i": {"customerId": str(cid), "tierId": "999", "reason": "x"}})
        assert bad["setCustomerTier"]["userErrors"] == [{"field": ["input", "tierId"], "code": "NOT_FOUND"}]
        await tenure.ok("""mutation($i: SetCustomerTierInput!) { setCustomerTier(input: $i) {
            userErrors { field } } }""", {"i": {"customerId": str(cid), "reason": "deal over"}})
        await run_job(tenure, "tiers.review")
        ending = await tier_of(tenure, cid)
        assert ending["tier"]["name"] == "Gold" and ending["willDowngradeOn"].startswith("2026-10-29")


async def test_the_upgrading_order_already_earns_at_the_new_tier_multiplier(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        await standard_tiers(tenure)
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "M1", 60_000)
        assert (await points(tenure, cid))["balance"] == 600
        await record_order(tenure, cid, "M2", 40_000)
        assert (await points(tenure, cid))["balance"] == 600 + 800
        entries = await tenure.ok("""query($id: ID!) { customer(id: $id) { pointsLedger(first: 1) { edges { node {
            reason points } } } } }""", {"id": str(cid)})
        assert entries["customer"]["pointsLedger"]["edges"][0]["node"]["points"] == 800


async def test_each_plugin_works_alone(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "L1", 100_000)
        assert (await points(tenure, cid))["balance"] == 1000
        answer = await tenure.gql("{ tiers { name } }", key=await tenure.key("admin"))
        assert "Cannot query field 'tiers'" in answer["errors"][0]["message"]
    async with make_tenure(plugins=["tiers"]) as tenure:
        await standard_tiers(tenure)
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "L2", 100_000)
        assert (await tier_of(tenure, cid))["tier"]["name"] == "Gold"


async def test_a_tier_qualified_on_points_follows_the_points(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        await create_tier(tenure, name="Insider", rank=1, minPoints=500)
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "P1", 30_000)
        progress = (await tier_of(tenure, cid))["progress"]
        assert (progress["nextTier"]["name"], progress["pointsToGo"]) == ("Insider", 200)
        await tenure.ok("""mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { userErrors { field } } }""",
                        {"i": {"customerId": str(cid), "points": 300, "reason": "gift"}})
        assert (await tier_of(tenure, cid))["progress"]["pointsToGo"] == 200
        await record_order(tenure, cid, "P2", 20_000)
        assert (await tier_of(tenure, cid))["tier"]["name"] == "Insider"


async def test_merge_keeps_the_higher_tier(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["tiers"]) as tenure:
        await standard_tiers(tenure)
        keep, fold = await new_customer(tenure, "Keep"), await new_customer(tenure, "Fold")
        await record_order(tenure, keep, "K1", 60_000)
        await record_order(tenure, fold, "F1", 120_000)
        await merge(tenure, keep, fold)
        assert (await tier_of(tenure, keep))["tier"]["name"] == "Gold"
        dist = await tenure.ok("{ tierDistribution { tier { name } customers } }")
        assert dist["tierDistribution"] == [{"tier": None, "customers": 0},
                                            {"tier": {"name": "Member"}, "customers": 0},
                                            {"tier": {"name": "Silver"}, "customers": 0},
                                            {"tier": {"name": "Gold"}, "customers": 1}]


async def test_bad_tiers_are_refused_and_simulate_writes_nothing(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["tiers"]) as tenure:
        await standard_tiers(tenure)
        copper = await create_tier(tenure, name="Copper", rank=1)
        assert copper["userErrors"] == [{"field": ["input", "rank"], "code": "CONFLICT"}]
        assert (await create_tier(tenure, name="Tin", rank=7, minSpend=-1))["userErrors"] == [
            {"field": ["input", "minSpend"], "code": "INVALID_THRESHOLD"}]
        assert (await create_tier(tenure, name="Iron", rank=8, discountPercent=120))["userErrors"][0]["field"] == \
            ["input", "discountPercent"]
        for n, amount in enumerate((10_000, 60_000, 90_000, 150_000)):
            await record_order(tenure, await new_customer(tenure, f"C{n}"), f"S{n}", amount)
        data = await tenure.ok("""{ simulateTiers(input: {months: 12, tiers: [
            {name: "Silver", rank: 1, minSpend: 80000}, {name: "Gold", rank: 2, minSpend: 140000}]}) {
            customers distribution { name customers } } }""")
        assert data["simulateTiers"] == {"customers": 4, "distribution": [
            {"name": "(none)", "customers": 2}, {"name": "Silver", "customers": 1}, {"name": "Gold", "customers": 1}]}
        dist = await tenure.ok("{ tierDistribution { tier { name } customers } }")
        assert [d["customers"] for d in dist["tierDistribution"]] == [0, 1, 2, 1]


async def test_lowering_a_threshold_lifts_members_at_the_next_review(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["tiers"]) as tenure:
        ids = await standard_tiers(tenure)
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "U1", 80_000)
        assert (await tier_of(tenure, cid))["tier"]["name"] == "Silver"
        changed = await tenure.ok("""mutation($i: UpdateTierInput!) { updateTier(input: $i) { tier { name }
            userErrors { field } } }""", {"i": {"id": ids["Gold"], "tier": {"name": "Gold", "rank": 2,
                                                                             "minSpend": 75_000}}})
        assert changed["updateTier"] == {"tier": {"name": "Gold"}, "userErrors": []}
        await run_job(tenure, "tiers.review")
        gold = await tier_of(tenure, cid)
        assert gold["tier"]["name"] == "Gold" and gold["reason"].startswith("review: spend 800.00 USD")


async def test_a_dinar_business_reads_its_amounts_in_fils(make_tenure: Callable[..., Any]) -> None:
    """The Kuwaiti dinar has 1,000 fils: reasons and what-if messages say 800.000 KWD, not 8000.00."""
    async with make_tenure(plugins=["tiers"], env=NOW, currency="KWD") as tenure:
        await create_tier(tenure, name="Silver", rank=1, minSpend=500_000)
        await create_tier(tenure, name="Gold", rank=2, minSpend=1_000_000)
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "K1", 800_000, currency="KWD")
        held = await tenure.ok(TIER, {"id": str(cid), "spend": 200_000})
        tier = held["customer"]["tier"]
    assert tier["tier"]["name"] == "Silver"
    assert "spend 800.000 KWD" in tier["reason"]
    assert tier["whatIf"]["message"] == "One more order of 200.000 KWD reaches Gold"


def test_money_reads_in_each_currency_s_own_minor_unit() -> None:
    from tenure.core.money import money_text

    assert [money_text(125_000, "EUR"), money_text(125_000, "KWD"), money_text(4_000, "JPY"),
            money_text(-1_505, "USD"), money_text(7, "BHD")] == [
        "1250.00 EUR", "125.000 KWD", "4000 JPY", "-15.05 USD", "0.007 BHD"]


async def test_an_order_reads_its_customer_s_membership_once(make_tenure: Callable[..., Any]) -> None:
    """Re-qualifying locks the membership; counting the points at the tier's multiplier then
    takes it from there, whether the customer had one, has just joined, or has none."""
    async with make_tenure(plugins=["loyalty", "tiers"], env=NOW) as tenure:
        await create_tier(tenure, name="Gold", rank=1, minSpend=100_000, pointsMultiplier=200)
        cid = await new_customer(tenure)
        for external_id, amount, balance in (("N1", 20_000, 200), ("N2", 90_000, 200 + 1_800),
                                             ("N3", 10_000, 200 + 1_800 + 200)):
            with tenure.count_statements() as counted:
                await record_order(tenure, cid, external_id, amount)
            reads = [s for s in counted.statements
                     if s.lstrip().upper().startswith("SELECT") and "FROM tier_memberships" in s]
            assert len(reads) == 1, (external_id, reads)
            assert (await points(tenure, cid))["balance"] == balance


def test_a_tier_lapses_when_the_orders_left_in_its_window_fall_short() -> None:
    """``lapses_at`` against its definition, on random histories with orders at the same
    moment: the orders leave the window oldest first, those of one moment together, and the
    tier lapses at the first departure after which the orders still inside no longer reach it."""
    rng = random.Random(7)
    now = datetime(2026, 6, 1, tzinfo=UTC)

    def by_definition(tier: Any, orders: list[tuple[datetime, int]], points: int) -> datetime | None:
        if tier.min_spend is None and tier.min_orders is None:
            return None
        window = timedelta(days=tier.window_days)
        inside = sorted(o for o in orders if now - window < o[0] <= now)
        for at, _ in inside:
            later = [amount for when, amount in inside if when > at]
            checks = [c for c in (None if tier.min_spend is None else sum(later) >= tier.min_spend,
                                  None if tier.min_orders is None else len(later) >= tier.min_orders,
                                  None if tier.min_points is None else points >= tier.min_points) if c is not None]
            if not (all(checks) if tier.require_all else any(checks)):
                return at + window
        return now

    for _ in range(2000):
        tier = SimpleNamespace(min_spend=rng.choice([None, 1_000, 50_000]), min_orders=rng.choice([None, 1, 3, 8]),
                               min_points=rng.choice([None, 100]), window_days=rng.choice([30, 365]),
                               require_all=rng.random() < 0.5)
        moments = [now - timedelta(days=rng.randrange(0, 500)) for _ in range(rng.randrange(0, 6))]
        orders = [(rng.choice(moments), rng.choice([500, 9_000, 40_000])) for _ in range(rng.randrange(0, 15))
                  if moments]
        points = rng.choice([0, 200])
        figures = qualify.Figures(orders, {tier.window_days: points})
        assert qualify.lapses_at(tier, figures, now) == by_definition(tier, orders, points), (tier, orders)
