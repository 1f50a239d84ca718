"""The education plugin through Tenure's public API, as a school's app and staff use it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tenure.testing import (
    FrozenClock,
    JobRunner,
    TenureHarness,
    merge_customers,
    migration_differences,
    not_installed,
    pk_of,
)

import tenure_education

NEW_LEARNER = """
mutation($name: String!) { createCustomer(input: {name: $name}) { customer { id } userErrors { message } } }
"""
LOG = """
mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) { interaction { id } userErrors { field message code } }
}
"""
PROGRESS = """
query($id: ID!) {
  customer(id: $id) {
    education { completedCourses { course } lastLoginAt inactive }
    timeline(first: 20) { edges { node { summary } } }
  }
}
"""


async def learner(tenure_app: TenureHarness, name: str = "Ada") -> str:
    return (await tenure_app.ok(NEW_LEARNER, {"name": name}))["createCustomer"]["customer"]["id"]  # type: ignore[no-any-return]


async def log(tenure_app: TenureHarness, customer_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    data = await tenure_app.ok(LOG, {"input": {"customerId": customer_id, "kind": kind, "channel": "app", **extra}})
    return data["logInteraction"]  # type: ignore[no-any-return]


async def complete(tenure_app: TenureHarness, customer_id: str, course: str) -> dict[str, Any]:
    return await log(tenure_app, customer_id, "course_completed", payload={"course": course})


async def progress(tenure_app: TenureHarness, customer_id: str) -> dict[str, Any]:
    return (await tenure_app.ok(PROGRESS, {"id": customer_id}))["customer"]  # type: ignore[no-any-return]


def summaries(customer: dict[str, Any]) -> list[str]:
    return [e["node"]["summary"] for e in customer["timeline"]["edges"]]


async def test_a_completion_shows_on_the_learner_and_the_timeline(tenure_app: TenureHarness) -> None:
    ada = await learner(tenure_app)
    assert (await complete(tenure_app, ada, "Python-101"))["userErrors"] == []
    customer = await progress(tenure_app, ada)
    assert customer["education"]["completedCourses"] == [{"course": "python-101"}]
    assert "Completed course python-101" in summaries(customer)


async def test_a_course_counts_once_and_a_completion_needs_its_course(tenure_app: TenureHarness) -> None:
    ada = await learner(tenure_app)
    await complete(tenure_app, ada, "python-101")
    await complete(tenure_app, ada, "python-101")
    refused = await log(tenure_app, ada, "course_completed", payload={"score": 90})
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["input", "payload"], "INVALID")]
    assert refused["interaction"] is None
    customer = await progress(tenure_app, ada)
    assert customer["education"]["completedCourses"] == [{"course": "python-101"}]
    assert summaries(customer).count("Completed course python-101") == 1
    # The refused completion's interaction was rolled back with it.
    assert await tenure_app.scalar("SELECT count(*) FROM interactions") == 2


@pytest.mark.parametrize("tenure_plugins", [["education", "tiers"]])
async def test_completions_move_a_learner_up_a_tier(tenure_app: TenureHarness) -> None:
    created = await tenure_app.ok('mutation { createTier(input: {name: "Scholar", rank: 1, minPoints: 200}) '
                                  "{ tier { id } userErrors { message } } }")
    assert created["createTier"]["userErrors"] == []
    ada = await learner(tenure_app)
    tier = "query($id: ID!) { customer(id: $id) { tier { tier { name } reason } } }"
    await complete(tenure_app, ada, "python-101")
    assert (await tenure_app.ok(tier, {"id": ada}))["customer"]["tier"]["tier"] is None
    await complete(tenure_app, ada, "sql-basics")
    reached = (await tenure_app.ok(tier, {"id": ada}))["customer"]["tier"]
    assert reached["tier"] == {"name": "Scholar"}
    assert reached["reason"].startswith("course sql-basics completed: 200 qualifying points")


async def test_no_login_for_a_week_opens_one_follow_up_task(
    tenure_app: TenureHarness, frozen_clock: FrozenClock, job_runner: JobRunner
) -> None:
    ada, grace, carl = await learner(tenure_app, "Ada"), await learner(tenure_app, "Grace"), await learner(
        tenure_app, "Carl (no courses)")
    for person in (ada, grace):
        await complete(tenure_app, person, "python-101")
        await log(tenure_app, person, "login")
    await log(tenure_app, carl, "login")
    frozen_clock.advance(days=6)
    await log(tenure_app, grace, "login")
    frozen_clock.advance(days=2)

    await job_runner.run("education.flag_inactive")
    await job_runner.run("education.flag_inactive")

    tasks = await tenure_app.ok("{ tasks(first: 10) { edges { node { title customer { name } } } } }")
    assert [e["node"] for e in tasks["tasks"]["edges"]] == [
        {"title": "Learner has not logged in for 8 days", "customer": {"name": "Ada"}}]
    assert (await progress(tenure_app, ada))["education"]["inactive"] is True
    assert (await progress(tenure_app, grace))["education"]["inactive"] is False


async def test_a_learner_sees_their_own_progress(
    tenure_app: TenureHarness, tenure_client: Callable[..., Awaitable[Any]]
) -> None:
    ada = await learner(tenure_app)
    await complete(tenure_app, ada, "python-101")
    await log(tenure_app, ada, "login")
    app = await tenure_client("member", customer_id=pk_of(ada))
    me = await app.ok("{ me { education { completedCourses { course } inactive lastLoginAt } } }")
    assert me["me"]["education"]["completedCourses"] == [{"course": "python-101"}]
    assert me["me"]["education"]["lastLoginAt"] is not None
    refused = await app.gql("{ educationCourseCounts { course learners } }")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_merging_learners_keeps_every_course_once(tenure_app: TenureHarness, frozen_clock: FrozenClock) -> None:
    ada, twin = await learner(tenure_app, "Ada"), await learner(tenure_app, "Ada L.")
    await complete(tenure_app, twin, "python-101")
    frozen_clock.advance(days=3)
    await complete(tenure_app, ada, "python-101")
    await complete(tenure_app, twin, "sql-basics")
    async with tenure_app.transaction() as ctx:
        await merge_customers(ctx, pk_of(ada), pk_of(twin))
    courses = (await progress(tenure_app, ada))["education"]["completedCourses"]
    assert courses == [{"course": "python-101"}, {"course": "sql-basics"}]
    counts = await tenure_app.ok("{ educationCourseCounts { course learners } }")
    assert counts["educationCourseCounts"] == [{"course": "python-101", "learners": 1},
                                               {"course": "sql-basics", "learners": 1}]


def test_migrations_create_exactly_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    assert migration_differences(url, ["education"], not_installed(tenure_education), only="education") == []


@pytest.mark.parametrize("tenure_plugins", [["education", "churn"]])
async def test_no_login_for_two_weeks_is_a_churn_signal(
    tenure_app: TenureHarness, frozen_clock: FrozenClock, job_runner: JobRunner
) -> None:
    ada, grace = await learner(tenure_app, "Ada"), await learner(tenure_app, "Grace")
    for person in (ada, grace):
        await complete(tenure_app, person, "python-101")
        await log(tenure_app, person, "login")
    frozen_clock.advance(days=10)
    await log(tenure_app, grace, "login")
    frozen_clock.advance(days=5)
    await job_runner.run("churn.rescore")
    risk = "query($id: ID!) { customer(id: $id) { churnRisk { score level reasons } } }"
    rules = (await tenure_app.ok("{ churnRules { kind plugin threshold } }"))["churnRules"]
    assert {"kind": "no_login", "plugin": "education", "threshold": 14.0} in rules
    assert (await tenure_app.ok(risk, {"id": ada}))["customer"]["churnRisk"] == {
        "score": 55, "level": "MEDIUM", "reasons": ["no login for 14 days"]}
    assert (await tenure_app.ok(risk, {"id": grace}))["customer"]["churnRisk"]["reasons"] == []
