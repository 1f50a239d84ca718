"""Customers over GraphQL: create, update, upsert by identity, merge, tag, find duplicates."""

from __future__ import annotations

from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import (
    CREATE_CUSTOMER,
    ERRORS,
    LOG_INTERACTION,
    create_customer,
    record_order,
    row_counts,
)

UPDATE = f"""
mutation($input: UpdateCustomerInput!) {{
  updateCustomer(input: $input) {{
    customer {{ id name emails phones tags birthday consent {{ email sms }} }} {ERRORS}
  }}
}}"""

UPSERT = f"""
mutation($input: UpsertCustomerInput!) {{
  upsertCustomer(input: $input) {{ created customer {{ id name emails identities {{ kind value }} }} {ERRORS} }}
}}"""

MERGE = f"""
mutation($input: MergeCustomersInput!) {{
  mergeCustomers(input: $input) {{
    dryRun conflicts moved {{ kind count }}
    customer {{ id emails tags orderCount totalSpent {{ amount }} identities {{ kind value }} }}
    {ERRORS}
  }}
}}"""

TAG = f"""
mutation($input: TagCustomersInput!) {{ tagCustomers(input: $input) {{ updated {ERRORS} }} }}"""


async def test_create_normalises_and_reads_back(tenure: TenureHarness) -> None:
    data = await tenure.ok(
        CREATE_CUSTOMER,
        {
            "input": {
                "name": "  Ada Lovelace ",
                "emails": ["ADA@Example.com", "ada@example.com"],
                "phones": ["+44 (20) 7946-0958"],
                "tags": ["VIP", "vip", "newsletter"],
                "identities": [{"kind": "POS", "value": "M-100"}],
            }
        },
    )
    customer = data["createCustomer"]["customer"]
    assert customer["name"] == "Ada Lovelace"
    assert customer["emails"] == ["ada@example.com"]
    assert customer["phones"] == ["+442079460958"]
    assert customer["tags"] == ["newsletter", "vip"]  # alphabetical
    assert customer["identities"] == [{"kind": "pos", "value": "M-100"}]
    found = await tenure.ok('{ customers(first: 5, filter: {search: "M-100"}) { totalCount nodes { name } } }')
    assert found["customers"]["nodes"] == [{"name": "Ada Lovelace"}]
    by_phone = await tenure.ok('{ customers(first: 5, filter: {search: "+44 20 7946 0958"}) { totalCount } }')
    assert by_phone["customers"]["totalCount"] == 1


async def test_update_changes_only_given_fields(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure, "Grace", emails=["g@example.com"], tags=["a"], phones=["5551234567"])
    data = await tenure.ok(
        UPDATE,
        {
            "input": {
                "id": cid,
                "customer": {"name": "Grace Hopper", "consent": {"email": True}, "birthday": "1906-12-09"},
            }
        },
    )
    customer = data["updateCustomer"]["customer"]
    assert customer["name"] == "Grace Hopper"
    assert customer["emails"] == ["g@example.com"] and customer["tags"] == ["a"]
    assert customer["phones"] == ["5551234567"]
    assert customer["consent"] == {"email": True, "sms": False}
    assert customer["birthday"] == "1906-12-09"
    data = await tenure.ok(UPDATE, {"input": {"id": cid, "customer": {"emails": ["new@example.com"]}}})
    assert data["updateCustomer"]["customer"]["emails"] == ["new@example.com"]
    assert data["updateCustomer"]["customer"]["phones"] == ["5551234567"]


async def test_upsert_is_idempotent_by_identity(tenure: TenureHarness) -> None:
    payload = {"identity": {"kind": "shop", "value": "S-1"}, "customer": {"name": "Linus", "emails": ["l@example.com"]}}
    first = (await tenure.ok(UPSERT, {"input": payload}))["upsertCustomer"]
    assert first["created"] is True and first["userErrors"] == []
    await tenure.key()
    before = await row_counts(tenure)
    second = (await tenure.ok(UPSERT, {"input": payload}))["upsertCustomer"]
    assert second["created"] is False
    assert second["customer"]["id"] == first["customer"]["id"]
    after = await row_counts(tenure)
    assert after["customers"] == before["customers"] == 1
    assert after["customer_identities"] == before["customer_identities"] == 1
    changed = (await tenure.ok(UPSERT, {"input": {**payload, "customer": {"name": "Linus T."}}}))["upsertCustomer"]
    assert changed["created"] is False and changed["customer"]["name"] == "Linus T."
    assert changed["customer"]["emails"] == ["l@example.com"]
    assert changed["customer"]["identities"] == [{"kind": "shop", "value": "S-1"}]


async def test_identity_is_unique_per_kind(tenure: TenureHarness) -> None:
    await create_customer(tenure, "A", identities=[{"kind": "pos", "value": "7"}])
    await tenure.key()
    before = await row_counts(tenure)
    data = await tenure.ok(CREATE_CUSTOMER, {"input": {"name": "B", "identities": [{"kind": "pos", "value": "7"}]}})
    assert data["createCustomer"]["customer"] is None
    assert data["createCustomer"]["userErrors"][0]["field"] == ["input", "identities"]
    assert data["createCustomer"]["userErrors"][0]["code"] == "IDENTITY_TAKEN"
    assert await row_counts(tenure) == before


async def _merge_pair(tenure: TenureHarness) -> tuple[str, str]:
    survivor = await create_customer(
        tenure, "Ada", emails=["ada@example.com"], tags=["vip"], identities=[{"kind": "pos", "value": "P1"}]
    )
    merged = await create_customer(
        tenure,
        "Ada L.",
        emails=["ada@example.com", "ada@work.example"],
        tags=["vip", "b2b"],
        identities=[{"kind": "pos", "value": "P2"}, {"kind": "shop", "value": "S2"}],
    )
    await record_order(tenure, survivor, "O1", 1000)
    await record_order(tenure, merged, "O2", 2500)
    await record_order(tenure, merged, "O3", 500)
    await tenure.ok(LOG_INTERACTION, {"input": {"customerId": merged, "kind": "call", "channel": "phone"}})
    await tenure.ok(
        'mutation($c: ID!) { createTask(input: {title: "Call", customerId: $c}) { created } }', {"c": merged}
    )
    return survivor, merged


async def test_merge_dry_run_reports_and_writes_nothing(tenure: TenureHarness) -> None:
    survivor, merged = await _merge_pair(tenure)
    before = await row_counts(tenure)
    data = await tenure.ok(MERGE, {"input": {"survivorId": survivor, "mergedId": merged, "dryRun": True}})
    payload = data["mergeCustomers"]
    assert payload["dryRun"] is True and payload["userErrors"] == []
    moved = {m["kind"]: m["count"] for m in payload["moved"]}
    assert moved["orders"] == 2 and moved["interactions"] == 1 and moved["tasks"] == 1
    assert moved["identities"] == 1 and moved["contacts"] == 1 and moved["tags"] == 1
    assert payload["conflicts"] == ["identity pos 'P2' dropped: the survivor has its own"]
    # The survivor as it is now, untouched.
    assert payload["customer"]["orderCount"] == 1
    assert await row_counts(tenure) == before
    still = await tenure.ok("query($id: ID!) { customer(id: $id) { name orderCount } }", {"id": merged})
    assert still["customer"] == {"name": "Ada L.", "orderCount": 2}


async def test_merge_moves_history_identities_and_tags(tenure: TenureHarness) -> None:
    survivor, merged = await _merge_pair(tenure)
    data = await tenure.ok(MERGE, {"input": {"survivorId": survivor, "mergedId": merged}})
    payload = data["mergeCustomers"]
    assert payload["userErrors"] == []
    customer = payload["customer"]
    assert customer["orderCount"] == 3 and customer["totalSpent"]["amount"] == 4000
    assert sorted(customer["emails"]) == ["ada@example.com", "ada@work.example"]
    assert sorted(customer["tags"]) == ["b2b", "vip"]
    assert sorted((i["kind"], i["value"]) for i in customer["identities"]) == [("pos", "P1"), ("shop", "S2")]
    gone = await tenure.ok("query($id: ID!) { customer(id: $id) { id } }", {"id": merged})
    assert gone["customer"] is None
    full = await tenure.ok(
        "query($id: ID!) { customer(id: $id) { interactions { totalCount } tasks { totalCount } "
        "timeline { edges { node { kind } } } } }",
        {"id": survivor},
    )
    assert full["customer"]["interactions"]["totalCount"] == 1
    assert full["customer"]["tasks"]["totalCount"] == 1
    kinds = [e["node"]["kind"] for e in full["customer"]["timeline"]["edges"]]
    assert kinds.count("order") == 3 and kinds.count("interaction") == 1
    events = await tenure.ok('{ events(first: 50, types: ["customer.merged"]) { nodes { customerId data } } }')
    assert events["events"]["nodes"] == [
        {"customerId": survivor, "data": {"customerId": pk_of(survivor), "mergedCustomerId": pk_of(merged)}}
    ]
    # The merged customer's identity is free again for the survivor's kinds it brought.
    taken = await tenure.ok(CREATE_CUSTOMER, {"input": {"name": "X", "identities": [{"kind": "shop", "value": "S2"}]}})
    assert taken["createCustomer"]["userErrors"][0]["code"] == "IDENTITY_TAKEN"


async def test_merge_refuses_bad_ids(tenure: TenureHarness) -> None:
    cid = await create_customer(tenure, "Solo")
    await tenure.key()
    before = await row_counts(tenure)
    cases = [
        ({"survivorId": cid, "mergedId": cid}, "mergedId"),
        ({"survivorId": cid, "mergedId": "999999"}, "mergedId"),
        ({"survivorId": "999999", "mergedId": cid}, "survivorId"),
        ({"survivorId": "abc", "mergedId": cid}, "survivorId"),
    ]
    for case, field in cases:
        payload = (await tenure.ok(MERGE, {"input": case}))["mergeCustomers"]
        assert payload["customer"] is None
        assert payload["userErrors"][0]["field"] == ["input", field], payload
    assert await row_counts(tenure) == before


async def test_tag_customers_adds_and_removes(tenure: TenureHarness) -> None:
    a = await create_customer(tenure, "A", tags=["old"])
    b = await create_customer(tenure, "B")
    data = await tenure.ok(TAG, {"input": {"customerIds": [a, b], "add": ["Gold", "gold"], "remove": ["old"]}})
    assert data["tagCustomers"] == {"updated": 2, "userErrors": []}
    again = await tenure.ok(TAG, {"input": {"customerIds": [a, b], "add": ["gold"]}})
    assert again["tagCustomers"]["userErrors"] == []
    tagged = await tenure.ok('{ customers(first: 10, filter: {tags: ["gold"]}) { totalCount nodes { tags } } }')
    assert tagged["customers"]["totalCount"] == 2
    assert all(n["tags"] == ["gold"] for n in tagged["customers"]["nodes"])
    before = await row_counts(tenure)
    missing = await tenure.ok(TAG, {"input": {"customerIds": [a, "424242"], "add": ["x"]}})
    assert missing["tagCustomers"]["userErrors"][0]["field"] == ["input", "customerIds"]
    long_tag = await tenure.ok(TAG, {"input": {"customerIds": [a], "add": ["t" * 51]}})
    assert long_tag["tagCustomers"]["userErrors"][0] == {
        "field": ["input", "add"],
        "message": "must be at most 50 characters (got 51)",
        "code": "TOO_LONG",
    }
    assert await row_counts(tenure) == before


async def test_duplicate_candidates_share_email_or_phone(tenure: TenureHarness) -> None:
    a = await create_customer(tenure, "A", emails=["same@example.com"])
    b = await create_customer(tenure, "B", emails=["SAME@example.com"])
    c = await create_customer(tenure, "C", phones=["+1 555 000 1111"])
    d = await create_customer(tenure, "D", phones=["+15550001111"])
    await create_customer(tenure, "E", emails=["other@example.com"])
    data = await tenure.ok("{ duplicateCandidates(first: 10) { kind value first { id } second { id } } }")
    pairs = {(d_["kind"], d_["value"], d_["first"]["id"], d_["second"]["id"]) for d_ in data["duplicateCandidates"]}
    assert pairs == {("email", "same@example.com", a, b), ("phone", "+15550001111", c, d)}


async def test_list_filters_sorts_and_pages(tenure: TenureHarness) -> None:
    owner_key = await tenure.key("staff", staff_email="olga@example.com")
    olga = (await tenure.ok("{ viewer { staffUser { id } } }", key=owner_key))["viewer"]["staffUser"]["id"]
    spend = {"Ann": 500, "Bob": 3000, "Cyd": 0, "Dee": 1200, "Eve": 3000}
    for name, amount in spend.items():
        cid = await create_customer(tenure, name, emails=[f"{name.lower()}@example.com"],
                                    ownerId=olga if name in ("Bob", "Dee") else None)
        if amount:
            await record_order(tenure, cid, f"O-{name}", amount)
    query = """query($first: Int!, $after: String, $filter: CustomerFilterInput, $orderBy: CustomerOrderBy) {
      customers(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
        totalCount pageInfo { hasNextPage endCursor } nodes { name } } }"""
    order = {"field": "TOTAL_SPENT", "direction": "DESC"}
    names: list[str] = []
    after = None
    while True:
        page = (await tenure.ok(query, {"first": 2, "after": after, "orderBy": order}))["customers"]
        assert page["totalCount"] == 5
        names += [n["name"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # Ties (Bob and Eve at 3000) keep a stable order by id, so no one is skipped or repeated.
    assert names == ["Eve", "Bob", "Dee", "Ann", "Cyd"]
    by_name = (await tenure.ok(query, {"first": 10, "orderBy": {"field": "NAME", "direction": "ASC"}}))["customers"]
    assert [n["name"] for n in by_name["nodes"]] == ["Ann", "Bob", "Cyd", "Dee", "Eve"]
    owned = (await tenure.ok(query, {"first": 10, "filter": {"ownerId": olga}}))["customers"]
    assert sorted(n["name"] for n in owned["nodes"]) == ["Bob", "Dee"] and owned["totalCount"] == 2
    for search, expected in (("dee@EXAMPLE.com", ["Dee"]), ("an", ["Ann"]), ("nobody", [])):
        found = (await tenure.ok(query, {"first": 10, "filter": {"search": search}}))["customers"]
        assert [n["name"] for n in found["nodes"]] == expected, search
    bad = await tenure.gql(query, {"first": 2, "after": "not-a-cursor"}, key=await tenure.key())
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
