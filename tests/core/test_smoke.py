from __future__ import annotations

from tenure.testing import TenureHarness, global_id, pk_of

CREATE = """
mutation($input: CustomerInput!) {
  createCustomer(input: $input) {
    customer { id name emails tags totalSpent { amount currency } } userErrors { field message code }
  }
}
"""


async def test_create_and_read_customer(tenure: TenureHarness) -> None:
    data = await tenure.ok(CREATE, {"input": {"name": "Ada Lovelace", "emails": ["ADA@example.com"], "tags": ["VIP"]}})
    customer = data["createCustomer"]["customer"]
    assert customer["emails"] == ["ada@example.com"]
    assert customer["tags"] == ["vip"]
    order = await tenure.ok(
        """mutation($c: ID!) { recordOrder(input: {customerId: $c, channel: "web", externalId: "A1", currency: "USD",
             lines: [{sku: "tea", quantity: 2, unitPrice: 450}]})
           { created order { amount { amount } } userErrors { message } } }""",
        {"c": customer["id"]},
    )
    assert order["recordOrder"]["order"]["amount"]["amount"] == 900
    listing = await tenure.ok(
        "{ customers(first: 5) { totalCount edges { node { name orderCount totalSpent { amount } "
        "orders { edges { node { externalId } } } timeline { edges { node { kind summary } } } } } } }"
    )
    node = listing["customers"]["edges"][0]["node"]
    assert node["orderCount"] == 1 and node["totalSpent"]["amount"] == 900
    assert listing["customers"]["totalCount"] == 1
    assert node["timeline"]["edges"][0]["node"]["kind"] == "order"


async def test_member_sees_only_self(tenure: TenureHarness) -> None:
    data = await tenure.ok(CREATE, {"input": {"name": "Grace", "emails": ["g@example.com"]}})
    cid = pk_of(data["createCustomer"]["customer"]["id"])
    token = tenure.member_token(cid)
    me = await tenure.ok("{ me { id name emails } }", key=token)
    assert me["me"] == {"id": global_id("Customer", cid), "name": "Grace", "emails": ["g@example.com"]}
    denied = await tenure.gql(f'{{ customer(id: "{cid}") {{ name }} }}', key=token)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await tenure.gql("{ me { id } }")
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
