"""Journeys through the API on SQLite and PostgreSQL: created, edited, paused and resumed by
staff, bad definitions refused with a userError naming the field and nothing written; each
step once per customer under duplicate job runs; the holdout kept out and the lift measured;
exits; history starts nothing; the preview does nothing; the forecast of due steps."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenure.core.clock import FrozenClock
from tenure.core.services.orders import OrderData, record_orders
from tenure.plugins.journeys import figures as journey_figures
from tenure.plugins.journeys.engine import in_holdout
from tenure.testing import TenureHarness, freeze_time, global_id, pk_of
from tests.core.helpers import record_order
from tests.core.test_messages import owner
from tests.plugins.journeys_support import (
    FIGURES,
    JOURNEY_TABLES,
    PAUSE,
    PREVIEW,
    RESUME,
    UPDATE,
    counts,
    create,
    created,
    customers,
    run_journeys,
)

WELCOME = {"action": "message", "wait": "P0D", "params": {"template": "journeys.welcome_tips"}}
TAG = {"action": "tag", "wait": "P1D", "params": {"tag": "onboarded"}}
CALL = {"action": "task", "wait": "P2D", "at": "10:00", "params": {"title": "Call the new customer"}}


@pytest.mark.parametrize(("fields", "field", "code"), [
    ({"trigger": "moon_rise"}, "trigger", "not_found"),
    ({"trigger": "days_after_signup"}, "triggerParams", "invalid"),
    ({"trigger": "days_after_signup", "triggerParams": {"days": 0}}, "triggerParams", "invalid"),
    ({"steps": []}, "steps", "required"),
    ({"steps": [{**WELCOME, "wait": "3 days"}]}, "steps[0].wait", "invalid_duration"),
    ({"steps": [WELCOME, {**TAG, "at": "25:00"}]}, "steps[1].at", "invalid_time"),
    ({"steps": [{"action": "fax", "params": {}}]}, "steps[0].action", "not_found"),
    ({"steps": [{"action": "message", "params": {"template": "shop.nothing"}}]}, "steps[0].params.template",
     "not_found"),
    ({"steps": [{"action": "points", "params": {"points": 10}}]}, "steps[0].action", "not_found"),
    ({"steps": [{"action": "task", "params": {}}]}, "steps[0].params.title", "required"),
    ({"holdoutPercent": 80}, "holdoutPercent", "invalid_range"),
    ({"exits": ["warning_resolved"]}, "exits", "plugin_off"),
    ({"conditions": {"consent": ["fax"]}}, "conditions.consent", "invalid"),
    ({"conditions": {"tags": ["vip"], "withoutTags": ["VIP"]}}, "conditions.withoutTags", "invalid"),
    ({"conditions": {"tiers": ["gold"]}}, "conditions.tiers", "plugin_off"),
    ({"name": "   "}, "name", "required"),
])
async def test_a_bad_definition_is_refused_naming_the_field_and_nothing_is_written(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock, fields: dict[str, Any], field: str,
        code: str) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        base = {"name": "Onboarding", "trigger": "first_order", "steps": [WELCOME, TAG]}
        before = await counts(tenure, *JOURNEY_TABLES, "events")
        payload = await create(tenure, **{**base, **fields})
        assert payload["journey"] is None
        path = ["input", *re.findall(r"[^.\[\]]+", field)]
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(path, code.upper())]
        assert payload["userErrors"][0]["message"]  # said in words
        assert await counts(tenure, *JOURNEY_TABLES, "events") == before


async def test_staff_create_edit_pause_and_resume_a_journey(make_tenure: Callable[..., Any],
                                                            frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        staff = await tenure.client_for("staff")
        journey = (await staff.ok(
            """mutation($input: CreateJourneyInput!) { createJourney(input: $input) {
                 journey { id status version steps { position wait at action params } } userErrors { field } } }""",
            {"input": {"name": "Onboarding", "trigger": "first_order", "steps": [WELCOME, CALL],
                       "exits": ["ordered"], "conditions": {"consent": ["email"], "tags": ["New"]}}}))["createJourney"]
        assert journey["userErrors"] == []
        assert journey["journey"]["status"] == "ACTIVE" and journey["journey"]["version"] == 1
        assert journey["journey"]["steps"][1] == {"position": 2, "wait": "P2D", "at": "10:00", "action": "task",
                                                  "params": {"title": "Call the new customer", "reason": ""}}
        jid = journey["journey"]["id"]

        twin = await create(tenure, name="Onboarding", trigger="birthday", steps=[WELCOME])
        assert [(e["field"], e["code"]) for e in twin["userErrors"]] == [(["input", "name"], "CONFLICT")]

        # An edit with one bad step changes nothing, not even the good fields given with it.
        bad = (await tenure.ok(UPDATE, {"input": {"id": jid, "name": "Renamed", "steps": [WELCOME, {
            **CALL, "wait": "P2X"}]}}))["updateJourney"]
        assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [
            (["input", "steps", "1", "wait"], "INVALID_DURATION")]
        unchanged = (await tenure.ok("query($id: ID!) { journey(id: $id) { name version } }", {"id": jid}))
        assert unchanged["journey"] == {"name": "Onboarding", "version": 1}

        edited = (await tenure.ok(UPDATE, {"input": {"id": jid, "steps": [WELCOME, TAG, CALL],
                                                     "holdoutPercent": 20}}))["updateJourney"]
        assert edited["userErrors"] == []
        assert edited["journey"]["version"] == 2 and edited["journey"]["holdoutPercent"] == 20
        assert [s["action"] for s in edited["journey"]["steps"]] == ["message", "tag", "task"]
        assert edited["journey"]["conditions"]["tags"] == ["new"]

        paused = (await tenure.ok(PAUSE, {"id": jid}))["pauseJourney"]
        assert paused == {"journey": {"id": jid, "status": "PAUSED"}, "userErrors": []}
        again = (await tenure.ok(PAUSE, {"id": jid}))["pauseJourney"]
        assert again["journey"] is None and again["userErrors"][0]["code"] == "INVALID_STATUS"
        assert (await tenure.ok(RESUME, {"id": jid}))["resumeJourney"]["journey"]["status"] == "ACTIVE"
        missing = (await tenure.ok(PAUSE, {"id": "999999"}))["pauseJourney"]
        assert missing["userErrors"] == [{"field": ["id"], "message": "no journey with id 999999", "code": "NOT_FOUND"}]

        # A scoped integration key needs journeys:write to change journeys.
        reader = await tenure.client_for("integration", scopes=["journeys:read"])
        refused = await reader.gql(PAUSE, {"id": jid})
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        member = await tenure.client_for("member", customer_id=(await customers(tenure, 1))[0])
        assert (await member.gql("{ journeys { id } }"))["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def first_orders(tenure: TenureHarness, ids: list[int], ref: str = "first") -> None:
    for n, cid in enumerate(ids):
        assert (await record_order(tenure, str(cid), f"{ref}-{n}", 5000))["userErrors"] == []


async def test_each_step_runs_once_however_often_the_job_runs(make_tenure: Callable[..., Any],
                                                               frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        olga = await owner(tenure, "olga@shop.test")
        journey = await created(tenure, name="Onboarding", trigger="first_order", steps=[WELCOME, TAG, CALL],
                                holdoutPercent=0)
        people = await customers(tenure, 6, owner_id=olga)
        await first_orders(tenure, people)
        await first_orders(tenure, people[:2], ref="second")  # a second order is no first order
        assert await tenure.scalar("SELECT count(*) FROM journeys_entries") == 6
        for day in range(5):
            for _ in range(3):  # the scheduler and a retry and a second worker: three runs each time
                await run_journeys(tenure)
            if day == 0:
                assert await tenure.scalar("SELECT count(*) FROM messages WHERE template = 'journeys.welcome_tips'") \
                    == 6
                assert await tenure.scalar("SELECT count(*) FROM customer_tags WHERE tag = 'onboarded'") == 0
            frozen_clock.advance(days=1)
        assert await tenure.scalar("SELECT count(*) FROM journeys_step_runs WHERE status = 'done'") == 18
        assert await tenure.scalar("SELECT count(*) FROM messages WHERE template = 'journeys.welcome_tips'") == 6
        assert await tenure.scalar("SELECT count(DISTINCT customer_id) FROM customer_tags WHERE tag = 'onboarded'") \
            == 6
        tasks = await tenure.scalar("SELECT count(*) FROM tasks WHERE source = 'journeys' AND assignee_id = :o",
                                    o=olga)
        assert tasks == 6
        # Two days after the tag (day 1), at 10:00 in the business zone (UTC here): day 3 at 10:00, so
        # the run of day 3 at 09:00 left it and the run of day 4 made it.
        made = await tenure.scalar("SELECT min(created_at) FROM tasks WHERE source = 'journeys'")
        assert str(made).startswith("2026-06-05 09:00")
        figures = (await tenure.ok(FIGURES, {"id": journey["id"]}))["journey"]["figures"]
        assert figures["entered"] == 6 and figures["completed"] == 6 and figures["heldOut"] == 0
        assert [(s["done"], s["skipped"]) for s in figures["steps"]] == [(6, 0), (6, 0), (6, 0)]
        timeline = await tenure.ok("""query($id: ID!) { customer(id: $id) { journeyEntries { status nextStep
            journey { name } } } }""", {"id": str(people[0])})
        assert timeline["customer"]["journeyEntries"] == [{"status": "completed", "nextStep": None,
                                                            "journey": {"name": "Onboarding"}}]


async def test_the_holdout_is_kept_out_and_the_lift_is_measured(make_tenure: Callable[..., Any],
                                                                frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        journey = await created(tenure, name="Thanks", trigger="first_order", steps=[WELCOME], holdoutPercent=30,
                                conversionDays=30)
        people = await customers(tenure, 40)
        await first_orders(tenure, people)
        await run_journeys(tenure)
        await run_journeys(tenure)
        expected = {c for c in people if in_holdout(pk_of(journey["id"]), c, 30)}
        assert 0 < len(expected) < 40  # the share is a share, not all or nothing
        held = {int(c) for c in await _held_out(tenure)}
        assert held == expected
        messaged = {int(r) for r in await _messaged(tenure)}
        assert messaged == set(people) - expected and not messaged & held

        # Orders within the window convert; one after it does not; both groups are measured alike.
        frozen_clock.advance(days=5)
        treated_back = sorted(set(people) - expected)[:6]
        held_back = sorted(expected)[:2]
        for n, cid in enumerate(treated_back + held_back):
            await record_order(tenure, str(cid), f"again-{n}", 3000)
        frozen_clock.advance(days=40)
        late = sorted(set(people) - expected)[6]
        await record_order(tenure, str(late), "late", 3000)
        figures = (await tenure.ok(FIGURES, {"id": journey["id"]}))["journey"]["figures"]
        treated = 40 - len(expected)
        assert figures["entered"] == 40 and figures["heldOut"] == len(expected)
        assert figures["converted"] == 6 and figures["holdoutConverted"] == 2
        assert figures["conversionRate"] == round(6 / treated, 4)
        assert figures["holdoutConversionRate"] == round(2 / len(expected), 4)
        assert figures["lift"] == round(round(6 / treated, 4) - round(2 / len(expected), 4), 4)
        assert figures["steps"] == [{"position": 1, "action": "message", "done": treated, "skipped": 0}]


async def _held_out(tenure: TenureHarness) -> list[int]:
    async with tenure.db.reader() as session:
        from sqlalchemy import text

        return list((await session.scalars(text("SELECT customer_id FROM journeys_entries WHERE holdout"))).all())


async def _messaged(tenure: TenureHarness) -> list[int]:
    async with tenure.db.reader() as session:
        from sqlalchemy import text

        return list((await session.scalars(text("SELECT customer_id FROM messages"))).all())


async def test_ordering_again_exits_before_the_next_step(make_tenure: Callable[..., Any],
                                                         frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        journey = (await tenure.ok("""mutation { startJourneyTemplate(input: {template: "onboarding_30_days",
            holdoutPercent: 0}) { journey { id trigger exits steps { wait at action } } userErrors { field } } }"""
                                   ))["startJourneyTemplate"]["journey"]
        assert journey["exits"] == ["ordered"] and [s["action"] for s in journey["steps"]] == ["message", "task"]
        ada, ben = await customers(tenure, 2)
        await first_orders(tenure, [ada, ben])
        frozen_clock.advance(days=1)
        await record_order(tenure, str(ada), "ada-again", 2000)
        frozen_clock.advance(days=2, hours=2)  # day 3, 11:00: the tips are due at 10:00
        await run_journeys(tenure)
        assert await _messaged(tenure) == [ben]
        figures = (await tenure.ok(FIGURES, {"id": journey["id"]}))["journey"]["figures"]
        assert (figures["entered"], figures["exited"], figures["active"]) == (2, 1, 1)
        assert figures["converted"] == 1  # Ada ordered within 30 days
        exited = await tenure.scalar("SELECT exit_reason FROM journeys_entries WHERE customer_id = :c", c=ada)
        assert exited == "ordered"


async def test_history_starts_no_journey(make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys", "tiers"]) as tenure:
        gold = await tenure.ok("""mutation { createTier(input: {name: "Gold", rank: 1, minOrders: 1}) {
            tier { id } userErrors { field } } }""")
        assert gold["createTier"]["userErrors"] == []
        await created(tenure, name="Thanks", trigger="first_order", steps=[WELCOME], holdoutPercent=0)
        await created(tenure, name="Gold welcome", trigger="tier_changed", triggerParams={"tier": "Gold"},
                      steps=[WELCOME], holdoutPercent=0)
        past, live = await customers(tenure, 2)
        async with tenure.db.transaction() as session:
            from tenure.core.context import ServiceContext

            ctx = ServiceContext(session, tenure.settings, tenure.plugins, actor="import:orders", history=True)
            outcomes = await record_orders(ctx, [OrderData(customer_id=past, channel="pos", external_id="old-1",
                                                           currency="USD", amount=4000,
                                                           placed_at=frozen_clock.now() - timedelta(days=3))])
            assert outcomes[0].error is None
        assert await tenure.scalar("SELECT count(*) FROM events WHERE type = 'tiers.changed'") == 1  # Gold, of old
        assert await tenure.scalar("SELECT count(*) FROM journeys_history_events") == 1  # set aside
        await run_journeys(tenure)
        assert await tenure.scalar("SELECT count(*) FROM journeys_entries") == 0
        assert await tenure.scalar("SELECT count(*) FROM messages") == 0
        # The same through the API, now: both journeys let the customer in.
        await first_orders(tenure, [live])
        await run_journeys(tenure)
        entered = await tenure.scalar("SELECT count(*) FROM journeys_entries WHERE customer_id = :c", c=live)
        assert entered == 2
        assert await _messaged(tenure) == [live, live]


async def test_the_preview_counts_who_would_have_entered_and_does_nothing(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        from tenure.core.services.customers import CustomerData, create_customer

        birthdays = ["1990-05-25", "1985-05-31", "2000-06-01", "1970-04-01", "1999-06-02"]
        ids = []
        async with tenure.transaction() as ctx:
            for n, born in enumerate(birthdays):
                row = await create_customer(ctx, CustomerData(name=f"B{n}", birthday=datetime.fromisoformat(born)
                                                              .date(), tags=["vip"] if n != 1 else []))
                ids.append(row.id)
        paused = await created(tenure, name="Birthday", trigger="birthday", paused=True, holdoutPercent=0,
                               steps=[{**WELCOME, "at": "10:00"}], conditions={"tags": ["vip"]})
        assert paused["status"] == "PAUSED"
        buyers = await customers(tenure, 3)
        await first_orders(tenure, buyers)
        orders_journey = await created(tenure, name="First", trigger="first_order", paused=True, steps=[WELCOME],
                                       holdoutPercent=50)
        tables = (*JOURNEY_TABLES, "messages", "outbox", "events", "tasks", "customer_tags")
        before = await counts(tenure, *tables)
        preview = (await tenure.ok(PREVIEW, {"id": paused["id"], "days": 10}))["journeyPreview"]
        # Birthdays on May 25 and June 1 in the last ten days, with the tag; May 31 lacks it,
        # April is too long ago and June 2 is tomorrow.
        assert preview == {"days": 10, "entries": 2, "customers": 2, "heldOut": 0,
                           "sampleCustomerIds": [global_id("Customer", ids[0]), global_id("Customer", ids[2])]}
        first = (await tenure.ok(PREVIEW, {"id": orders_journey["id"], "days": 1}))["journeyPreview"]
        expected_held = sum(in_holdout(pk_of(orders_journey["id"]), c, 50) for c in buyers)
        assert (first["customers"], first["heldOut"]) == (3, expected_held)
        bad = await tenure.gql(PREVIEW, {"id": paused["id"], "days": 0}, key=await tenure.key())
        assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "days"}
        assert await counts(tenure, *tables) == before


async def test_date_triggers_fall_on_the_business_day_and_time(make_tenure: Callable[..., Any],
                                                               frozen_clock: FrozenClock) -> None:
    frozen_clock.set(datetime(2025, 6, 1, 13, 0, tzinfo=UTC))  # 2 June 2025, 01:00 in Auckland
    async with make_tenure(plugins=["journeys"], timezone="Pacific/Auckland") as tenure:
        from tenure.core.services.customers import CustomerData, create_customer

        async with tenure.transaction() as ctx:
            signed = (await create_customer(ctx, CustomerData(name="Signed", emails=["s@example.com"],
                                                              consent_email=True))).id
        frozen_clock.set(datetime(2026, 5, 30, 9, 0, tzinfo=UTC))
        async with tenure.transaction() as ctx:
            born = (await create_customer(ctx, CustomerData(name="Born", emails=["b@example.com"], consent_email=True,
                                                            birthday=datetime(1990, 6, 2).date()))).id
        for name, trigger, params in (("Birthday", "birthday", {}), ("Anniversary", "signing_anniversary", {}),
                                      ("Day 3", "days_after_signup", {"days": 3})):
            await created(tenure, name=name, trigger=trigger, triggerParams=params, holdoutPercent=0,
                          steps=[{**WELCOME, "at": "10:00"}])

        async def entered() -> set[tuple[str, int]]:
            async with tenure.db.reader() as session:
                from sqlalchemy import text

                rows = await session.execute(text("SELECT j.name, e.customer_id FROM journeys_entries e "
                                                  "JOIN journeys_journeys j ON j.id = e.journey_id"))
                return {(n, c) for n, c in rows}

        frozen_clock.set(datetime(2026, 6, 1, 11, 0, tzinfo=UTC))  # 1 June 23:00 in Auckland
        await run_journeys(tenure)
        assert await entered() == set()
        frozen_clock.set(datetime(2026, 6, 1, 12, 30, tzinfo=UTC))  # 2 June 00:30 in Auckland
        await run_journeys(tenure)
        await run_journeys(tenure)
        assert await entered() == {("Birthday", born), ("Anniversary", signed), ("Day 3", born)}
        frozen_clock.set(datetime(2026, 6, 1, 21, 50, tzinfo=UTC))  # 09:50 in Auckland
        await run_journeys(tenure)
        assert await _messaged(tenure) == []
        frozen_clock.set(datetime(2026, 6, 1, 22, 5, tzinfo=UTC))  # 10:05 in Auckland
        await run_journeys(tenure)
        assert sorted(await _messaged(tenure)) == sorted([born, signed, born])
        frozen_clock.set(datetime(2026, 6, 3, 12, 0, tzinfo=UTC))  # the next days: nobody again
        await run_journeys(tenure)
        assert len(await entered()) == 3


async def test_points_webhook_events_and_the_forecast_of_due_steps(make_tenure: Callable[..., Any],
                                                                   frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys", "loyalty"]) as tenure:
        await created(tenure, name="Bonus", trigger="order_recorded", holdoutPercent=0, steps=[
            {"action": "points", "wait": "P1D", "params": {"points": 50, "reason": "thank you"}},
            {"action": "webhook", "wait": "P6D", "at": "10:00", "params": {"event": "thanked", "data": {"x": 1}}}])
        ada, ben = await customers(tenure, 2)
        await first_orders(tenure, [ada, ben])
        await record_order(tenure, str(ada), "ada-2", 1000)  # each order is an occurrence of its own
        async with tenure.db.reader() as session:
            start = frozen_clock.now()
            due = await journey_figures.steps_due(session, tenure.plugins, tenure.settings.zone, start,
                                                  start + timedelta(days=10))
        assert [(d.day.isoformat(), d.journey, d.step, d.action, d.customers) for d in due] == [
            ("2026-06-02", "Bonus", 1, "points", 3), ("2026-06-08", "Bonus", 2, "webhook", 3)]
        upcoming = await tenure.ok("{ upcoming(days: 10) { day items { plugin kind count summary } } }")
        journey_days = [(d["day"], i["kind"], i["count"], i["summary"]) for d in upcoming["upcoming"]
                        for i in d["items"] if i["plugin"] == "journeys"]
        assert journey_days == [("2026-06-02", "journeys.points", 3, "Bonus, step 1 (points): 3 customers"),
                                ("2026-06-08", "journeys.webhook", 3, "Bonus, step 2 (webhook): 3 customers")]
        assert await tenure.scalar("SELECT count(*) FROM journeys_step_runs") == 0  # nothing ran
        frozen_clock.advance(days=1)
        await run_journeys(tenure)
        await run_journeys(tenure)
        points = "query($id: ID!) { customer(id: $id) { points { balance } } }"
        assert (await tenure.ok(points, {"id": str(ada)}))["customer"]["points"]["balance"] >= 100
        bonus = await tenure.scalar("SELECT sum(points) FROM loyalty_entries WHERE reason LIKE 'thank you%'")
        assert bonus == 150
        frozen_clock.advance(days=7)
        await run_journeys(tenure)
        await run_journeys(tenure)
        assert await tenure.scalar("SELECT count(*) FROM events WHERE type = 'journeys.thanked'") == 3


async def test_churn_triggers_saved_segments_and_the_win_back_template(make_tenure: Callable[..., Any]) -> None:
    from tests.plugins.churn_support import NOW, TUNED, load_population

    save = """mutation($i: SaveSegmentInput!) { saveSegment(input: $i) { segment { customers(first: 50) {
        nodes { id } } } userErrors { field } } }"""
    members = """{ segments { name customers(first: 50) { nodes { id } } } }"""
    with freeze_time(NOW) as frozen:
        async with make_tenure(plugins=["churn", "journeys"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            saved = (await tenure.ok(save, {"i": {"name": "Warned", "filter": {"levels": ["MEDIUM", "HIGH"]}}}))
            before = {pk_of(n["id"]) for n in saved["saveSegment"]["segment"]["customers"]["nodes"]}
            assert ids["L"] in before
            missing = await create(tenure, name="Nope", trigger="entered_segment", triggerParams={"segment": "VIPs"},
                                   steps=[TAG])
            assert [(e["field"], e["code"]) for e in missing["userErrors"]] == [
                (["input", "triggerParams"], "NOT_FOUND")]
            mark = int(await tenure.scalar("SELECT max(id) FROM events"))
            segment_journey = await created(tenure, name="Rescue", trigger="entered_segment", holdoutPercent=0,
                                            triggerParams={"segment": "Warned"},
                                            steps=[{"action": "tag", "params": {"tag": "rescue"}}])
            win_back = (await tenure.ok("""mutation { startJourneyTemplate(input: {template: "churn_win_back",
                holdoutPercent: 0}) { journey { id exits } userErrors { field } } }"""))["startJourneyTemplate"]
            assert win_back["journey"]["exits"] == ["ordered", "warning_resolved"]
            await run_journeys(tenure)  # the first look records who is in the segment: nobody enters
            assert await tenure.scalar("SELECT count(*) FROM journeys_entries") == 0

            frozen.advance(days=120)  # the steady customer's last order is now 125 days ago
            await tenure.jobs.run("churn.rescore")
            after = {pk_of(n["id"]) for s in (await tenure.ok(members))["segments"]
                     for n in s["customers"]["nodes"]}
            assert ids["S"] in after - before
            warned_now = {int(c) for c in await _event_customers(tenure, "churn.warned", after=mark)}
            assert warned_now
            await run_journeys(tenure)
            await run_journeys(tenure)
            entered = await _entries(tenure)
            assert entered[pk_of(segment_journey["id"])] == after - before  # L was in it already: not again
            assert entered[pk_of(win_back["journey"]["id"])] == warned_now  # warnings raised since it started
            tagged = await tenure.scalar("SELECT count(*) FROM customer_tags WHERE tag = 'rescue'")
            assert tagged == len(after - before)
            # The coupon message is recorded, but these customers gave no consent: the step says why.
            skipped = await tenure.scalar("SELECT count(*) FROM journeys_step_runs WHERE status = 'skipped' "
                                          "AND detail LIKE 'message not sent: the customer has not consented%'")
            assert skipped == len(warned_now)

            # The steady customer comes back: the warning resolves and the win-back call is not made.
            await record_order(tenure, str(ids["S"]), "back", 1500)
            frozen.advance(days=8)
            await run_journeys(tenure)
            reason = await tenure.scalar("SELECT exit_reason FROM journeys_entries WHERE customer_id = :c AND "
                                         "journey_id = :j", c=ids["S"], j=pk_of(win_back["journey"]["id"]))
            assert reason in ("ordered", "warning_resolved")
            calls = await tenure.scalar("SELECT count(*) FROM tasks WHERE source = 'journeys'")
            assert calls == len(warned_now) - 1


async def _event_customers(tenure: TenureHarness, kind: str, after: int = 0) -> list[int]:
    async with tenure.db.reader() as session:
        from sqlalchemy import text

        return list((await session.scalars(text("SELECT customer_id FROM events WHERE type = :t AND id > :a"),
                                           {"t": kind, "a": after})).all())


async def _entries(tenure: TenureHarness) -> dict[int, set[int]]:
    async with tenure.db.reader() as session:
        from sqlalchemy import text

        found: dict[int, set[int]] = {}
        for journey_id, customer_id in await session.execute(text("SELECT journey_id, customer_id FROM "
                                                                   "journeys_entries")):
            found.setdefault(pk_of(journey_id), set()).add(pk_of(customer_id))
        return found


async def test_a_merge_keeps_one_entry_per_occurrence_and_the_export_shows_them(
        make_tenure: Callable[..., Any], frozen_clock: FrozenClock) -> None:
    async with make_tenure(plugins=["journeys"]) as tenure:
        from tenure.core.services.customers import CustomerData, create_customer, merge_customers

        async with tenure.transaction() as ctx:
            twins = [(await create_customer(ctx, CustomerData(name=f"Twin {n}", birthday=datetime(1990, 6, 2).date())
                                            )).id for n in range(2)]
        await created(tenure, name="Birthday", trigger="birthday", holdoutPercent=0,
                      steps=[{"action": "tag", "wait": "P1D", "params": {"tag": "celebrated"}}])
        thanks = await created(tenure, name="Thanks", trigger="order_recorded", holdoutPercent=0, steps=[TAG])
        await first_orders(tenure, [twins[1]])
        frozen_clock.advance(days=1)  # 2 June: both twins' birthday
        await run_journeys(tenure)
        assert await tenure.scalar("SELECT count(*) FROM journeys_entries") == 3
        async with tenure.transaction() as ctx:
            await merge_customers(ctx, twins[0], twins[1])
        rows = await _entries(tenure)
        assert all(customers_in == {twins[0]} for customers_in in rows.values())
        assert await tenure.scalar("SELECT count(*) FROM journeys_entries") == 2  # one birthday, one order
        exported = (await tenure.ok("query($id: ID!) { exportCustomer(id: $id) }", {"id": str(twins[0])}))
        journeys = exported["exportCustomer"]["plugins"]["journeys"]
        assert sorted(e["journey"] for e in journeys["entries"]) == ["Birthday", "Thanks"]
        assert [s["status"] for s in journeys["steps"]] == ["done"]  # the order's tag ran on day 1
        assert pk_of(thanks["id"]) in rows


async def test_journey_messages_keep_consent_and_quiet_hours(make_tenure: Callable[..., Any],
                                                             frozen_clock: FrozenClock) -> None:
    from tests.support.receivers import smtp_server

    with smtp_server() as mailbox:
        async with make_tenure(plugins=["journeys"], smtp_host="127.0.0.1", smtp_port=mailbox.port,
                               message_quiet_start_hour=21, message_quiet_end_hour=8) as tenure:
            await created(tenure, name="Late thanks", trigger="first_order", holdoutPercent=0,
                          steps=[{**WELCOME, "at": "22:00"}])
            willing = await customers(tenure, 1, prefix="w")
            unwilling = await customers(tenure, 1, prefix="u", consent=False)
            await first_orders(tenure, willing + unwilling)
            frozen_clock.set(datetime(2026, 6, 1, 22, 5, tzinfo=UTC))  # due, but inside quiet hours
            await run_journeys(tenure)
            assert mailbox.messages == []
            async with tenure.db.reader() as session:
                from sqlalchemy import text

                runs = (await session.execute(text("SELECT e.customer_id, r.status, r.detail FROM journeys_step_runs r "
                                                   "JOIN journeys_entries e ON e.id = r.entry_id"))).all()
            assert sorted((c, status) for c, status, _ in runs) == [(willing[0], "done"), (unwilling[0], "skipped")]
            assert [d for c, _, d in runs if c == unwilling[0]] == [
                "message not sent: the customer has not consented to email (consent.email is off)"]
            frozen_clock.set(datetime(2026, 6, 2, 8, 1, tzinfo=UTC))  # quiet hours are over
            await tenure.run_jobs()
            assert [rcpts for rcpts, _ in mailbox.messages] == [["w0@example.com"]]
