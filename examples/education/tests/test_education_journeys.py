"""The education plugin's journey trigger: a journey starts when a learner completes a course
(one course, when the journey says which), with the journeys plugin on."""

from __future__ import annotations

import pytest
from tenure.testing import FrozenClock, TenureHarness

from tests.test_education import complete, learner

CREATE = """mutation($input: CreateJourneyInput!) { createJourney(input: $input) {
  journey { id trigger triggerParams } userErrors { field code message } } }"""


@pytest.fixture
def tenure_plugins() -> list[str]:
    return ["education", "journeys"]


async def test_completing_the_course_starts_the_journey(tenure_app: TenureHarness, frozen_clock: FrozenClock) -> None:
    triggers = await tenure_app.ok("{ journeyTriggers { name kind eventType } }")
    assert {"name": "education.course_completed", "kind": "event",
            "eventType": "education.course_completed"} in triggers["journeyTriggers"]
    made = (await tenure_app.ok(CREATE, {"input": {
        "name": "Python graduates", "trigger": "education.course_completed", "triggerParams": {"course": "Python-101"},
        "holdoutPercent": 0, "steps": [{"action": "tag", "params": {"tag": "python-graduate"}}]}}))["createJourney"]
    assert made["userErrors"] == [] and made["journey"]["triggerParams"] == {"course": "python-101"}

    ada, ben = await learner(tenure_app, "Ada"), await learner(tenure_app, "Ben")
    await complete(tenure_app, ada, "Python-101")
    await complete(tenure_app, ben, "SQL-1")
    frozen_clock.advance(minutes=5)
    await tenure_app.jobs.run("journeys.run")
    await tenure_app.jobs.run("journeys.run")
    tagged = await tenure_app.ok("""query($a: ID!, $b: ID!) { a: customer(id: $a) { tags } b: customer(id: $b) {
        tags } }""", {"a": ada, "b": ben})
    assert tagged == {"a": {"tags": ["python-graduate"]}, "b": {"tags": []}}

    bad = (await tenure_app.ok(CREATE, {"input": {
        "name": "Wrong", "trigger": "education.course_completed", "triggerParams": {"lesson": 3},
        "steps": [{"action": "tag", "params": {"tag": "x"}}]}}))["createJourney"]
    assert bad["journey"] is None
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [(["input", "triggerParams"], "INVALID")]
