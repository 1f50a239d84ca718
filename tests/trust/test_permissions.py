"""The permission matrix: who may call every root field of the live schema (the core and
every installed plugin), declared once below and checked by calling each field as each
caller. A field missing from ``RULES`` fails the suite, so no field ships without a rule.

``RULES`` reads as the access documentation: field -> (callers allowed, integration scope).
An integration key with scopes needs the scope named; an unscoped one has every scope.
"""

from __future__ import annotations

from typing import Any

from tenure.testing import TenureHarness, pk_of
from tests.trust.matrix import reachable_types, request_for, root_fields

ANON, MEMBER, STAFF, INTEGRATION, ADMIN = "anonymous", "member", "staff", "integration", "admin"
KEYS = frozenset({ADMIN, STAFF, INTEGRATION})  # every API key
BACK = frozenset({ADMIN, STAFF})  # people at the business
ADMIN_ONLY = frozenset({ADMIN})

RULES: dict[str, tuple[frozenset[str], str | None]] = {
    # -- core: reading
    "Query.viewer": (KEYS | {MEMBER}, None),
    "Query.serverInfo": (KEYS | {MEMBER}, None),
    "Query.me": (frozenset({MEMBER}), None),
    # Any caller may ask; each type then answers by its own query's rule (tests/core/test_relay.py).
    "Query.node": (KEYS | {MEMBER}, None),
    "Query.nodes": (KEYS | {MEMBER}, None),
    "Query.customer": (KEYS, "customers:read"),
    "Query.customers": (KEYS, "customers:read"),
    "Query.duplicateCandidates": (BACK, None),
    "Query.order": (KEYS, "orders:read"),
    "Query.tasks": (KEYS, None),
    "Query.staffUsers": (BACK, None),
    "Query.events": (frozenset({ADMIN, INTEGRATION}), "events:read"),
    "Query.webhookSubscriptions": (ADMIN_ONLY, None),
    "Query.webhookDeliveries": (ADMIN_ONLY, None),
    "Query.messages": (KEYS, "messages:read"),
    "Query.templates": (BACK, None),
    "Query.exportCustomer": (ADMIN_ONLY, None),
    "Query.auditLog": (ADMIN_ONLY, None),
    # -- core: changing
    "Mutation.createCustomer": (KEYS, "customers:write"),
    "Mutation.updateCustomer": (KEYS, "customers:write"),
    "Mutation.upsertCustomer": (KEYS, "customers:write"),
    "Mutation.mergeCustomers": (BACK, None),
    "Mutation.tagCustomers": (KEYS, "customers:write"),
    "Mutation.recordOrder": (KEYS, "orders:write"),
    "Mutation.recordOrders": (KEYS, "orders:write"),
    "Mutation.cancelOrder": (KEYS, "orders:write"),
    "Mutation.refundOrder": (KEYS, "orders:write"),
    "Mutation.logInteraction": (KEYS, "interactions:write"),
    "Mutation.createTask": (KEYS, "tasks:write"),
    "Mutation.assignTask": (BACK, None),
    "Mutation.completeTask": (BACK, None),
    "Mutation.createStaffUser": (ADMIN_ONLY, None),
    "Mutation.createApiKey": (ADMIN_ONLY, None),
    "Mutation.revokeApiKey": (ADMIN_ONLY, None),
    "Mutation.rotateApiKey": (ADMIN_ONLY, None),
    "Mutation.issueMemberToken": (frozenset({ADMIN, INTEGRATION}), "members:tokens"),
    "Mutation.createWebhookSubscription": (ADMIN_ONLY, None),
    "Mutation.replayWebhookDelivery": (ADMIN_ONLY, None),
    "Mutation.rotateWebhookSecret": (ADMIN_ONLY, None),
    "Mutation.createTemplate": (BACK, None),
    "Mutation.updateTemplate": (BACK, None),
    "Mutation.retryMessage": (BACK, None),
    "Mutation.eraseCustomer": (ADMIN_ONLY, None),
    # -- reports
    "Query.retention": (KEYS, "reports:read"),
    "Query.cohorts": (KEYS, "reports:read"),
    "Query.upcoming": (KEYS, "reports:read"),
    # -- loyalty
    "Query.earnRules": (BACK, None),
    "Query.rewards": (KEYS | {MEMBER}, None),
    "Query.pointsLiability": (BACK, None),
    "Query.simulateEarnRule": (BACK, None),
    "Mutation.createEarnRule": (BACK, None),
    "Mutation.updateEarnRule": (BACK, None),
    "Mutation.createReward": (BACK, None),
    "Mutation.updateReward": (BACK, None),
    "Mutation.redeemPoints": (KEYS, "points:write"),
    "Mutation.adjustPoints": (BACK, None),
    "Mutation.redeemReward": (KEYS | {MEMBER}, "points:write"),
    "Mutation.awardReferral": (KEYS, "points:write"),
    # -- nps
    "Query.surveys": (BACK, None),
    "Query.npsReport": (KEYS, "surveys:read"),
    "Mutation.createSurvey": (BACK, None),
    "Mutation.sendSurvey": (BACK, None),
    # Anyone: the survey link's signed token in the input is the credential.
    "Mutation.submitSurveyResponse": (KEYS | {MEMBER, ANON}, None),
    # -- renewals
    "Query.plans": (BACK, None),
    "Query.subscriptions": (KEYS, "subscriptions:read"),
    "Query.renewalReport": (KEYS, "subscriptions:read"),
    "Mutation.createPlan": (BACK, None),
    "Mutation.createSubscription": (KEYS, "subscriptions:write"),
    "Mutation.updateSubscription": (KEYS, "subscriptions:write"),
    "Mutation.renewSubscription": (KEYS, "subscriptions:write"),
    "Mutation.cancelSubscription": (KEYS, "subscriptions:write"),
    # -- churn
    "Query.churnWarnings": (KEYS, "customers:read"),
    "Query.segments": (KEYS, "customers:read"),
    "Query.churnRules": (BACK, None),
    "Query.churnReport": (KEYS, "reports:read"),
    "Query.predictionModel": (KEYS, "reports:read"),
    "Query.customersByPrediction": (KEYS, "customers:read"),
    "Mutation.saveChurnRule": (ADMIN_ONLY, None),
    "Mutation.deleteChurnRule": (ADMIN_ONLY, None),
    "Mutation.saveSegment": (BACK, None),
    "Mutation.deleteSegment": (BACK, None),
    # -- tiers
    "Query.tiers": (KEYS | {MEMBER}, None),
    "Query.tierDistribution": (BACK, None),
    "Query.simulateTiers": (BACK, None),
    "Mutation.createTier": (BACK, None),
    "Mutation.updateTier": (BACK, None),
    "Mutation.setCustomerTier": (BACK, None),
    # -- journeys
    "Query.journeys": (KEYS, "journeys:read"),
    "Query.journey": (KEYS, "journeys:read"),
    "Query.journeyPreview": (KEYS, "journeys:read"),
    "Query.journeyTriggers": (KEYS, "journeys:read"),
    "Query.journeyActions": (KEYS, "journeys:read"),
    "Query.journeyTemplates": (KEYS, "journeys:read"),
    "Mutation.createJourney": (KEYS, "journeys:write"),
    "Mutation.updateJourney": (KEYS, "journeys:write"),
    "Mutation.pauseJourney": (KEYS, "journeys:write"),
    "Mutation.resumeJourney": (KEYS, "journeys:write"),
    "Mutation.startJourneyTemplate": (KEYS, "journeys:write"),
    # -- the member app
    "Mutation.updateMe": (frozenset({MEMBER}), None),
    # Anyone: the signed token sent to the new address is the credential.
    "Mutation.verifyMemberEmail": (KEYS | {MEMBER, ANON}, None),
    # -- the example partner plugin (tests/partner_plugin)
    "Mutation.recordVisit": (KEYS, "visits:write"),
}

#: What a member may reach from ``me``: their own profile and plugin views of themselves.
STAFF_ONLY_TYPES = {"Customer", "Order", "Task", "StaffUser", "TimelineEntry", "AuditEntry", "Event",
                    "Message", "WebhookSubscription"}
DENIED = {"UNAUTHENTICATED", "FORBIDDEN"}


async def _callers(tenure: TenureHarness) -> dict[str, str | None]:
    data = await tenure.ok('mutation { createCustomer(input: {name: "Member"}) { customer { id } } }')
    member = tenure.member_token(pk_of(data["createCustomer"]["customer"]["id"]))
    return {
        ANON: None,
        MEMBER: member,
        STAFF: await tenure.key("staff", staff_email="staff@example.com"),
        ADMIN: await tenure.key("admin"),
        INTEGRATION: await tenure.key("integration"),
        "integration, other scope": await tenure.key("integration", scopes=["nothing:else"]),
    }


def _expected(caller: str, allowed: frozenset[str], scope: str | None) -> bool:
    if caller == "integration, other scope":
        return INTEGRATION in allowed and scope is None
    if caller.startswith("integration, scope "):
        return INTEGRATION in allowed
    return caller in allowed


async def test_every_root_field_declares_who_may_call_it_and_means_it(make_tenure: Any) -> None:
    async with make_tenure(plugins=None) as tenure:
        fields = root_fields(_schema(tenure))
        undeclared = sorted(set(fields) - set(RULES))
        assert not undeclared, f"fields without a rule in RULES (add one, it is the access documentation): {undeclared}"
        stale = sorted(set(RULES) - set(fields))
        assert not stale, f"RULES names fields the schema no longer has: {stale}"
        callers = await _callers(tenure)
        scoped = {scope for _, scope in RULES.values() if scope}
        for scope in scoped:
            callers[f"integration, scope {scope}"] = await tenure.key("integration", scopes=[scope])
        wrong = []
        calls = 0
        for path, field in sorted(fields.items()):
            allowed, scope = RULES[path]
            root, name = path.split(".")
            document, variables = request_for(root, name, field)
            for caller, token in callers.items():
                if caller.startswith("integration, scope ") and caller != f"integration, scope {scope}":
                    continue
                answer = await tenure.gql(document, variables, key=token)
                calls += 1
                errors = answer.get("errors") or []
                if any("path" not in e and "code" not in (e.get("extensions") or {}) for e in errors):
                    wrong.append(f"{path} as {caller}: the request did not run (teach tests/trust/matrix.py "
                                 f"a sample for its arguments): {errors}")
                    continue
                codes = {(e.get("extensions") or {}).get("code") for e in errors}
                refused = bool(codes & DENIED)
                if refused == _expected(caller, allowed, scope):
                    wrong.append(f"{path} as {caller}: {'refused' if refused else 'allowed'} "
                                 f"({answer.get('errors') or 'no error'})")
                elif refused:
                    want = "UNAUTHENTICATED" if caller == ANON else "FORBIDDEN"
                    if want not in codes:
                        wrong.append(f"{path} as {caller}: refused with {codes}, expected {want}")
        assert not wrong, f"{len(wrong)} of {calls} calls disagree with RULES:\n" + "\n".join(wrong)


def _schema(tenure: TenureHarness) -> Any:
    from tenure.schema.build import build_schema

    return build_schema(tenure.plugins, tenure.settings)._schema


async def test_a_member_sees_nothing_of_another_customer(make_tenure: Any) -> None:
    async with make_tenure(plugins=None) as tenure:
        schema = _schema(tenure)
        leaks = reachable_types(schema, "Member") & STAFF_ONLY_TYPES
        assert not leaks, f"a member can reach {leaks} from `me`"
        ids = []
        for name in ("Ann", "Bob"):
            data = await tenure.ok(f'mutation {{ createCustomer(input: {{name: "{name}", emails: ["{name}@x.io"]}}) '
                                   "{ customer { id } } }")
            ids.append(data["createCustomer"]["customer"]["id"])
        ann, bob = ids
        order = await tenure.ok(f'mutation {{ recordOrder(input: {{customerId: "{bob}", channel: "web", '
                                'externalId: "B1", currency: "USD", amount: 500}) { order { id } } }')
        bob_order = order["recordOrder"]["order"]["id"]
        token = tenure.member_token(pk_of(ann))
        me = await tenure.ok("{ me { id name emails } }", key=token)
        assert me["me"] == {"id": ann, "name": "Ann", "emails": ["ann@x.io"]}
        attempts = [
            f'{{ customer(id: "{bob}") {{ name }} }}',
            '{ customers(first: 5) { nodes { name } } }',
            f'{{ order(id: "{bob_order}") {{ externalId }} }}',
            '{ events(first: 5) { edges { node { type } } } }',
            f'{{ messages(first: 5, filter: {{customerId: "{bob}"}}) {{ totalCount }} }}',
            f'{{ exportCustomer(id: "{bob}") }}',
            f'mutation {{ mergeCustomers(input: {{survivorId: "{ann}", mergedId: "{bob}"}}) {{ dryRun }} }}',
            f'mutation {{ updateCustomer(input: {{id: "{bob}", customer: {{name: "x"}}}}) {{ customer {{ id }} }} }}',
            f'mutation {{ refundOrder(input: {{orderId: "{bob_order}"}}) {{ order {{ id }} }} }}',
            f'mutation {{ issueMemberToken(input: {{customerId: "{bob}"}}) {{ token }} }}',
        ]
        if tenure.plugins.is_enabled("loyalty"):
            attempts.append(f'mutation {{ redeemReward(input: {{rewardId: "1", customerId: "{bob}"}}) {{ balance }} }}')
        for query in attempts:
            answer = await tenure.gql(query, key=token)
            codes = {(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []}
            assert codes & DENIED, f"a member got through: {query} -> {answer}"
            assert "Bob" not in str(answer) and "B1" not in str(answer)
        # Whatever a member may call, the answer speaks of them alone.
        for path, (allowed, _) in RULES.items():
            if MEMBER in allowed and path.startswith("Query."):
                root, name = path.split(".")
                document, variables = request_for(root, name, root_fields(schema)[path])
                answer = await tenure.gql(document, variables, key=token)
                assert "Bob" not in str(answer) and "bob@x.io" not in str(answer), answer
