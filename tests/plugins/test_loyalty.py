"""Loyalty points through the API: earning, pending points, redemption, refunds and the
ledger's story of where every point went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenure.core.clock import FrozenClock
from tenure.testing import pk_of
from tests.plugins.loyalty_support import (
    LEDGER,
    NOW,
    adjust,
    cancel,
    check_invariants,
    create_reward,
    create_rule,
    ledger,
    merge,
    new_customer,
    points,
    record_order,
    redeem,
    refund,
    run_job,
)


async def test_points_stay_pending_until_the_return_window_closes(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env={"TENURE_LOYALTY_RETURN_WINDOW_DAYS": "14"}) as tenure:
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "A1", 12_345)
        assert await points(tenure, cid) == {"balance": 0, "pending": 123, "lifetimeEarned": 123,
                                             "qualifying": 123, "shortfall": 0, "expiringSoon": []}
        refused = await redeem(tenure, cid, 10)
        assert refused["userErrors"] == [{"field": ["input", "points"], "code": "INSUFFICIENT_POINTS",
                                          "message": "the balance is 0 points, 10 asked"}]
        frozen_clock.advance(days=13)
        await run_job(tenure, "loyalty.release_pending")
        assert (await points(tenure, cid))["balance"] == 0
        frozen_clock.advance(days=2)
        await run_job(tenure, "loyalty.release_pending")
        await run_job(tenure, "loyalty.release_pending")
        assert (await points(tenure, cid))["balance"] == 123
        assert (await points(tenure, cid))["pending"] == 0
        assert await check_invariants(tenure) == []


async def test_earn_rules_rate_multipliers_and_first_order_bonus(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        assert (await create_rule(tenure, name="double", kind="base", points=2, perAmount=100))["userErrors"] == []
        assert (await create_rule(tenure, name="vip", kind="multiplier", percent=150, tag="VIP"))["userErrors"] == []
        assert (await create_rule(tenure, name="tea week", kind="multiplier", percent=300, category="tea",
                                  startsAt="2026-05-30T00:00:00Z", endsAt="2026-06-07T00:00:00Z"))["userErrors"] == []
        assert (await create_rule(tenure, name="welcome", kind="bonus", points=50, trigger="first_order"))[
            "userErrors"] == []
        bad = await create_rule(tenure, name="broken", kind="multiplier", percent=-5)
        assert bad["userErrors"][0]["field"] == ["input", "percent"]
        bad = await create_rule(tenure, name="broken", kind="bonus", points=5, trigger="anniversary")
        assert bad["userErrors"][0]["field"] == ["input", "trigger"]
        rules = await tenure.ok("{ earnRules { name } }")
        assert {r["name"] for r in rules["earnRules"]} == {"double", "vip", "tea week", "welcome"}

        plain = await new_customer(tenure, "Plain")
        vip = await new_customer(tenure, "Vera", tags=["vip"])
        lines = [{"sku": "tea", "quantity": 1, "unitPrice": 1000, "category": "tea"},
                 {"sku": "cup", "quantity": 1, "unitPrice": 1000, "category": "cups"}]
        # 20.00 at 2/100: tea line 20 x 3 = 60, cups line 20: 80, plus the first-order bonus.
        await record_order(tenure, plain, "P1", 2000, lines)
        assert (await points(tenure, plain))["balance"] == 80 + 50
        await record_order(tenure, vip, "V1", 2000, lines)
        assert (await points(tenure, vip))["balance"] == 120 + 50
        frozen_clock.advance(days=7)
        await record_order(tenure, plain, "P2", 2000, lines)
        assert (await points(tenure, plain))["balance"] == 130 + 40
        entries = await ledger(tenure, plain)
        assert [(e["kind"], e["points"], e["source"]) for e in entries] == [
            ("EARN", 40, "order"), ("EARN", 50, "order"), ("EARN", 80, "order")]


async def test_spending_draws_the_oldest_lots_first(make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        lots = []
        for amount in (10, 20, 30):
            lots.append((await adjust(tenure, cid, amount))["entry"]["id"])
            frozen_clock.advance(days=1)
        spent = await redeem(tenure, cid, 25)
        assert spent["balance"] == 35
        assert spent["entry"]["draws"] == [{"lotId": lots[0], "points": 10}, {"lotId": lots[1], "points": 15}]
        over = await adjust(tenure, cid, -36)
        assert over["userErrors"][0]["field"] == ["input", "points"] and over["balance"] is None
        assert (await points(tenure, cid))["balance"] == 35
        remaining = {e["id"]: e["remaining"] for e in await ledger(tenure, cid) if e["kind"] == "ADJUST"}
        assert remaining == {lots[0]: 0, lots[1]: 5, lots[2]: 30}


async def test_refunds_take_back_points_proportionally_and_cancel_takes_the_rest(
        make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        order = await record_order(tenure, cid, "R1", 10_000)
        await refund(tenure, order, 2_500)
        assert (await points(tenure, cid))["balance"] == 75
        await refund(tenure, order, 2_500)
        assert (await points(tenure, cid))["balance"] == 50
        await refund(tenure, order)
        assert (await points(tenure, cid))["balance"] == 0
        other = await record_order(tenure, cid, "R2", 4_000)
        await cancel(tenure, other)
        summary = await points(tenure, cid)
        assert summary["balance"] == 0 and summary["qualifying"] == 0 and summary["shortfall"] == 0
        reversals = [e for e in await ledger(tenure, cid) if e["kind"] == "REVERSE"]
        assert sorted(-e["points"] for e in reversals) == [25, 25, 40, 50]
        assert all(pk_of(e["orderId"]) in (order, other) for e in reversals)
        assert await check_invariants(tenure) == []


async def test_buy_earn_spend_refund_leaves_a_debt_that_new_points_pay(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        order = await record_order(tenure, cid, "X1", 10_000)
        assert (await redeem(tenure, cid, 100))["balance"] == 0
        await refund(tenure, order)
        summary = await points(tenure, cid)
        assert (summary["balance"], summary["shortfall"]) == (0, 100)
        reversal = next(e for e in await ledger(tenure, cid) if e["kind"] == "REVERSE")
        assert reversal["shortfall"] == 100 and reversal["points"] == 0
        await record_order(tenure, cid, "X2", 6_000)
        summary = await points(tenure, cid)
        assert (summary["balance"], summary["shortfall"]) == (0, 40)
        await record_order(tenure, cid, "X3", 6_000)
        summary = await points(tenure, cid)
        assert (summary["balance"], summary["shortfall"]) == (20, 0)
        report = (await tenure.ok("{ pointsLiability { issued redeemed reversed outstanding shortfall pending } }"))[
            "pointsLiability"]
        assert report == {"issued": 220, "redeemed": 100, "reversed": 100, "outstanding": 20, "shortfall": 0,
                          "pending": 0}
        assert await check_invariants(tenure) == []


async def test_points_expire_oldest_first_after_a_reminder(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    env = {**NOW, "TENURE_LOYALTY_EXPIRY_DAYS": "365", "TENURE_LOYALTY_REMINDER_DAYS": "30"}
    async with make_tenure(plugins=["loyalty"], env=env) as tenure:
        cid = await new_customer(tenure, emails=["ada@example.com"], consent={"email": True})
        await record_order(tenure, cid, "E1", 5_000)
        frozen_clock.advance(days=100)
        await record_order(tenure, cid, "E2", 7_000)
        frozen_clock.advance(days=240)
        await run_job(tenure, "loyalty.expire_points")
        summary = await points(tenure, cid)
        assert summary["balance"] == 120
        assert [s["points"] for s in summary["expiringSoon"]] == [50]
        await run_job(tenure, "loyalty.expire_points")
        reminders = await tenure.scalar("SELECT count(*) FROM events WHERE type = 'loyalty.points_expiring'")
        assert reminders == 1
        body = await tenure.scalar("SELECT body FROM messages WHERE template = 'loyalty.points_expiring'")
        assert "50 of your points expire on 2027-06-01" in body
        frozen_clock.advance(days=26)
        await run_job(tenure, "loyalty.expire_points")
        await run_job(tenure, "loyalty.expire_points")
        assert (await points(tenure, cid))["balance"] == 70
        expired = [e for e in await ledger(tenure, cid) if e["kind"] == "EXPIRE"]
        assert len(expired) == 1 and expired[0]["points"] == -50
        first_lot = (await ledger(tenure, cid))[-1]
        assert expired[0]["draws"] == [{"lotId": first_lot["id"], "points": 50}]
        report = (await tenure.ok("{ pointsLiability { expired outstanding outstandingValue { amount } } }"))[
            "pointsLiability"]
        assert report == {"expired": 50, "outstanding": 70, "outstandingValue": {"amount": 70}}


async def test_rewards_respect_stock_and_per_customer_limit(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        mug = await create_reward(tenure, name="Mug", cost=30, stock=2, perCustomerLimit=1)
        first, second, third = [await new_customer(tenure, n) for n in ("A", "B", "C")]
        for cid in (first, second, third):
            await adjust(tenure, cid, 100)
        redeem_reward = """mutation($i: RedeemRewardInput!) { redeemReward(input: $i) { balance
            userErrors { field code } } }"""
        ok = await tenure.ok(redeem_reward, {"i": {"customerId": str(first), "rewardId": str(mug)}})
        assert ok["redeemReward"] == {"balance": 70, "userErrors": []}
        again = await tenure.ok(redeem_reward, {"i": {"customerId": str(first), "rewardId": str(mug)}})
        assert again["redeemReward"]["userErrors"] == [{"field": ["input", "rewardId"], "code": "LIMIT_REACHED"}]
        await tenure.ok(redeem_reward, {"i": {"customerId": str(second), "rewardId": str(mug)}})
        gone = await tenure.ok(redeem_reward, {"i": {"customerId": str(third), "rewardId": str(mug)}})
        assert gone["redeemReward"]["userErrors"] == [{"field": ["input", "rewardId"], "code": "OUT_OF_STOCK"}]
        assert (await points(tenure, third))["balance"] == 100
        catalogue = await tenure.ok("{ rewards { name stock } }")
        assert catalogue["rewards"] == [{"name": "Mug", "stock": 0}]


async def test_redeem_with_an_idempotency_key_spends_once(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        await adjust(tenure, cid, 100)
        first = await redeem(tenure, cid, 30, "pos-77")
        again = await redeem(tenure, cid, 30, "pos-77")
        assert first["entry"]["id"] == again["entry"]["id"] and again["balance"] == 70
        changed = await redeem(tenure, cid, 31, "pos-77")
        assert changed["userErrors"][0]["field"] == ["input", "idempotencyKey"]
        assert len([e for e in await ledger(tenure, cid) if e["kind"] == "REDEEM"]) == 1


async def test_merge_adds_up_ledgers_and_keeps_the_story(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        keep, fold = await new_customer(tenure, "Keep"), await new_customer(tenure, "Fold")
        await record_order(tenure, keep, "K1", 3_000)
        order = await record_order(tenure, fold, "F1", 5_000)
        await redeem(tenure, fold, 20, "same-key")
        await redeem(tenure, keep, 10, "same-key")
        await merge(tenure, keep, fold)
        summary = await points(tenure, keep)
        assert (summary["balance"], summary["lifetimeEarned"]) == (50, 80)
        assert len(await ledger(tenure, keep)) == 4
        await refund(tenure, order)
        assert (await points(tenure, keep))["balance"] == 0
        assert (await points(tenure, keep))["shortfall"] == 0
        assert await check_invariants(tenure) == []


async def test_referral_and_birthday_bonuses_come_once(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        await create_rule(tenure, name="friends", kind="bonus", points=200, trigger="referral")
        await create_rule(tenure, name="cake", kind="bonus", points=75, trigger="birthday")
        ada = await new_customer(tenure, "Ada", birthday="1990-06-02")
        bob = await new_customer(tenure, "Bob", birthday="1985-01-01")
        award = """mutation($i: AwardReferralInput!) { awardReferral(input: $i) { balance userErrors { field } } }"""
        first = await tenure.ok(award, {"i": {"referrerId": str(ada), "referredCustomerId": str(bob)}})
        again = await tenure.ok(award, {"i": {"referrerId": str(ada), "referredCustomerId": str(bob)}})
        assert first["awardReferral"]["balance"] == again["awardReferral"]["balance"] == 200
        other = await tenure.ok(award, {"i": {"referrerId": str(bob), "referredCustomerId": str(bob)}})
        assert other["awardReferral"]["userErrors"] == [{"field": ["input", "referredCustomerId"]}]
        await run_job(tenure, "loyalty.birthday_bonuses")
        assert (await points(tenure, ada))["balance"] == 200
        frozen_clock.advance(days=1)
        await run_job(tenure, "loyalty.birthday_bonuses")
        await run_job(tenure, "loyalty.birthday_bonuses")
        assert (await points(tenure, ada))["balance"] == 275
        assert (await points(tenure, bob))["balance"] == 0


async def test_simulate_replays_a_rule_without_writing(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        order = await record_order(tenure, cid, "S1", 10_000)
        await record_order(tenure, cid, "S2", 5_000)
        await refund(tenure, order, 5_000)
        frozen_clock.advance(days=30)
        before = await tenure.scalar("SELECT count(*) FROM loyalty_entries")
        data = await tenure.ok("""{ simulateEarnRule(input: {months: 3, rule: {name: "triple", kind: "base",
            points: 3, perAmount: 100}}) { orders pointsIssued pointsReversed liability currentRulesPoints
            liabilityValue { amount currency } } }""")
        assert data["simulateEarnRule"] == {"orders": 2, "pointsIssued": 450, "pointsReversed": 150,
                                            "liability": 300, "currentRulesPoints": 150,
                                            "liabilityValue": {"amount": 300, "currency": "USD"}}
        assert await tenure.scalar("SELECT count(*) FROM loyalty_entries") == before
        assert await tenure.scalar("SELECT count(*) FROM loyalty_earn_rules") == 0
        bad = await tenure.gql("""{ simulateEarnRule(input: {months: 0, rule: {name: "x", kind: "base", points: 1}})
            { orders } }""", key=await tenure.key("admin"))
        assert bad["errors"][0]["extensions"]["field"] == "months"


async def test_plugin_off_leaves_no_trace(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[]) as tenure:
        answer = await tenure.gql("{ customers(first: 1) { edges { node { points { balance } } } } }",
                                  key=await tenure.key("admin"))
        assert "Cannot query field 'points'" in answer["errors"][0]["message"]


async def test_refund_inside_the_return_window_takes_from_pending_points(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env={"TENURE_LOYALTY_RETURN_WINDOW_DAYS": "14"}) as tenure:
        cid = await new_customer(tenure)
        order = await record_order(tenure, cid, "W1", 10_000)
        await refund(tenure, order, 4_000)
        summary = await points(tenure, cid)
        assert (summary["balance"], summary["pending"], summary["qualifying"]) == (0, 60, 60)
        frozen_clock.advance(days=15)
        await run_job(tenure, "loyalty.release_pending")
        summary = await points(tenure, cid)
        assert (summary["balance"], summary["pending"]) == (60, 0)
        await refund(tenure, order)
        assert (await points(tenure, cid))["balance"] == 0
        assert await check_invariants(tenure) == []


async def test_reaching_a_reward_and_expiring_points_reach_webhook_subscribers(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        hook = await tenure.ok("""mutation { createWebhookSubscription(input: {url: "http://127.0.0.1:9/hook",
            eventTypes: ["loyalty.*"]}) { userErrors { message } } }""")
        assert hook["createWebhookSubscription"]["userErrors"] == []
        await create_reward(tenure, name="Tote bag", cost=150)
        cid = await new_customer(tenure, emails=["ada@example.com"], consent={"email": True})
        await record_order(tenure, cid, "H1", 10_000)
        assert await tenure.scalar("SELECT count(*) FROM events WHERE type = 'loyalty.reward_reachable'") == 0
        await record_order(tenure, cid, "H2", 6_000)
        await record_order(tenure, cid, "H3", 1_000)
        event_id = await tenure.scalar("SELECT id FROM events WHERE type = 'loyalty.reward_reachable'")
        assert await tenure.scalar("SELECT count(*) FROM events WHERE type = 'loyalty.reward_reachable'") == 1
        deliveries = await tenure.scalar(
            "SELECT count(*) FROM outbox WHERE job = 'core.deliver_webhook' AND dedupe_key LIKE :k", k=f"%:{event_id}")
        assert deliveries == 1
        body = await tenure.scalar("SELECT body FROM messages WHERE template = 'loyalty.reward_reachable'")
        assert "your 160 points are enough for Tote bag (150 points)" in body


async def test_the_ledger_pages_with_cursors(make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        for n in range(5):
            await adjust(tenure, cid, n + 1, reason=f"visit {n}")
            frozen_clock.advance(minutes=1)
        seen, after = [], None
        while True:
            page = (await tenure.ok(LEDGER, {"id": str(cid), "first": 2, "after": after}))["customer"]["pointsLedger"]
            assert page["totalCount"] == 5
            seen += [e["node"]["points"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [5, 4, 3, 2, 1]


async def test_the_invariant_check_names_a_tampered_balance(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        await adjust(tenure, cid, 40)
        assert await check_invariants(tenure) == []
        async with tenure.db.transaction() as session:
            from sqlalchemy import text

            await session.execute(text("UPDATE loyalty_accounts SET balance = 55 WHERE customer_id = :c"), {"c": cid})
        problems = await check_invariants(tenure)
        assert len(problems) == 1 and f"customer {cid}: balance 55" in problems[0]
        assert "ledger adds up to 40 posted" in problems[0]


async def test_a_refund_after_the_points_expired_owes_nothing_for_them(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["loyalty"], env={**NOW, "TENURE_LOYALTY_EXPIRY_DAYS": "30"}) as tenure:
        cid = await new_customer(tenure)
        order = await record_order(tenure, cid, "Z1", 5_000)
        frozen_clock.advance(days=31)
        await run_job(tenure, "loyalty.expire_points")
        await refund(tenure, order)
        summary = await points(tenure, cid)
        assert (summary["balance"], summary["shortfall"]) == (0, 0)
        assert await check_invariants(tenure) == []


async def test_rules_and_rewards_change_through_the_api(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        rule = (await create_rule(tenure, name="triple", kind="base", points=3, perAmount=100))["rule"]
        cid = await new_customer(tenure)
        await record_order(tenure, cid, "C1", 1_000)
        assert (await points(tenure, cid))["balance"] == 30
        update = """mutation($i: UpdateEarnRuleInput!) { updateEarnRule(input: $i) { rule { active }
            userErrors { field } } }"""
        off = await tenure.ok(update, {"i": {"id": rule["id"], "rule": {"name": "triple", "kind": "base", "points": 3,
                                                                       "active": False}}})
        assert off["updateEarnRule"] == {"rule": {"active": False}, "userErrors": []}
        await record_order(tenure, cid, "C2", 1_000)
        assert (await points(tenure, cid))["balance"] == 40
        reward = await create_reward(tenure, name="Cap", cost=10, stock=1)
        changed = await tenure.ok("""mutation($i: UpdateRewardInput!) { updateReward(input: $i) {
            reward { stock cost } userErrors { field } } }""",
            {"i": {"id": str(reward), "reward": {"name": "Cap", "cost": 25, "stock": 5}}})
        assert changed["updateReward"] == {"reward": {"stock": 5, "cost": 25}, "userErrors": []}
        bad = await tenure.ok("""mutation($i: UpdateRewardInput!) { updateReward(input: $i) {
            userErrors { field } } }""", {"i": {"id": str(reward), "reward": {"name": "Cap", "cost": 0}}})
        assert bad["updateReward"]["userErrors"] == [{"field": ["input", "cost"]}]
