"""Tasks (one open task per cause, "my open tasks"), API keys and member tokens."""

from __future__ import annotations

import asyncio

from tenure.core import clock
from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import ERRORS, create_customer

CREATE_TASK = f"""mutation($input: CreateTaskInput!) {{
  createTask(input: $input) {{ created task {{ id status source sourceKey assignee {{ email }} }} {ERRORS} }}
}}"""
MY_TASKS = "{ tasks(first: 20, filter: {mine: true, status: OPEN}) { totalCount nodes { title } } }"


async def test_one_open_task_per_cause_even_when_created_at_once(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure)
    await tenure.key()
    task = {"title": "Win back", "customerId": cid, "source": "churn", "sourceKey": f"warning:{cid}"}
    answers = await asyncio.gather(*[tenure.ok(CREATE_TASK, {"input": task}) for _ in range(6)])
    payloads = [a["createTask"] for a in answers]
    assert all(p["userErrors"] == [] for p in payloads)
    assert sum(p["created"] for p in payloads) == 1
    assert len({p["task"]["id"] for p in payloads}) == 1
    assert await tenure.scalar("SELECT count(*) FROM tasks") == 1
    task_id = payloads[0]["task"]["id"]
    done = await tenure.ok(
        f"mutation($id: ID!) {{ completeTask(input: {{taskId: $id}}) {{ task {{ status }} {ERRORS} }} }}",
        {"id": task_id},
    )
    assert done["completeTask"]["task"]["status"] == "DONE"
    # The cause fires again later: a new open task, since the first one is closed.
    reopened = (await tenure.ok(CREATE_TASK, {"input": task}))["createTask"]
    assert reopened["created"] is True and reopened["task"]["id"] != task_id


async def test_my_open_tasks_with_a_staff_key(tenure: TenureHarness) -> None:
    sam_key = await tenure.key("staff", staff_email="sam@example.com")
    kim_key = await tenure.key("staff", staff_email="kim@example.com")
    sam = (await tenure.ok("{ viewer { role staffUser { id email } } }", key=sam_key))["viewer"]
    assert sam["role"] == "STAFF" and sam["staffUser"]["email"] == "sam@example.com"
    owned = await create_customer(tenure, "Owned by Sam", ownerId=sam["staffUser"]["id"])
    other = await create_customer(tenure, "Nobody's")
    mine = (await tenure.ok(CREATE_TASK, {"input": {"title": "Call back", "customerId": owned}}))["createTask"]
    assert mine["task"]["assignee"] == {"email": "sam@example.com"}
    await tenure.ok(CREATE_TASK, {"input": {"title": "Unassigned", "customerId": other}})
    assert (await tenure.ok(MY_TASKS, key=sam_key))["tasks"] == {"totalCount": 1, "nodes": [{"title": "Call back"}]}
    assert (await tenure.ok(MY_TASKS, key=kim_key))["tasks"]["totalCount"] == 0
    kim_id = (await tenure.ok("{ viewer { staffUser { id } } }", key=kim_key))["viewer"]["staffUser"]["id"]
    moved = await tenure.ok(
        f"mutation($t: ID!, $a: ID) {{ assignTask(input: {{taskId: $t, assigneeId: $a}}) "
        f"{{ task {{ assignee {{ email }} }} {ERRORS} }} }}",
        {"t": mine["task"]["id"], "a": kim_id},
        key=sam_key,
    )
    assert moved["assignTask"]["task"]["assignee"] == {"email": "kim@example.com"}
    assert (await tenure.ok(MY_TASKS, key=kim_key))["tasks"]["totalCount"] == 1
    await tenure.ok(
        f"mutation($t: ID!) {{ completeTask(input: {{taskId: $t}}) {{ {ERRORS} }} }}",
        {"t": mine["task"]["id"]},
        key=kim_key,
    )
    assert (await tenure.ok(MY_TASKS, key=kim_key))["tasks"]["totalCount"] == 0
    admin = await tenure.gql(MY_TASKS, key=await tenure.key("admin"))
    assert admin["errors"][0]["extensions"]["field"] == "filter.mine"


async def test_api_keys_are_stored_hashed_and_checked(tenure: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    await create_customer(tenure, "Secretive")
    created = (
        await tenure.ok(
            'mutation { createApiKey(input: {name: "shop", role: "integration", expiresAt: "2026-06-02T09:00:00Z"}) '
            f"{{ key keyId prefix {ERRORS} }} }}"
        )
    )["createApiKey"]
    key = created["key"]
    assert key.startswith(f"tnr_{created['prefix']}_")
    stored = await tenure.scalar("SELECT key_hash FROM api_keys WHERE id = :id", id=pk_of(created["keyId"]))
    assert stored != key and key not in stored and len(stored) == 64
    read = "{ customers(first: 5) { totalCount } }"
    assert (await tenure.ok(read, key=key))["customers"]["totalCount"] == 1
    frozen_clock.advance(days=1)
    expired = await tenure.gql(read, key=key)
    assert expired["data"] is None and expired["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in expired["errors"][0]["message"]
    other = await tenure.ok(
        f'mutation {{ createApiKey(input: {{name: "pos", role: "staff"}}) {{ key keyId {ERRORS} }} }}'
    )
    other_key, other_id = other["createApiKey"]["key"], other["createApiKey"]["keyId"]
    assert (await tenure.ok(read, key=other_key))["customers"]["totalCount"] == 1
    revoked = await tenure.ok(
        f"mutation($id: ID!) {{ revokeApiKey(keyId: $id) {{ revoked {ERRORS} }} }}", {"id": other_id}
    )
    assert revoked["revokeApiKey"]["revoked"] is True
    refused = await tenure.gql(read, key=other_key)
    assert refused["data"] is None and "revoked" in refused["errors"][0]["message"]
    for bad in (None, "tnr_nothere_x", "garbage"):
        answer = await tenure.gql(read, key=bad)
        assert answer["data"] is None
        assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    wrong_scheme = await tenure.client.post("/graphql", json={"query": read}, headers={"Authorization": f"Basic {key}"})
    assert wrong_scheme.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    bad_role = await tenure.ok(f'mutation {{ createApiKey(input: {{name: "x", role: "root"}}) {{ key {ERRORS} }} }}')
    assert bad_role["createApiKey"]["key"] is None
    assert bad_role["createApiKey"]["userErrors"][0]["field"] == ["input", "role"]


async def test_integration_scopes_and_roles(tenure: TenureHarness) -> None:
    await create_customer(tenure, "Scoped")
    scoped = await tenure.key("integration", scopes=["orders:write"])
    denied = await tenure.gql("{ customers(first: 1) { totalCount } }", key=scoped)
    assert (
        denied["errors"][0]["extensions"]["code"] == "FORBIDDEN" and "customers:read" in denied["errors"][0]["message"]
    )
    staff = await tenure.key("staff")
    forbidden = await tenure.gql('mutation { createApiKey(input: {name: "x", role: "admin"}) { key } }', key=staff)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await tenure.scalar("SELECT count(*) FROM api_keys WHERE name = 'x'") == 0


async def test_member_tokens(tenure: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    mine = await create_customer(tenure, "Mia", emails=["mia@example.com"])
    await create_customer(tenure, "Other")
    issued = (
        await tenure.ok(
            f"mutation($c: ID!) {{ issueMemberToken(input: {{customerId: $c}}) {{ token expiresAt {ERRORS} }} }}",
            {"c": mine},
        )
    )["issueMemberToken"]
    token = issued["token"]
    assert issued["expiresAt"].startswith("2026-06-01T10:00:00")
    me = await tenure.ok("{ me { id name emails } }", key=token)
    assert me["me"] == {"id": mine, "name": "Mia", "emails": ["mia@example.com"]}
    for query in ("{ customers(first: 5) { totalCount } }", "{ tasks(first: 5) { totalCount } }"):
        answer = await tenure.gql(query, key=token)
        assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert (await tenure.gql("{ me { id } }", key=tampered))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    unknown = await tenure.ok(f'mutation {{ issueMemberToken(input: {{customerId: "999"}}) {{ token {ERRORS} }} }}')
    assert unknown["issueMemberToken"]["token"] is None
    assert unknown["issueMemberToken"]["userErrors"][0]["field"] == ["input", "customerId"]
    frozen_clock.advance(hours=1, seconds=1)
    late = await tenure.gql("{ me { id } }", key=token)
    assert late["data"] is None and "expired" in late["errors"][0]["message"]


UPDATE_ME = f"""mutation($input: UpdateMeInput!) {{
  updateMe(input: $input) {{ me {{ id name emails consent {{ email sms }} }} {ERRORS} }}
}}"""


async def test_a_member_changes_only_their_own_profile(tenure: TenureHarness) -> None:
    mine = await create_customer(tenure, "Mia", emails=["mia@example.com"], tags=["vip"])
    await create_customer(tenure, "Other", emails=["other@example.com"])
    token = tenure.member_token(pk_of(mine))
    changed = (await tenure.ok(UPDATE_ME, {"input": {"name": "Mia R.", "consent": {"email": True}}}, key=token))
    assert changed["updateMe"] == {"me": {"id": mine, "name": "Mia R.", "emails": ["mia@example.com"],
                                          "consent": {"email": True, "sms": False}}, "userErrors": []}
    bad = (await tenure.ok(UPDATE_ME, {"input": {"emails": ["nope"]}}, key=token))["updateMe"]
    assert bad["me"] is None and bad["userErrors"][0]["field"] == ["input", "emails"]
    kept = (await tenure.ok(UPDATE_ME, {"input": {"name": None}}, key=token))["updateMe"]
    assert kept["me"]["name"] == "Mia R."
    staff = await tenure.gql(UPDATE_ME, {"input": {"name": "X"}}, key=await tenure.key("staff"))
    assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    names = await tenure.ok('{ customers(first: 5) { nodes { name tags consent { email } } } }')
    assert sorted((n["name"], n["tags"], n["consent"]["email"]) for n in names["customers"]["nodes"]) == [
        ("Mia R.", ["vip"], True), ("Other", [], False)]
