"""Every mutation refuses bad input with a userError naming the field, and writes nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tenure.testing import TenureHarness
from tests.core.helpers import ERRORS, create_customer, record_order, row_counts

CREATE = f"mutation($i: CustomerInput!) {{ createCustomer(input: $i) {{ customer {{ id }} {ERRORS} }} }}"
UPDATE = f"mutation($i: UpdateCustomerInput!) {{ updateCustomer(input: $i) {{ customer {{ id }} {ERRORS} }} }}"
UPSERT = f"mutation($i: UpsertCustomerInput!) {{ upsertCustomer(input: $i) {{ customer {{ id }} {ERRORS} }} }}"
ORDER = f"mutation($i: RecordOrderInput!) {{ recordOrder(input: $i) {{ order {{ id }} {ERRORS} }} }}"
CANCEL = f"mutation($i: CancelOrderInput!) {{ cancelOrder(input: $i) {{ order {{ id }} {ERRORS} }} }}"
REFUND = f"mutation($i: RefundOrderInput!) {{ refundOrder(input: $i) {{ order {{ id }} {ERRORS} }} }}"
INTERACTION = f"mutation($i: LogInteractionInput!) {{ logInteraction(input: $i) {{ interaction {{ id }} {ERRORS} }} }}"
TASK = f"mutation($i: CreateTaskInput!) {{ createTask(input: $i) {{ task {{ id }} {ERRORS} }} }}"
ASSIGN = f"mutation($i: AssignTaskInput!) {{ assignTask(input: $i) {{ task {{ id }} {ERRORS} }} }}"
COMPLETE = f"mutation($i: CompleteTaskInput!) {{ completeTask(input: $i) {{ task {{ id }} {ERRORS} }} }}"
STAFF = f"mutation($i: CreateStaffUserInput!) {{ createStaffUser(input: $i) {{ staffUser {{ id }} {ERRORS} }} }}"
KEY = f"mutation($i: CreateApiKeyInput!) {{ createApiKey(input: $i) {{ key {ERRORS} }} }}"
TOKEN = f"mutation($i: IssueMemberTokenInput!) {{ issueMemberToken(input: $i) {{ token {ERRORS} }} }}"
HOOK = f"mutation($i: CreateWebhookSubscriptionInput!) {{ createWebhookSubscription(input: $i) {{ secret {ERRORS} }} }}"
REPLAY = f"mutation($i: ID!) {{ replayWebhookDelivery(deliveryId: $i) {{ queued {ERRORS} }} }}"
REVOKE = f"mutation($i: ID!) {{ revokeApiKey(keyId: $i) {{ revoked {ERRORS} }} }}"
TAG = f"mutation($i: TagCustomersInput!) {{ tagCustomers(input: $i) {{ updated {ERRORS} }} }}"

C = "$customer"  # replaced by the id of an existing customer
ORDER_ID = "$order"  # replaced by the id of an existing order

CASES: list[tuple[str, str, dict[str, Any] | str, str, str]] = [
    # (case, mutation, input, field, code)
    ("bad email", CREATE, {"name": "A", "emails": ["not-an-email"]}, "emails", "invalid_email"),
    ("bad phone", CREATE, {"name": "A", "phones": ["12ab"]}, "phones", "invalid_phone"),
    ("short phone", CREATE, {"name": "A", "phones": ["+1 23"]}, "phones", "invalid_phone"),
    ("empty name", CREATE, {"name": "   "}, "name", "required"),
    ("long name", CREATE, {"name": "n" * 201}, "name", "too_long"),
    ("long source", CREATE, {"name": "A", "sourceChannel": "s" * 51}, "sourceChannel", "too_long"),
    ("future birthday", CREATE, {"name": "A", "birthday": "2999-01-01"}, "birthday", "invalid_date"),
    ("unknown owner", CREATE, {"name": "A", "ownerId": "4242"}, "ownerId", "not_found"),
    ("owner not an id", CREATE, {"name": "A", "ownerId": "x"}, "ownerId", "invalid_id"),
    (
        "long identity",
        CREATE,
        {"name": "A", "identities": [{"kind": "pos", "value": "v" * 201}]},
        "identities.value",
        "too_long",
    ),
    (
        "two of a kind",
        CREATE,
        {"name": "A", "identities": [{"kind": "pos", "value": "1"}, {"kind": "pos", "value": "2"}]},
        "identities",
        "duplicate",
    ),
    ("unknown customer", UPDATE, {"id": "4242", "customer": {"name": "B"}}, "id", "not_found"),
    ("update bad email", UPDATE, {"id": C, "customer": {"emails": ["a@b"]}}, "emails", "invalid_email"),
    (
        "upsert empty identity",
        UPSERT,
        {"identity": {"kind": "pos", "value": ""}, "customer": {"name": "A"}},
        "identities.value",
        "required",
    ),
    ("tag unknown customer", TAG, {"customerIds": ["4242"], "add": ["x"]}, "customerIds", "not_found"),
    (
        "unknown currency",
        ORDER,
        {"customerId": C, "channel": "web", "externalId": "X", "currency": "XYZ", "amount": 1},
        "currency",
        "invalid_currency",
    ),
    (
        "other currency",
        ORDER,
        {"customerId": C, "channel": "web", "externalId": "X", "currency": "EUR", "amount": 1},
        "currency",
        "unsupported_currency",
    ),
    (
        "negative amount",
        ORDER,
        {"customerId": C, "channel": "web", "externalId": "X", "currency": "USD", "amount": -1},
        "amount",
        "invalid_amount",
    ),
    (
        "huge amount",
        ORDER,
        {"customerId": C, "channel": "web", "externalId": "X", "currency": "USD", "amount": 10**14},
        "amount",
        "invalid_amount",
    ),
    (
        "negative price",
        ORDER,
        {
            "customerId": C,
            "channel": "web",
            "externalId": "X",
            "currency": "USD",
            "lines": [{"sku": "a", "quantity": 1, "unitPrice": -5}],
        },
        "lines[0].unitPrice",
        "invalid_amount",
    ),
    (
        "zero quantity",
        ORDER,
        {
            "customerId": C,
            "channel": "web",
            "externalId": "X",
            "currency": "USD",
            "lines": [{"sku": "a", "quantity": 0, "unitPrice": 5}],
        },
        "lines[0].quantity",
        "invalid_quantity",
    ),
    (
        "no amount",
        ORDER,
        {"customerId": C, "channel": "web", "externalId": "X", "currency": "USD"},
        "amount",
        "required",
    ),
    (
        "long external id",
        ORDER,
        {"customerId": C, "channel": "web", "externalId": "e" * 201, "currency": "USD", "amount": 1},
        "externalId",
        "too_long",
    ),
    (
        "order for nobody",
        ORDER,
        {"customerId": "4242", "channel": "web", "externalId": "X", "currency": "USD", "amount": 1},
        "customerId",
        "not_found",
    ),
    (
        "future order",
        ORDER,
        {
            "customerId": C,
            "channel": "web",
            "externalId": "X",
            "currency": "USD",
            "amount": 1,
            "placedAt": "2999-01-01T00:00:00Z",
        },
        "placedAt",
        "invalid_time",
    ),
    ("cancel unknown", CANCEL, {"orderId": "4242"}, "orderId", "not_found"),
    ("refund unknown", REFUND, {"orderId": "4242"}, "orderId", "not_found"),
    ("negative refund", REFUND, {"orderId": ORDER_ID, "amount": -10}, "amount", "invalid_amount"),
    ("zero refund", REFUND, {"orderId": ORDER_ID, "amount": 0}, "amount", "invalid_amount"),
    (
        "long refund key",
        REFUND,
        {"orderId": ORDER_ID, "amount": 1, "idempotencyKey": "k" * 201},
        "idempotencyKey",
        "too_long",
    ),
    ("empty kind", INTERACTION, {"customerId": C, "kind": "", "channel": "web"}, "kind", "required"),
    (
        "long summary",
        INTERACTION,
        {"customerId": C, "kind": "call", "channel": "web", "summary": "s" * 501},
        "summary",
        "too_long",
    ),
    (
        "interaction for nobody",
        INTERACTION,
        {"customerId": "4242", "kind": "call", "channel": "web"},
        "customerId",
        "not_found",
    ),
    (
        "payload too big",
        INTERACTION,
        {"customerId": C, "kind": "call", "channel": "web", "payload": {"blob": "x" * 20_000}},
        "payload",
        "too_long",
    ),
    ("empty title", TASK, {"title": ""}, "title", "required"),
    ("task for nobody", TASK, {"title": "T", "customerId": "4242"}, "customerId", "not_found"),
    ("unknown assignee", TASK, {"title": "T", "assigneeId": "4242"}, "assigneeId", "not_found"),
    ("assign unknown task", ASSIGN, {"taskId": "4242", "assigneeId": None}, "taskId", "not_found"),
    ("complete unknown task", COMPLETE, {"taskId": "4242"}, "taskId", "not_found"),
    ("staff bad email", STAFF, {"name": "S", "email": "nope"}, "email", "invalid_email"),
    ("key bad role", KEY, {"name": "K", "role": "root"}, "role", "invalid"),
    ("key empty name", KEY, {"name": " ", "role": "staff"}, "name", "required"),
    ("token for nobody", TOKEN, {"customerId": "4242"}, "customerId", "not_found"),
    ("hook bad url", HOOK, {"url": "ftp://example.com/x"}, "url", "invalid_url"),
    ("replay unknown", REPLAY, "4242", "deliveryId", "not_found"),
    ("revoke not an id", REVOKE, "abc", "keyId", "invalid_id"),
]


@pytest.mark.parametrize(("case", "mutation", "given", "field", "code"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_names_the_field_and_writes_nothing(
    tenure: TenureHarness, case: str, mutation: str, given: dict[str, Any] | str, field: str, code: str
) -> None:
    customer = await create_customer(tenure, "Existing", emails=["e@example.com"])
    order = (await record_order(tenure, customer, "E-1", 500))["order"]["id"]

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return {C: customer, ORDER_ID: order}.get(value, value) if isinstance(value, str) else value

    before = await row_counts(tenure)
    answer = await tenure.ok(mutation, {"i": fill(given)})
    (payload,) = answer.values()
    errors = payload["userErrors"]
    assert len(errors) == 1, errors
    # The path starts at the mutation's `input`, or at the argument of one that takes none.
    path = re.findall(r"[^.\[\]]+", field)
    expected = path if mutation in (REPLAY, REVOKE) else ["input", *path]
    assert (errors[0]["field"], errors[0]["code"]) == (expected, code.upper()), errors[0]
    assert errors[0]["message"]
    assert await row_counts(tenure) == before
