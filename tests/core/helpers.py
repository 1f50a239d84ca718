"""GraphQL snippets and small helpers shared by the core's tests."""

from __future__ import annotations

from typing import Any

from tenure.testing import TenureHarness

ERRORS = "userErrors { field message code }"

CREATE_CUSTOMER = f"""
mutation($input: CustomerInput!) {{
  createCustomer(input: $input) {{ customer {{ id name emails phones tags identities {{ kind value }} }} {ERRORS} }}
}}"""

RECORD_ORDER = f"""
mutation($input: RecordOrderInput!) {{
  recordOrder(input: $input) {{
    created order {{ id status amount {{ amount currency }} refunded {{ amount }} net {{ amount }} }} {ERRORS}
  }}
}}"""

LOG_INTERACTION = f"""
mutation($input: LogInteractionInput!) {{
  logInteraction(input: $input) {{ created interaction {{ id kind occurredAt }} {ERRORS} }}
}}"""

# Every table a core mutation writes to: "nothing written" means none of these changed.
CORE_TABLES = (
    "customers",
    "customer_contacts",
    "customer_identities",
    "customer_tags",
    "orders",
    "order_lines",
    "interactions",
    "tasks",
    "events",
    "outbox",
    "staff_users",
    "api_keys",
    "idempotency_records",
    "webhook_subscriptions",
)


async def create_customer(tenure: TenureHarness, name: str = "Ada", **fields: Any) -> str:
    data = await tenure.ok(CREATE_CUSTOMER, {"input": {"name": name, **fields}})
    payload = data["createCustomer"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return str(payload["customer"]["id"])


async def record_order(
    tenure: TenureHarness, customer_id: str, external_id: str, amount: int, **fields: Any
) -> dict[str, Any]:
    data = await tenure.ok(
        RECORD_ORDER,
        {
            "input": {
                "customerId": customer_id,
                "channel": "web",
                "externalId": external_id,
                "currency": "USD",
                "amount": amount,
                **fields,
            }
        },
    )
    return data["recordOrder"]  # type: ignore[no-any-return]


async def row_counts(tenure: TenureHarness) -> dict[str, int]:
    return {t: int(await tenure.scalar(f"SELECT count(*) FROM {t}")) for t in CORE_TABLES}
