"""NPS surveys end to end: invitations after an order over a real SMTP server, throttling,
single-use links answered anonymously or by a member, follow-up tasks, the report."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tenure.core.clock import FrozenClock
from tenure.plugins.nps.service import latest_scores
from tenure.testing import TenureHarness
from tests.core.test_messages import MESSAGES, customer, owner
from tests.support.receivers import smtp_server

SUBMIT = """mutation($input: SubmitSurveyResponseInput!) { submitSurveyResponse(input: $input) {
  response { score category comment survey { name } } userErrors { field message code } } }"""
CREATE = """mutation($input: CreateSurveyInput!) { createSurvey(input: $input) {
  survey { id scale trigger } userErrors { field message code } } }"""


async def order(tenure: TenureHarness, customer_id: int, ref: str) -> None:
    data = await tenure.ok(
        """mutation($c: ID!, $x: String!) { recordOrder(input: {customerId: $c, channel: "web", externalId: $x,
             currency: "USD", lines: [{sku: "tea", quantity: 1, unitPrice: 900}]}) { userErrors { message } } }""",
        {"c": str(customer_id), "x": ref})
    assert data["recordOrder"]["userErrors"] == []


async def run_due(tenure: TenureHarness, label: str) -> None:
    async with tenure.transaction() as ctx:
        await ctx.enqueue("nps.send_due", {}, dedupe_key=f"test:{label}")
    await tenure.run_jobs()


def token_in(message: Any) -> str:
    found = re.search(r"token=(\S+)", message.get_content())
    assert found, message.get_content()
    return found.group(1)


async def test_survey_after_an_order_answered_once_with_follow_up_and_report(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    with smtp_server() as mailbox:
        async with make_tenure(plugins=["nps"], smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            created = await tenure.ok(CREATE, {"input": {"name": "After purchase", "delayDays": 3, "throttleDays": 30}})
            assert created["createSurvey"]["survey"]["trigger"] == "AFTER_ORDER"
            olga = await owner(tenure, "olga@shop.test")
            ada = await customer(tenure, "Ada", "ada@example.com", owner_id=olga)
            ben = await customer(tenure, "Ben", "ben@example.com")
            cy = await customer(tenure, "Cy", "cy@example.com", consent=False)
            for cid in (ada, ben, cy):
                await order(tenure, cid, f"A-{cid}")
            await run_due(tenure, "day0")
            assert mailbox.messages == []  # not due for three days
            frozen_clock.advance(days=3)
            await run_due(tenure, "day3")
            await run_due(tenure, "day3-again")
            [to_ada] = mailbox.to("ada@example.com")
            assert "How likely are you to recommend us" in to_ada.get_content()
            [to_ben] = mailbox.to("ben@example.com")
            assert mailbox.to("cy@example.com") == []
            surveys = await tenure.ok(f'{{ customer(id: "{cy}") {{ surveys {{ status skipReason }} }} }}')
            [cy_invite] = surveys["customer"]["surveys"]
            assert cy_invite["status"] == "SKIPPED" and "consented to email" in cy_invite["skipReason"]

            # A second order inside the throttle window asks nobody again.
            frozen_clock.advance(days=1)
            await order(tenure, ada, "A-second")
            frozen_clock.advance(days=3)
            await run_due(tenure, "day7")
            assert len(mailbox.to("ada@example.com")) == 1

            token = token_in(to_ada)
            refused = []
            for variables in ({"token": token, "score": 11}, {"token": token[:-3] + "AAA", "score": 3},
                              {"token": "garbage", "score": 3}):
                answer = await tenure.gql(SUBMIT, {"input": variables})  # anonymous: no credentials at all
                refused.append(answer["data"]["submitSurveyResponse"]["userErrors"][0])
            assert refused[0]["field"] == ["input", "score"] and "from 0 to 10" in refused[0]["message"]
            assert [e["code"] for e in refused[1:]] == ["INVALID_TOKEN", "INVALID_TOKEN"]
            assert await tenure.scalar("SELECT count(*) FROM nps_responses") == 0

            answer = await tenure.gql(SUBMIT, {"input": {"token": token, "score": 3, "comment": "Slow delivery"}})
            result = answer["data"]["submitSurveyResponse"]
            assert result["userErrors"] == []
            assert result["response"]["category"] == "detractor"
            again = await tenure.gql(SUBMIT, {"input": {"token": token, "score": 9}})
            assert again["data"]["submitSurveyResponse"]["userErrors"][0]["code"] == "ALREADY_ANSWERED"

            tasks = await tenure.ok("""{ tasks(filter: {source: "nps"}) { nodes { title reason assignee { email }
                                        customer { name } } } }""")
            [task] = tasks["tasks"]["nodes"]
            assert task["assignee"]["email"] == "olga@shop.test" and task["customer"]["name"] == "Ada"
            assert "3/10" in task["title"] and "Slow delivery" in task["reason"]
            timeline = await tenure.ok(f'{{ customer(id: "{ada}") {{ timeline {{ nodes {{ kind summary }} }} }} }}')
            assert any("3/10" in e["summary"] for e in timeline["customer"]["timeline"]["nodes"])

            ben_token = token_in(to_ben)
            wrong = await tenure.ok(SUBMIT, {"input": {"token": ben_token, "score": 10}}, key=tenure.member_token(ada))
            assert wrong["submitSurveyResponse"]["userErrors"][0]["code"] == "FORBIDDEN"
            mine = await tenure.ok("{ me { openSurveys { question token } } }", key=tenure.member_token(ben))
            [open_survey] = mine["me"]["openSurveys"]
            good = await tenure.ok(SUBMIT, {"input": {"token": open_survey["token"], "score": 10}},
                                   key=tenure.member_token(ben))
            assert good["submitSurveyResponse"]["response"]["category"] == "promoter"
            assert (await tenure.ok("{ me { openSurveys { token } } }", key=tenure.member_token(ben)))["me"] == {
                "openSurveys": []}

            report = await tenure.ok("""{ npsReport(from: "2026-06-01", to: "2026-06-30", groupBy: WEEK) {
                responses promoters passives detractors nps invitationsSent responseRate
                trend { start responses nps } } }""")
            r = report["npsReport"]
            assert (r["responses"], r["promoters"], r["detractors"], r["nps"]) == (2, 1, 1, 0.0)
            assert r["invitationsSent"] == 2 and r["responseRate"] == 1.0
            assert r["trend"][0]["start"] == "2026-06-01" and len(r["trend"]) == 5
            assert sum(t["responses"] for t in r["trend"]) == 2
            async with tenure.db.reader() as session:
                latest = await latest_scores(session, [ada, ben, cy])
            assert {k: (s.score, s.category) for k, s in latest.items()} == {
                ada: (3, "detractor"), ben: (10, "promoter")}
            sent = await tenure.ok(MESSAGES, {"f": {"template": "nps.invitation", "status": "SENT"}})
            assert sent["messages"]["totalCount"] == 2


async def test_csat_survey_to_a_segment(make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    with smtp_server() as mailbox:
        async with make_tenure(plugins=["nps"], smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            created = await tenure.ok(CREATE, {"input": {"name": "Support", "question": "Happy with support?",
                                                         "scale": "CSAT", "trigger": "MANUAL"}})
            survey_id = created["createSurvey"]["survey"]["id"]
            ada = await customer(tenure, "Ada", "ada@example.com")
            await customer(tenure, "Ben", "ben@example.com")
            await tenure.ok("""mutation($c: [ID!]!) { tagCustomers(input: {customerIds: $c, add: ["support"]}) {
                               userErrors { message } } }""", {"c": [str(ada)]})
            sent = await tenure.ok("""mutation($s: ID!) { sendSurvey(input: {surveyId: $s, tag: "support"}) {
                                      invited userErrors { message } } }""", {"s": survey_id})
            assert sent["sendSurvey"]["invited"] == 1
            # Sent at once: the queued work alone delivers it, without the scheduled run.
            await tenure.run_jobs()
            assert len(mailbox.messages) == 1
            token = token_in(mailbox.to("ada@example.com")[0])
            out_of_scale = await tenure.gql(SUBMIT, {"input": {"token": token, "score": 6}})
            [error] = out_of_scale["data"]["submitSurveyResponse"]["userErrors"]
            assert error["field"] == ["input", "score"] and error["message"].startswith("must be from 1 to 5")
            low = await tenure.gql(SUBMIT, {"input": {"token": token, "score": 2, "comment": "No answer for days"}})
            assert low["data"]["submitSurveyResponse"]["response"]["category"] == "dissatisfied"
            tasks = await tenure.ok('{ tasks(filter: {source: "nps"}) { nodes { title reason } } }')
            assert "2/5" in tasks["tasks"]["nodes"][0]["title"]
            bad = await tenure.ok(CREATE, {"input": {"name": "x", "trigger": "SCHEDULE"}})
            assert bad["createSurvey"]["userErrors"][0]["field"] == ["input", "everyDays"]


async def test_surveys_on_a_page_of_customers_cost_the_same_statements(
        make_tenure: Callable[..., Any]) -> None:
    query = "{ customers(first: 50) { nodes { surveys { status survey { name } response { score } } } } }"
    async with make_tenure(plugins=["nps"]) as tenure:
        await tenure.ok(CREATE, {"input": {"name": "After purchase", "delayDays": 0}})
        counts = []
        for batch in (2, 10):
            for i in range(batch):
                cid = await customer(tenure, f"C{batch}-{i}", f"c{batch}-{i}@example.com")
                await order(tenure, cid, f"O-{batch}-{i}")
            await tenure.ok(query)
            with tenure.count_statements() as counter:
                data = await tenure.ok(query)
            counts.append(counter.count)
            assert all(n["surveys"][0]["survey"]["name"] == "After purchase" for n in data["customers"]["nodes"])
        assert counts[0] == counts[1]


async def test_scheduled_survey_asks_its_segment_no_more_often_than_the_throttle(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    with smtp_server() as mailbox:
        async with make_tenure(plugins=["nps"], smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            created = await tenure.ok(CREATE, {"input": {"name": "Monthly pulse", "trigger": "SCHEDULE",
                                                         "everyDays": 30, "segmentTag": "VIP", "throttleDays": 45}})
            assert created["createSurvey"]["userErrors"] == []
            vip = await customer(tenure, "Vi", "vi@example.com")
            await customer(tenure, "No", "no@example.com")
            await tenure.ok("""mutation($c: [ID!]!) { tagCustomers(input: {customerIds: $c, add: ["vip"]}) {
                               userErrors { message } } }""", {"c": [str(vip)]})
            asked_on = []
            for day in range(100):
                before = len(mailbox.messages)
                await run_due(tenure, f"day{day}")
                if len(mailbox.messages) > before:
                    asked_on.append(day)
                frozen_clock.advance(days=1)
            # Runs on days 0, 30, 60 and 90; the one on day 30 falls inside the 45-day throttle.
            assert asked_on == [0, 60]
            assert mailbox.to("no@example.com") == []
            surveys = await tenure.ok(f'{{ customer(id: "{vip}") {{ surveys {{ status skipReason }} }} }}')
            statuses = [s["status"] for s in surveys["customer"]["surveys"]]
            assert statuses == ["SKIPPED", "SENT", "SKIPPED", "SENT"]  # newest first; day 90 is 30 days after 60
