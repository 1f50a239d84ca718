"""API keys: scoped, expired, revoked and rotated keys behave as their holder expects, and
no key or token ever reaches the logs."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import event

from tenure.core import auth, clock
from tenure.testing import TenureHarness, pk_of

ROTATE = """mutation($id: ID!, $grace: Int!) { rotateApiKey(input: {keyId: $id, graceSeconds: $grace}) {
  key keyId prefix userErrors { field message code } } }"""
CUSTOMERS = "{ customers(first: 1) { totalCount } }"


async def _code(tenure: TenureHarness, query: str, key: str) -> str | None:
    answer = await tenure.gql(query, key=key)
    return answer["errors"][0]["extensions"]["code"] if answer.get("errors") else None


async def test_scoped_integration_key_reaches_only_its_scopes(tenure: TenureHarness) -> None:
    reader = await tenure.key("integration", scopes=["customers:read"])
    everything = await tenure.key("integration")
    assert await _code(tenure, CUSTOMERS, reader) is None
    order = ('mutation { recordOrder(input: {customerId: "1", channel: "web", externalId: "x", currency: "USD", '
             "amount: 1}) { created } }")
    answer = await tenure.gql(order, key=reader)
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "orders:write" in answer["errors"][0]["message"]
    assert await _code(tenure, order, everything) is None  # an unscoped key has every scope


async def test_expired_and_revoked_keys_are_refused(tenure: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    async with tenure.db.transaction() as session:
        soon = await auth.create_api_key(session, name="temp", role="staff",
                                         expires_at=clock.now() + timedelta(hours=1))
    assert await _code(tenure, CUSTOMERS, soon.key) is None
    frozen_clock.advance(hours=2)
    answer = await tenure.gql(CUSTOMERS, key=soon.key)
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "expired" in answer["errors"][0]["message"]
    staff = await tenure.key("staff", staff_email="s@example.com")
    key_id = await tenure.scalar("SELECT id FROM api_keys WHERE staff_user_id IS NOT NULL")
    revoked = await tenure.ok(f'mutation {{ revokeApiKey(keyId: "{key_id}") {{ revoked }} }}')
    assert revoked["revokeApiKey"]["revoked"] is True
    answer = await tenure.gql(CUSTOMERS, key=staff)
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in answer["errors"][0]["message"]


async def test_rotation_replaces_a_key_keeping_role_and_scopes(tenure: TenureHarness,
                                                               frozen_clock: clock.FrozenClock) -> None:
    old = await tenure.key("integration", scopes=["customers:read"])
    old_id = await tenure.scalar("SELECT id FROM api_keys WHERE role = 'integration'")
    rotated = (await tenure.ok(ROTATE, {"id": str(old_id), "grace": 600}))["rotateApiKey"]
    assert rotated["userErrors"] == [] and rotated["key"].startswith(f"tnr_{rotated['prefix']}_")
    new = rotated["key"]
    assert await _code(tenure, CUSTOMERS, new) is None
    create = 'mutation { createCustomer(input: {name: "x"}) { userErrors { message } } }'
    assert await _code(tenure, create, new) == "FORBIDDEN"  # the same scopes as the old key
    assert await _code(tenure, CUSTOMERS, old) is None  # still inside the grace period
    frozen_clock.advance(seconds=601)
    assert await _code(tenure, CUSTOMERS, old) == "UNAUTHENTICATED"
    assert await _code(tenure, CUSTOMERS, new) is None
    at_once = (await tenure.ok(ROTATE, {"id": rotated["keyId"], "grace": 0}))["rotateApiKey"]
    assert await _code(tenure, CUSTOMERS, new) == "UNAUTHENTICATED"
    assert await _code(tenure, CUSTOMERS, at_once["key"]) is None
    again = (await tenure.ok(ROTATE, {"id": rotated["keyId"], "grace": 0}))["rotateApiKey"]
    assert again["key"] is None and again["userErrors"][0]["field"] == ["input", "keyId"]
    bad = (await tenure.ok(ROTATE, {"id": at_once["keyId"], "grace": -5}))["rotateApiKey"]
    assert bad["userErrors"][0]["field"] == ["input", "graceSeconds"]


async def test_keys_and_tokens_never_reach_the_logs(tenure: TenureHarness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    admin = await tenure.key("admin")
    created = await tenure.ok('mutation { createApiKey(input: {name: "partner", role: "integration"}) { key keyId } }')
    partner = created["createApiKey"]["key"]
    customer = await tenure.ok('mutation { createCustomer(input: {name: "Lin"}) { customer { id } } }', key=partner)
    cid = pk_of(customer["createCustomer"]["customer"]["id"])
    token = (await tenure.ok(f'mutation {{ issueMemberToken(input: {{customerId: "{cid}"}}) {{ token }} }}'))
    member = token["issueMemberToken"]["token"]
    await tenure.gql("{ me { name } }", key=member)
    await tenure.gql("{ customer(id: \"not-a-number\") { name } }", key=partner)
    partner_id = created["createApiKey"]["keyId"]
    await tenure.gql(f'mutation {{ revokeApiKey(keyId: "{partner_id}") {{ revoked }} }}', key=admin)
    await tenure.gql(CUSTOMERS, key=partner)  # refused: revoked
    await tenure.gql(CUSTOMERS, key=member[:-3] + "abc")  # refused: bad signature
    await tenure.gql(CUSTOMERS, key="tnr_deadbeef_" + "x" * 43)  # refused: unknown
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert "api_keys" in logged, "the test must see the SQL log to prove anything"
    # A key is tnr_<prefix>_<secret>; the secret itself may hold "_" (URL-safe base64).
    secrets_ = (admin, partner, member, member.split(".")[-1], partner.split("_", 2)[2])
    assert all(len(secret) >= 20 for secret in secrets_)
    for secret in secrets_:
        assert secret not in logged


async def test_a_write_reads_its_key_on_the_connection_it_writes_on(tenure: TenureHarness) -> None:
    """A mutation takes one connection from the pool, not one to read its key and another to
    write; a key refused there writes nothing, and a key that revokes itself is refused next."""
    key = await tenure.key("admin")
    create = 'mutation { createCustomer(input: {name: "Ada"}) { customer { id } userErrors { message } } }'
    checkouts: list[object] = []

    def checked_out(_dbapi: object, _record: object, proxy: object) -> None:
        checkouts.append(proxy)

    event.listen(tenure.db.engine.sync_engine, "checkout", checked_out)
    try:
        await tenure.ok(create, key=key)
    finally:
        event.remove(tenure.db.engine.sync_engine, "checkout", checked_out)
    assert len(checkouts) == 1
    assert await tenure.scalar("SELECT count(*) FROM customers") == 1
    own_id = await tenure.scalar("SELECT id FROM api_keys")
    revoked = await tenure.ok(f'mutation {{ revokeApiKey(keyId: "{own_id}") {{ revoked }} }}', key=key)
    assert revoked["revokeApiKey"]["revoked"] is True
    answer = await tenure.gql(create, key=key)
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in answer["errors"][0]["message"]
    assert await tenure.scalar("SELECT count(*) FROM customers") == 1
