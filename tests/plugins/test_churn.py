"""Churn: scores, segments, stages, warnings with one task, coming back, rules through the API.

Worked figures for the population of churn_support.py (default settings: threshold 60, high
risk below 30; rules no_order 90 days -40, long_gap 3x usual gap -30, interactions falling by
half -15, complaints 1+ -20):

    L  no order for 94 days (>= 90: -40), usual gap 21, 94 > 3 x 21 (-30)     -> 30, medium, warned
    S  5 days, gap 10                                                          -> 100
    C  1 complaint + 1 cancelled order in 90 days (-20)            -> 80, stage new (first order 10 days)
    F  visits 4 -> 0 (-15); gap 60, silent 40                                  -> 85
    P  60 days > 3 x usual gap 10 (-30)                                        -> 70, stage silent (60 days idle)
    O  400 days (-40)                                                          -> 60 (not below 60), stage lost
RFM over the active base (ordered in 365 days: S C F P L), five customers, one per fifth:
    recency  S 5, C 10, F 40, P 60, L 94       -> R 5 4 3 2 1
    orders   C 1, F 2, P 3, L 5, S 6           -> F 1 2 3 4 5
    spend    P 300, F 2000, C 5000, S 9000, L 10000 -> M 1 2 3 4 5
    segments S champions (R5 F5), C potential (R4), F potential (R3), P at_risk (R2 F3), L at_risk (R1 F4);
    O ordered before the window: lost; N never ordered: none.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenure.core.services import orders
from tenure.core.services.orders import OrderData
from tenure.testing import freeze_time
from tests.plugins.churn_support import NOW, TUNED, load_population, risk

WARNINGS = """query($f: ChurnWarningFilter) { churnWarnings(filter: $f, first: 50) { totalCount
  nodes { id score level reasons status cameBack taskId customer { id name } } } }"""


async def test_scores_segments_stages_and_reasons(make_tenure: Any) -> None:
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            seen = {name: await risk(tenure, cid) for name, cid in ids.items()}
    health = {n: (c["churnRisk"]["score"], c["churnRisk"]["level"]) for n, c in seen.items()}
    assert health == {"L": (30, "MEDIUM"), "S": (100, "LOW"), "C": (80, "LOW"), "F": (85, "LOW"), "P": (70, "LOW"),
                      "O": (60, "LOW"), "N": (100, "LOW")}
    assert seen["L"]["churnRisk"]["reasons"] == ["no order for 94 days, usual gap 21"]
    assert seen["L"]["churnRisk"]["since"] is not None and seen["S"]["churnRisk"]["since"] is None
    assert seen["C"]["churnRisk"]["reasons"] == ["1 complaint and 1 cancelled order recently"]
    assert seen["F"]["churnRisk"]["reasons"] == ["interactions fell from 4 to 0 against the previous period"]
    rfm = {n: (c["rfm"]["r"], c["rfm"]["f"], c["rfm"]["m"], c["rfm"]["segment"]) for n, c in seen.items()}
    assert rfm == {"S": (5, 5, 4, "champions"), "C": (4, 1, 3, "potential"), "F": (3, 2, 2, "potential"),
                   "P": (2, 3, 1, "at_risk"), "L": (1, 4, 5, "at_risk"), "O": (None, None, None, "lost"),
                   "N": (None, None, None, None)}
    stages = {n: c["rfm"]["stage"] for n, c in seen.items()}
    assert stages == {"L": "high_risk", "S": "active", "C": "new", "F": "active", "P": "silent", "O": "lost",
                      "N": None}
    assert (seen["L"]["rfm"]["recencyDays"], seen["L"]["rfm"]["frequency"], seen["L"]["rfm"]["monetary"]) == (
        94, 5, 10000)



async def test_a_rescore_a_day_later_rewrites_only_the_scores_that_changed(make_tenure: Any) -> None:
    """Days since the last order are counted when read, so the nightly rescore leaves the
    rows of customers whose standing did not move, and their scoredAt."""
    scored = "query($id: ID!) { customer(id: $id) { churnRisk { scoredAt } } }"
    with freeze_time(NOW) as clock:
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            clock.advance(days=1)
            before = await risk(tenure, ids["L"])
            await tenure.jobs.run("churn.rescore")
            times = await tenure.scalar("SELECT count(DISTINCT scored_at) FROM churn_scores")
            seen = {name: await risk(tenure, cid) for name, cid in ids.items()}
            stamp = (await tenure.ok(scored, {"id": str(ids["S"])}))["customer"]["churnRisk"]["scoredAt"]
    # A day on, L reads 95 days before any rescore; none of the seven changed standing, so
    # every row still carries the first rescore's time.
    assert before["rfm"]["recencyDays"] == 95
    assert before["churnRisk"]["reasons"] == ["no order for 95 days, usual gap 21"]
    assert times == 1 and stamp.startswith(NOW.strftime("%Y-%m-%dT%H:%M"))
    assert seen["L"]["churnRisk"]["score"] == 30 and seen["S"]["rfm"]["recencyDays"] == 6
    assert seen["L"]["rfm"]["r"] == 1 and seen["S"]["rfm"]["segment"] == "champions"


async def test_a_warning_gets_one_task_and_resolves_when_the_customer_comes_back(make_tenure: Any) -> None:
    with freeze_time(NOW) as clock:
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            ids = await load_population(tenure, owner_email="owner@example.com")
            await tenure.jobs.run("churn.rescore")
            await tenure.jobs.run("churn.rescore")  # twice: still one warning, one task
            open_ = (await tenure.ok(WARNINGS))["churnWarnings"]
            tasks = await tenure.scalar("SELECT count(*) FROM tasks WHERE source = 'churn'")
            owner = await tenure.scalar("SELECT count(*) FROM tasks t JOIN staff_users s ON s.id = t.assignee_id "
                                        "WHERE t.source = 'churn' AND s.email = 'owner@example.com'")
            clock.advance(days=3)
            async with tenure.transaction() as ctx:
                await orders.record_order(ctx, OrderData(customer_id=ids["L"], channel="shop", external_id="L-back",
                                                         currency="USD", amount=2500))
            await tenure.run_jobs()
            after = (await tenure.ok(WARNINGS, {"f": {"status": None}}))["churnWarnings"]
            back = await risk(tenure, ids["L"])
            report = (await tenure.ok("""query($a: DateTime!, $b: DateTime!) { churnReport(from: $a, to: $b) {
                warned cameBack recovered stillOpen cameBackRate byLevel { level count } } }""",
                {"a": (NOW - timedelta(days=1)).isoformat(), "b": (NOW + timedelta(days=10)).isoformat()}))
    assert open_["totalCount"] == 1
    (warning,) = open_["nodes"]
    assert (warning["customer"]["name"], warning["score"], warning["level"], warning["status"]) == (
        "L", 30, "MEDIUM", "OPEN")
    assert warning["reasons"] == ["no order for 94 days, usual gap 21"] and warning["taskId"]
    assert (tasks, owner) == (1, 1)
    assert [(w["status"], w["cameBack"]) for w in after["nodes"]] == [("RESOLVED", True)]
    assert back["churnRisk"]["score"] == 100 and back["churnRisk"]["since"] is None
    assert report["churnReport"] == {"warned": 1, "cameBack": 1, "recovered": 0, "stillOpen": 0,
                                     "cameBackRate": 100.0, "byLevel": [{"level": "MEDIUM", "count": 1}]}


async def test_an_order_before_any_full_rescore_scores_its_customer(make_tenure: Any) -> None:
    """The event path scores a customer while no quintiles exist yet (RFM stays empty
    until the first full rescore) on both databases, rather than failing its job."""
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            async with tenure.transaction() as ctx:
                await orders.record_order(ctx, OrderData(customer_id=ids["L"], channel="shop", external_id="L-new",
                                                         currency="USD", amount=2500))
            outcomes = await tenure.run_jobs()
            back = await risk(tenure, ids["L"])
    assert set(outcomes) == {"done"}, outcomes
    assert back["churnRisk"]["score"] == 100 and back["churnRisk"]["since"] is None


async def test_rules_are_switched_and_tuned_through_the_api(make_tenure: Any) -> None:
    save = """mutation($i: SaveChurnRuleInput!) { saveChurnRule(input: $i) {
        rule { kind enabled threshold weight customised } userErrors { field message code } } }"""
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            off = (await tenure.ok(save, {"i": {"kind": "long_gap", "enabled": False}}))["saveChurnRule"]
            await tenure.jobs.run("churn.rescore")
            relaxed = await risk(tenure, ids["L"])
            warnings = (await tenure.ok(WARNINGS, {"f": {"status": None}}))["churnWarnings"]["nodes"]
            bad_weight = (await tenure.ok(save, {"i": {"kind": "no_order", "weight": 101}}))["saveChurnRule"]
            bad_kind = (await tenure.ok(save, {"i": {"kind": "moon_phase"}}))["saveChurnRule"]
            survey = (await tenure.ok(save, {"i": {"kind": "low_survey", "enabled": True}}))["saveChurnRule"]
            stricter = (await tenure.ok(save, {"i": {"kind": "no_order", "threshold": 30, "weight": 50}}))
            await tenure.jobs.run("churn.rescore")
            s_after = await risk(tenure, ids["P"])
            reset = (await tenure.ok("""mutation { deleteChurnRule(input: {kind: "no_order"}) {
                rule { threshold weight customised } } }"""))["deleteChurnRule"]["rule"]
            rules = (await tenure.ok("{ churnRules { kind enabled } }"))["churnRules"]
            staff = await tenure.gql(save, {"i": {"kind": "no_order", "weight": 1}}, key=await tenure.key("staff"))
    assert off["rule"] == {"kind": "long_gap", "enabled": False, "threshold": 3.0, "weight": 30, "customised": True}
    assert relaxed["churnRisk"]["score"] == 60 and relaxed["churnRisk"]["level"] == "LOW"
    # L's warning resolved by the rescore without an order: recovered, not came back.
    assert [(w["status"], w["cameBack"]) for w in warnings] == [("RESOLVED", False)]
    assert bad_weight["userErrors"] == [{"field": ["input", "weight"], "message": "a weight from 0 to 100",
                                         "code": "INVALID_WEIGHT"}]
    assert bad_kind["userErrors"][0]["field"] == ["input", "kind"] and bad_kind["rule"] is None
    # The nps plugin's rule exists while nps is on.
    assert survey["userErrors"][0]["code"] == "UNKNOWN_RULE" and "while the plugin is on" in survey[
        "userErrors"][0]["message"]
    assert stricter["saveChurnRule"]["rule"]["weight"] == 50
    # P: 60 days without an order is now past the 30-day rule: 100 - 50 = 50, below 60.
    assert s_after["churnRisk"]["score"] == 50 and s_after["churnRisk"]["level"] == "MEDIUM"
    assert s_after["churnRisk"]["reasons"] == ["no order for 60 days, usual gap 10"]
    assert reset == {"threshold": 90.0, "weight": 40, "customised": False}
    assert {r["kind"]: r["enabled"] for r in rules} == {
        "no_order": True, "long_gap": False, "interactions_falling": True, "complaints": True}
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_saved_segments_list_their_customers(make_tenure: Any) -> None:
    save = """mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { segment { id name
        filter { segments levels } customers(first: 10) { totalCount nodes { name } } }
        userErrors { field code } } }"""
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            at_risk = (await tenure.ok(save, {"i": {"name": "At risk", "filter": {"segments": ["at_risk"]}}}))
            warned = (await tenure.ok(save, {"i": {"name": "Warned", "filter": {"levels": ["MEDIUM", "HIGH"]}}}))
            bad = (await tenure.ok(save, {"i": {"name": "Odd", "filter": {"segments": ["vips"]}}}))
            dup = (await tenure.ok(save, {"i": {"name": "At risk", "filter": {"maxHealth": 50}}}))
            listed = (await tenure.ok("{ segments { name } }"))["segments"]
    segment = at_risk["saveSegment"]["segment"]
    assert segment["customers"] == {"totalCount": 2, "nodes": [{"name": "L"}, {"name": "P"}]}
    assert warned["saveSegment"]["segment"]["customers"]["nodes"] == [{"name": "L"}]
    assert bad["saveSegment"]["userErrors"] == [{"field": ["input", "filter", "segments"], "code": "INVALID_VALUE"}]
    assert dup["saveSegment"]["userErrors"] == [{"field": ["input", "name"], "code": "DUPLICATE"}]
    assert listed == [{"name": "At risk"}, {"name": "Warned"}]


FIRST_N = "query($n: Int!) { customers(first: $n) { nodes { name churnRisk { score reasons } rfm { segment } } } }"


async def test_a_page_of_customers_reads_risk_and_rfm_in_a_fixed_number_of_statements(make_tenure: Any) -> None:
    page = "{ customers(first: 100) { nodes { id churnRisk { score reasons } rfm { segment } } } }"
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            # The newest customer, not scored yet, is the whole first page of one.
            await tenure.ok('mutation { createCustomer(input: {name: "Newcomer"}) { customer { id } } }')
            await tenure.ok(page)
            with tenure.count_statements() as one:
                alone = await tenure.ok(FIRST_N, {"n": 1})
            with tenure.count_statements() as few:
                small = await tenure.ok(FIRST_N, {"n": 3})
            with tenure.count_statements() as many:
                data = await tenure.ok(page)
    assert alone["customers"]["nodes"] == [{"name": "Newcomer", "churnRisk": None, "rfm": None}]
    assert len(small["customers"]["nodes"]) == 3 and len(data["customers"]["nodes"]) == 8
    assert sum(1 for c in data["customers"]["nodes"] if c["churnRisk"] and c["churnRisk"]["reasons"]) >= 1
    # The rules (for the reasons' words) are read once per request that shows a reason.
    assert many.count == few.count and one.count == few.count - 1
