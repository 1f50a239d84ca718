"""exportCustomer and eraseCustomer with every built-in plugin on: each plugin's rows about
the customer are in the export, erasure blanks their free text and keeps points, amounts
and ledgers (the invariants still hold), and another customer's data does not change."""

from __future__ import annotations

import re
from typing import Any

from tenure.core.checks import run_invariants
from tenure.testing import TenureHarness, freeze_time
from tests.plugins.churn_support import NOW, load_population
from tests.support.receivers import smtp_server

PLUGINS = ["loyalty", "tiers", "nps", "renewals", "churn"]
EXPORT = "query($id: ID!) { exportCustomer(id: $id) }"
ERASE = """mutation($id: ID!) { eraseCustomer(input: {customerId: $id}) { erasedAt userErrors { field message } } }"""
WORDS = "Ada Lovelace broke her kettle"


async def _ok(tenure: TenureHarness, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    data = await tenure.ok(query, variables)
    payload = next(iter(data.values()))
    assert payload.get("userErrors", []) == [], payload
    return payload  # type: ignore[no-any-return]


async def _activity(tenure: TenureHarness, mailbox: Any) -> dict[str, int]:
    """A tier, orders earning points, a hand-made adjustment and tier override, a
    subscription, a survey answered with a comment and a churn warning."""
    silver = await _ok(tenure, """mutation($i: TierInput!) { createTier(input: $i) { tier { id } userErrors {
        field message } } }""", {"i": {"name": "Silver", "rank": 1, "minSpend": 5000, "windowDays": 365}})
    gold = await _ok(tenure, """mutation($i: TierInput!) { createTier(input: $i) { tier { id } userErrors {
        field message } } }""", {"i": {"name": "Gold", "rank": 2, "minSpend": 900_000, "windowDays": 365}})
    assert silver["tier"]["id"]
    ids = await load_population(tenure)  # L's orders stopped 94 days ago: the churn warning; S orders steadily
    ada, ben = ids["L"], ids["S"]
    for cid, name, email in ((ada, "Ada Lovelace", "ada@example.com"), (ben, "Ben Steady", "ben@example.com")):
        await _ok(tenure, """mutation($id: ID!, $c: CustomerInput!) { updateCustomer(input: {id: $id, customer: $c}) {
            userErrors { field message } } }""", {"id": str(cid), "c": {"name": name, "emails": [email],
                                                                           "consent": {"email": True}}})
        await _ok(tenure, """mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { userErrors {
            field message } } }""", {"i": {"customerId": str(cid), "points": 50, "reason": f"goodwill: {name}"}})
        await _ok(tenure, """mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) {
            userErrors { field message } } }""", {"i": {"customerId": str(cid), "plan": "care", "value": 12_000,
                                                        "startsOn": "2026-01-01", "endsOn": "2027-01-01",
                                                        "externalId": f"CRM-{cid}"}})
    await _ok(tenure, """mutation($i: SetCustomerTierInput!) { setCustomerTier(input: $i) { userErrors {
        field message } } }""", {"i": {"customerId": str(ada), "tierId": gold["tier"]["id"],
                                       "reason": "Ada Lovelace is the CEO's friend"}})
    survey = await _ok(tenure, """mutation($i: CreateSurveyInput!) { createSurvey(input: $i) { survey { id }
        userErrors { field message } } }""", {"i": {"name": "How are we doing", "trigger": "MANUAL"}})
    await _ok(tenure, """mutation($i: SendSurveyInput!) { sendSurvey(input: $i) { userErrors { field message } } }""",
              {"i": {"surveyId": survey["survey"]["id"], "customerIds": [str(ada), str(ben)]}})
    async with tenure.transaction() as ctx:
        await ctx.enqueue("nps.send_due", {}, dedupe_key="privacy-test")
    await tenure.run_jobs()
    for address, comment in (("ada@example.com", WORDS), ("ben@example.com", "Ben loves the tea")):
        [message] = mailbox.to(address)
        token = re.search(r"token=(\S+)", message.get_content())
        assert token is not None
        await _ok(tenure, """mutation($i: SubmitSurveyResponseInput!) { submitSurveyResponse(input: $i) {
            userErrors { field message } } }""", {"i": {"token": token.group(1), "score": 3, "comment": comment}})
    await tenure.jobs.run("churn.rescore")
    await tenure.run_jobs()
    return {"ada": ada, "ben": ben}


async def test_every_plugin_exports_and_erases_its_part(make_tenure: Any) -> None:
    with smtp_server() as mailbox, freeze_time(NOW):
        async with make_tenure(plugins=PLUGINS, smtp_host="127.0.0.1", smtp_port=mailbox.port) as tenure:
            await _ok(tenure, """mutation { createPlan(input: {code: "care", name: "Care plan"}) {
                userErrors { field message } } }""", {})
            ids = await _activity(tenure, mailbox)
            ada, ben = str(ids["ada"]), str(ids["ben"])
            doc = (await tenure.ok(EXPORT, {"id": ada}))["exportCustomer"]["plugins"]
            ben_before = (await tenure.ok(EXPORT, {"id": ben}))["exportCustomer"]["plugins"]

            assert set(doc) == set(PLUGINS)
            loyalty = doc["loyalty"]
            assert loyalty["account"]["balance"] + loyalty["account"]["pending"] == sum(
                e["points"] for e in loyalty["entries"]) > 0
            assert {e["kind"] for e in loyalty["entries"]} == {"earn", "adjust"}
            assert "goodwill: Ada Lovelace" in [e["reason"] for e in loyalty["entries"]]
            assert loyalty["lots"] and all(lot["remaining"] > 0 for lot in loyalty["lots"])
            assert doc["tiers"]["membership"]["tier"] == "Gold" and doc["tiers"]["membership"]["manual"] is True
            assert [h["data"]["tier"] for h in doc["tiers"]["history"]] == ["Silver", "Gold"]
            [response] = doc["nps"]["responses"]
            assert (response["comment"], response["score"], response["survey"]) == (WORDS, 3, "How are we doing")
            assert [i["status"] for i in doc["nps"]["invitations"]] == ["answered"]
            [subscription] = doc["renewals"]["subscriptions"]
            assert (subscription["external_id"], subscription["value"], subscription["plan"]) == (
                f"CRM-{ada}", 12_000, "care")
            [warning] = doc["churn"]["warnings"]
            assert warning["reasons"] == ["no order for 94 days, usual gap 21"] and warning["status"] == "open"
            assert doc["churn"]["score"]["frequency"] == 5
            assert "Ben" not in str(doc)

            erased = (await tenure.ok(ERASE, {"id": ada}))["eraseCustomer"]
            assert erased["userErrors"] == [] and erased["erasedAt"]
            after = (await tenure.ok(EXPORT, {"id": ada}))["exportCustomer"]
            assert "Ada" not in str(after) and "kettle" not in str(after) and f"CRM-{ada}" not in str(after)
            plugins = after["plugins"]
            assert plugins["nps"]["responses"][0]["comment"] == "" and plugins["nps"]["responses"][0]["score"] == 3
            assert plugins["loyalty"]["account"] == loyalty["account"]
            assert [e["points"] for e in plugins["loyalty"]["entries"]] == [e["points"] for e in loyalty["entries"]]
            assert plugins["tiers"]["membership"]["tier"] == "Gold" and plugins["tiers"]["membership"]["reason"] == ""
            assert plugins["renewals"]["subscriptions"][0]["external_id"] is None
            assert plugins["renewals"]["subscriptions"][0]["value"] == 12_000
            assert plugins["churn"]["warnings"][0]["reasons"] == []
            assert plugins["churn"]["warnings"][0]["status"] == "open"
            assert await run_invariants(tenure.db, tenure.plugins) == []
            assert (await tenure.ok(EXPORT, {"id": ben}))["exportCustomer"]["plugins"] == ben_before
            assert ben_before["nps"]["responses"][0]["comment"] == "Ben loves the tea"


async def test_a_partner_plugin_exports_and_erases_its_visits(make_tenure: Any) -> None:
    record = """mutation($i: RecordVisitInput!) { recordVisit(input: $i) { created userErrors { field message } } }"""
    async with make_tenure(plugins=["visits"]) as tenure:
        made = []
        for name in ("Vera", "Walt"):
            data = await tenure.ok("mutation($n: String!) { createCustomer(input: {name: $n}) { customer { id } } }",
                                   {"n": name})
            made.append(data["createCustomer"]["customer"]["id"])
            visit = await tenure.ok(record, {"i": {"customerId": made[-1], "venue": "North",
                                                   "externalId": f"door-{name}", "visitedAt": "2026-01-10T10:00:00Z"}})
            assert visit["recordVisit"]["created"] is True
        vera, walt = made
        doc = (await tenure.ok(EXPORT, {"id": vera}))["exportCustomer"]["plugins"]
        assert [(v["venue"], v["externalId"]) for v in doc["visits"]] == [("North", "door-Vera")]
        assert (await tenure.ok(ERASE, {"id": vera}))["eraseCustomer"]["userErrors"] == []
        assert (await tenure.ok(EXPORT, {"id": vera}))["exportCustomer"]["plugins"] == {"visits": []}
        walt_doc = (await tenure.ok(EXPORT, {"id": walt}))["exportCustomer"]["plugins"]
        assert [v["externalId"] for v in walt_doc["visits"]] == ["door-Walt"]
