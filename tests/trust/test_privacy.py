"""Personal data: export everything about a customer, erase it keeping history and totals,
and an audit log of who read or changed what, readable by admins only."""

from __future__ import annotations

import types
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData, PluginInfo
from tenure.core.models import CustomerTag, Order
from tenure.core.plugins import hookimpl
from tenure.testing import TenureHarness, pk_of

CREATE = """mutation($input: CustomerInput!) { createCustomer(input: $input) {
  customer { id } userErrors { field message } } }"""
ORDER = """mutation($input: RecordOrderInput!) { recordOrder(input: $input) {
  created order { id } userErrors { field message } } }"""
EXPORT = "query($id: ID!) { exportCustomer(id: $id) }"
ERASE = """mutation($id: ID!) { eraseCustomer(input: {customerId: $id}) {
  erasedAt customer { name emails phones identities { kind value } tags birthday orderCount totalSpent { amount } }
  userErrors { field message code } } }"""
AUDIT = """query($actor: String, $customerId: ID, $after: String) {
  auditLog(first: 50, actor: $actor, customerId: $customerId, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { actor role kind operation customerId outcome } } }"""


async def _customer(tenure: TenureHarness, key: str | None = None) -> str:
    data = await tenure.ok(CREATE, {"input": {
        "name": "Ada Lovelace", "emails": ["ada@example.com"], "phones": ["+44 20 7946 0958"],
        "identities": [{"kind": "pos", "value": "M-1815"}], "tags": ["vip"], "birthday": "1815-12-10",
        "consent": {"email": True}}}, key=key)
    assert data["createCustomer"]["userErrors"] == []
    cid = str(data["createCustomer"]["customer"]["id"])
    for n, amount in ((1, 1200), (2, 800)):
        placed = await tenure.ok(ORDER, {"input": {"customerId": cid, "channel": "web", "externalId": f"E{n}",
                                                   "currency": "USD", "amount": amount}}, key=key)
        assert placed["recordOrder"]["userErrors"] == []
    await tenure.ok("""mutation($c: ID!) { logInteraction(input: {customerId: $c, kind: "call", channel: "phone",
        summary: "Ada asked about her order"}) { created } }""", {"c": cid}, key=key)
    return cid


def _notes_plugin() -> types.ModuleType:
    """A plugin that answers the personal-data hook from real rows: the customer's orders
    (export) and a marker tag written in the erasing transaction (erase)."""
    module = types.ModuleType("notes_plugin")

    async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
        count = await session.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer_id))
        return {"orders_seen": count}

    async def erase(session: AsyncSession, customer_id: int) -> None:
        session.add(CustomerTag(customer_id=customer_id, tag="erased-by-notes"))

    module.tenure_plugin_info = hookimpl(lambda: PluginInfo(name="notes", version="1", summary="test"))  # type: ignore[attr-defined]
    module.tenure_personal_data = hookimpl(lambda: [PersonalData("notes", export, erase)])  # type: ignore[attr-defined]
    return module


async def test_export_holds_everything_about_the_customer_and_nothing_of_others(make_tenure: Any) -> None:
    async with make_tenure(plugins=["notes"], extra_plugins=[_notes_plugin()]) as tenure:
        cid = await _customer(tenure)
        other = await tenure.ok(CREATE, {"input": {"name": "Grace Hopper", "emails": ["grace@example.com"]}})
        assert other["createCustomer"]["userErrors"] == []
        doc = (await tenure.ok(EXPORT, {"id": cid}))["exportCustomer"]
        assert doc["customer"]["name"] == "Ada Lovelace" and doc["customer"]["birthday"] == "1815-12-10"
        assert {c["value"] for c in doc["customer_contacts"]} == {"ada@example.com", "+442079460958"}
        assert doc["customer_identities"][0]["value"] == "M-1815"
        assert sorted(o["amount"] for o in doc["orders"]) == [800, 1200]
        assert doc["interactions"][0]["summary"] == "Ada asked about her order"
        assert any(e["type"].startswith("order") for e in doc["events"])
        assert doc["plugins"] == {"notes": {"orders_seen": 2}}
        assert "grace" not in str(doc).lower()
        missing = await tenure.gql(EXPORT, {"id": "999999"}, key=await tenure.key("admin"))
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        staff = await tenure.gql(EXPORT, {"id": cid}, key=await tenure.key("staff"))
        assert staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_erase_removes_personal_fields_and_keeps_history_and_totals(make_tenure: Any) -> None:
    async with make_tenure(plugins=["notes"], extra_plugins=[_notes_plugin()]) as tenure:
        cid = await _customer(tenure)
        erased = (await tenure.ok(ERASE, {"id": cid}))["eraseCustomer"]
        assert erased["userErrors"] == [] and erased["erasedAt"]
        customer = erased["customer"]
        assert customer["name"] == "erased"
        assert customer["emails"] == [] and customer["phones"] == [] and customer["identities"] == []
        assert customer["birthday"] is None
        assert customer["orderCount"] == 2 and customer["totalSpent"]["amount"] == 2000
        assert customer["tags"] == ["erased-by-notes"]  # the plugin's erase ran in the same transaction
        doc = (await tenure.ok(EXPORT, {"id": cid}))["exportCustomer"]
        assert doc["customer"]["erased_at"] and doc["customer"]["consent_email"] is False
        assert "Ada" not in str(doc) and "ada@example.com" not in str(doc) and "M-1815" not in str(doc)
        assert len(doc["orders"]) == 2 and len(doc["interactions"]) == 1
        assert doc["interactions"][0]["summary"] == ""
        # The same identity can now be given to someone else, and erasing again changes nothing.
        again = (await tenure.ok(ERASE, {"id": cid}))["eraseCustomer"]
        reused = await tenure.ok("""mutation { upsertCustomer(input: {identity: {kind: "pos", value: "M-1815"},
            customer: {name: "New Holder"}}) { created customer { id } } }""")
        assert reused["upsertCustomer"]["created"] is True and reused["upsertCustomer"]["customer"]["id"] != cid
        assert again["erasedAt"] == erased["erasedAt"]
        problems = await tenure.gql(ERASE, {"id": "424242"}, key=await tenure.key("admin"))
        assert problems["data"]["eraseCustomer"]["userErrors"][0]["field"] == ["input", "customerId"]


async def test_audit_log_records_writes_and_staff_reads_for_admins(tenure: TenureHarness) -> None:
    staff_key = await tenure.key("staff", staff_email="sam@example.com")
    cid = await _customer(tenure, key=staff_key)
    await tenure.ok("query($id: ID!) { customer(id: $id) { name } }", {"id": cid}, key=staff_key)
    refused = await tenure.ok(ORDER, {"input": {"customerId": cid, "channel": "web", "externalId": "E3",
                                                "currency": "XXX", "amount": 5}}, key=staff_key)
    assert refused["recordOrder"]["userErrors"][0]["field"] == ["input", "currency"]
    denied = await tenure.gql('mutation { revokeApiKey(keyId: "1") { revoked } }', key=staff_key)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await tenure.ok("{ me { name } }", key=tenure.member_token(pk_of(cid)))

    viewer = await tenure.ok("{ viewer { name } }", key=staff_key)
    assert viewer["viewer"]["name"]
    key_id = await tenure.scalar("SELECT id FROM api_keys WHERE staff_user_id IS NOT NULL")
    log = (await tenure.ok(AUDIT, {"actor": f"key:{key_id}"}))["auditLog"]
    seen = [(n["kind"], n["operation"], n["outcome"]) for n in reversed(log["nodes"])]
    assert seen == [
        ("write", "createCustomer", "ok"), ("write", "recordOrder", "ok"), ("write", "recordOrder", "ok"),
        ("write", "logInteraction", "ok"), ("read", "customer", "ok"), ("write", "recordOrder", "refused"),
        ("write", "revokeApiKey", "denied"),
    ]
    assert all(n["role"] == "staff" for n in log["nodes"])
    about = (await tenure.ok(AUDIT, {"customerId": cid}))["auditLog"]
    assert {n["operation"] for n in about["nodes"]} >= {"recordOrder", "logInteraction", "customer"}
    assert all(n["customerId"] == cid for n in about["nodes"])
    assert not any(n["actor"].startswith("member:") for n in about["nodes"])  # a member's own reads are not logged
    forbidden = await tenure.gql(AUDIT, {}, key=staff_key)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
