"""Renewal reminders over a simulated year (frozen clock, real SMTP server): 90/60/30 days
before the end, once each, to the customer and the owner; late contracts get only the
reminders still ahead; a moved end date re-arms them; lapses, auto-renewals, the report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any

from tenure.core.clock import FrozenClock
from tenure.plugins.renewals.service import ending_without_renewal
from tenure.testing import TenureHarness
from tests.core.test_messages import customer, owner
from tests.support.receivers import smtp_server

CREATE = """mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) {
  subscription { id status endsOn value { amount currency } plan { code reminderDays } }
  userErrors { field message code } } }"""


async def subscribe(tenure: TenureHarness, customer_id: int, plan: str, starts: str, ends: str, *,
                    auto_renew: bool = False, value: int = 120000) -> str:
    data = await tenure.ok(CREATE, {"input": {"customerId": str(customer_id), "plan": plan, "value": value,
                                              "startsOn": starts, "endsOn": ends, "autoRenew": auto_renew}})
    assert data["createSubscription"]["userErrors"] == []
    return str(data["createSubscription"]["subscription"]["id"])


async def plans(tenure: TenureHarness) -> None:
    for code, days in (("pro", None), ("quarterly", [30])):
        data = await tenure.ok("""mutation($input: CreatePlanInput!) { createPlan(input: $input) {
                                  plan { code reminderDays } userErrors { field message } } }""",
                               {"input": {"code": code, "name": code.title(), "reminderDays": days}})
        assert data["createPlan"]["plan"]["reminderDays"] == (days or [90, 60, 30])


async def test_reminders_over_a_simulated_year(make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    with smtp_server() as mailbox:
        async with make_tenure(plugins=["renewals"], smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            await plans(tenure)
            olga = await owner(tenure, "olga@shop.test")
            ada = await customer(tenure, "Ada", "ada@example.com", owner_id=olga)
            ben = await customer(tenure, "Ben", "ben@example.com")
            cy = await customer(tenure, "Cy", "cy@example.com")
            dee = await customer(tenure, "Dee", "dee@example.com")
            sub_a = await subscribe(tenure, ada, "pro", "2026-03-01", "2027-03-01")
            sub_b = await subscribe(tenure, ben, "pro", "2025-07-16", "2026-07-16", value=5000)  # 45 days left
            sub_c = await subscribe(tenure, cy, "pro", "2025-12-01", "2026-12-01", value=7000)
            await subscribe(tenure, dee, "QUARTERLY", "2026-06-01", "2026-09-01", auto_renew=True, value=900)

            received: dict[str, list[str]] = defaultdict(list)
            seen = 0
            today = frozen_clock.now().date()
            while today <= date(2027, 6, 1):
                if today == date(2026, 11, 10):
                    moved = await tenure.ok("""mutation($id: ID!) { updateSubscription(input: {id: $id,
                        endsOn: "2027-05-01"}) { subscription { endsOn } userErrors { message } } }""", {"id": sub_c})
                    assert moved["updateSubscription"]["subscription"]["endsOn"] == "2027-05-01"
                if today == date(2027, 2, 15):
                    renewed = await tenure.ok("""mutation($id: ID!) { renewSubscription(input: {id: $id}) {
                        subscription { startsOn endsOn status } userErrors { message } } }""", {"id": sub_a})
                    assert renewed["renewSubscription"]["subscription"] == {
                        "startsOn": "2027-03-01", "endsOn": "2028-03-01", "status": "ACTIVE"}
                async with tenure.transaction() as ctx:
                    await ctx.enqueue("renewals.daily", {}, dedupe_key=f"test-day:{today}")
                await tenure.run_jobs()
                for rcpts, message in mailbox.messages[seen:]:
                    for rcpt in rcpts:
                        received[rcpt].append(f"{today} {message['Subject']}")
                seen = len(mailbox.messages)
                frozen_clock.advance(days=1)
                today = frozen_clock.now().date()

            def days(address: str) -> list[str]:
                return [line.split()[0] for line in received[address]]

            assert days("ada@example.com") == ["2026-12-01", "2026-12-31", "2027-01-30"]
            assert received["ada@example.com"][0].endswith("Your Pro renews on 2027-03-01")
            assert days("olga@shop.test") == ["2026-12-01", "2026-12-31", "2027-01-30"]
            assert "Renewal due: Ada" in received["olga@shop.test"][0]
            assert days("ben@example.com") == ["2026-06-16"]  # the 90- and 60-day ones had passed
            assert days("cy@example.com") == ["2026-09-02", "2026-10-02", "2026-11-01",
                                              "2027-01-31", "2027-03-02", "2027-04-01"]  # re-armed by the move
            assert days("dee@example.com") == ["2026-08-02", "2026-11-01", "2027-01-30", "2027-05-02"]
            assert len(set(mailbox.message_ids())) == len(mailbox.messages) == 17

            tasks = await tenure.ok("""{ tasks(first: 50, filter: {source: "renewals"}) {
                                       nodes { status customer { name } } } }""")
            per_customer: dict[str, list[str]] = defaultdict(list)
            for task in tasks["tasks"]["nodes"]:
                per_customer[task["customer"]["name"]].append(task["status"])
            assert per_customer["Ada"] == ["DONE"]  # one task, closed by the renewal
            assert per_customer["Ben"] == ["OPEN"] and len(per_customer["Cy"]) == 2
            assert per_customer["Dee"] == ["OPEN", "DONE", "DONE", "DONE"]  # newest first; the last term is open

            view = await tenure.ok(f"""{{ b: customer(id: "{ben}") {{ subscriptions {{ status }}
                timeline {{ nodes {{ summary }} }} }}
                a: customer(id: "{ada}") {{ subscriptions {{ status endsOn reminders {{ offsetDays }} }} }} }}""")
            assert view["b"]["subscriptions"] == [{"status": "LAPSED"}]
            assert any("lapsed" in e["summary"] for e in view["b"]["timeline"]["nodes"])
            assert [s["status"] for s in view["a"]["subscriptions"]] == ["RENEWED", "ACTIVE"]
            assert sorted(r["offsetDays"] for r in view["a"]["subscriptions"][0]["reminders"]) == [30, 60, 90]

            report = await tenure.ok("""{ renewalReport(from: "2026-06-01", to: "2027-05-31") {
                month ending renewed lapsed renewalRate revenueAtRisk { amount } revenueLost { amount } } }""")
            months = {m["month"]: m for m in report["renewalReport"]}
            assert len(months) == 12
            assert months["2026-07-01"]["lapsed"] == 1 and months["2026-07-01"]["renewalRate"] == 0.0
            assert months["2026-09-01"]["renewed"] == 1 and months["2026-09-01"]["renewalRate"] == 1.0
            assert months["2027-03-01"]["renewed"] == 2
            assert months["2027-05-01"]["revenueLost"]["amount"] == 7000
            lapsed = await tenure.ok("""{ subscriptions(filter: {status: LAPSED, endingBefore: "2027-06-01"}) {
                                        totalCount nodes { id } } }""")
            assert {n["id"] for n in lapsed["subscriptions"]["nodes"]} == {sub_b, sub_c}
            async with tenure.db.reader() as session:
                ending = await ending_without_renewal(session, [ada, ben, cy, dee], today=date(2028, 1, 1))
            assert list(ending) == [ada]  # Dee renews itself; Ben's and Cy's are over
            mine = await tenure.ok("{ me { subscriptions { endsOn plan { name } } } }", key=tenure.member_token(ada))
            assert mine["me"]["subscriptions"] == [{"endsOn": "2028-03-01", "plan": {"name": "Pro"}}]


async def test_bad_input_is_refused_and_nothing_written(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["renewals"]) as tenure:
        await plans(tenure)
        ada = await customer(tenure, "Ada", "ada@example.com")
        cases = [
            ({"plan": "gold"}, "plan", "not_found"),
            ({"endsOn": "2026-01-01"}, "endsOn", "invalid_range"),
            ({"value": -5}, "value", "invalid_amount"),
            ({"customerId": "99999"}, "customerId", "not_found"),
            ({"currency": "EUR"}, "currency", "unsupported_currency"),
        ]
        for change, field, code in cases:
            values = {"customerId": str(ada), "plan": "pro", "value": 100, "startsOn": "2026-02-01",
                      "endsOn": "2027-02-01", **change}
            data = await tenure.ok(CREATE, {"input": values})
            assert data["createSubscription"]["subscription"] is None
            [error] = data["createSubscription"]["userErrors"]
            assert (error["field"], error["code"]) == (["input", field], code.upper()), error
        assert (await tenure.ok("{ subscriptions { totalCount } }"))["subscriptions"]["totalCount"] == 0
        bad_plan = await tenure.ok("""mutation { createPlan(input: {code: "x", name: "X", reminderDays: [30, 0]}) {
                                      userErrors { field code } } }""")
        assert bad_plan["createPlan"]["userErrors"] == [{"field": ["input", "reminderDays"], "code": "INVALID_RANGE"}]
        sub = await subscribe(tenure, ada, "pro", "2026-02-01", "2027-02-01")
        cancel = """mutation($id: ID!) { cancelSubscription(input: {id: $id, reason: "moved away"}) {
                    subscription { status } userErrors { field code } } }"""
        assert (await tenure.ok(cancel, {"id": sub}))["cancelSubscription"]["subscription"]["status"] == "CANCELLED"
        again = await tenure.ok(cancel, {"id": sub})
        assert again["cancelSubscription"]["userErrors"] == [{"field": ["input", "id"], "code": "INVALID_STATUS"}]
        renew = await tenure.ok("""mutation($id: ID!) { renewSubscription(input: {id: $id}) {
                                   userErrors { field code } } }""", {"id": sub})
        assert renew["renewSubscription"]["userErrors"] == [{"field": ["input", "id"], "code": "INVALID_STATUS"}]
        assert (await tenure.ok("{ subscriptions { totalCount } }"))["subscriptions"]["totalCount"] == 1


async def test_subscriptions_on_a_page_of_customers_cost_the_same_statements(
        make_tenure: Callable[..., Any]) -> None:
    query = """{ customers(first: 50) { nodes { subscriptions { status plan { code }
                reminders { offsetDays } } } } }"""
    async with make_tenure(plugins=["renewals"]) as tenure:
        await plans(tenure)
        counts = []
        for batch in (2, 10):
            for i in range(batch):
                cid = await customer(tenure, f"C{batch}-{i}", f"c{batch}-{i}@example.com")
                await subscribe(tenure, cid, "pro", "2026-01-01", "2027-01-01")
            await tenure.ok(query)  # warm the key cache
            with tenure.count_statements() as counter:
                data = await tenure.ok(query)
            counts.append(counter.count)
            assert all(n["subscriptions"][0]["plan"]["code"] == "pro" for n in data["customers"]["nodes"])
        assert counts[0] == counts[1]
