"""Hostile GraphQL: requests built to exhaust the server or trick a browser are refused
with an error that names the limit, before any resolver runs; production hides internals."""

from __future__ import annotations

import json
import types
from collections.abc import AsyncIterator
from typing import Any

import strawberry

from tenure.core.contributions import PluginInfo, SchemaContribution
from tenure.core.models import Role
from tenure.core.plugins import hookimpl
from tenure.schema.permissions import allow
from tenure.testing import TenureHarness

MUTATION = 'mutation { createCustomer(input: {name: "Mallory"}) { customer { id } } }'


def _limit(answer: dict[str, Any]) -> str | None:
    errors = answer.get("errors") or []
    return (errors[0].get("extensions") or {}).get("limit") if errors else None


async def _customers(tenure: TenureHarness) -> None:
    """A customer with an order, so nested lists have something to resolve."""
    data = await tenure.ok('mutation { createCustomer(input: {name: "Ann"}) { customer { id } } }')
    cid = data["createCustomer"]["customer"]["id"]
    await tenure.ok(f'mutation {{ recordOrder(input: {{customerId: "{cid}", channel: "web", externalId: "1", '
                    'currency: "USD", amount: 100}) { created } }')


async def test_aliases_depth_and_complexity_are_counted_through_fragments(tenure: TenureHarness) -> None:
    await _customers(tenure)
    thirty_one = " ".join(f"a{i}: viewer {{ name }}" for i in range(31))
    split = ("query { ...F ...G } fragment F on Query { " + " ".join(f"a{i}: viewer {{ name }}" for i in range(16))
             + " } fragment G on Query { " + " ".join(f"b{i}: viewer {{ name }}" for i in range(16)) + " }")
    deep = ("query { customers { nodes { ...A } } } fragment A on Customer { orders { nodes { customer { ...B } } } } "
            "fragment B on Customer { orders { nodes { customer { orders { nodes { customer { orders { nodes { "
            "customer { name } } } } } } } } } }")
    wide = ("query { customers(first: 100) { nodes { ...F } } } "
            "fragment F on Customer { orders(first: 100) { nodes { lines { sku } } } interactions(first: 100) { "
            "nodes { kind } } }")
    assert _limit(await tenure.gql("query { ...F } fragment F on Query { " + thirty_one + " }",
                                   key=await tenure.key())) == "aliases"
    assert _limit(await tenure.gql(split, key=await tenure.key())) == "aliases"
    assert _limit(await tenure.gql(deep, key=await tenure.key())) == "depth"
    refused = await tenure.gql(wide, key=await tenure.key())
    assert _limit(refused) == "complexity" and "TENURE_MAX_COMPLEXITY" in refused["errors"][0]["message"]
    assert refused.get("data") is None  # rejected before anything ran
    # The same budget holds when the page size comes in a variable.
    by_variable = await tenure.gql("query($n: Int!) { customers(first: $n) { nodes { orders(first: $n) { "
                                   "nodes { lines { sku name } } } } } }", {"n": 100}, key=await tenure.key())
    assert _limit(by_variable) == "complexity"


async def test_circular_fragments_are_refused_without_running(tenure: TenureHarness) -> None:
    answer = await tenure.gql("query { ...A } fragment A on Query { viewer { name } ...B } "
                              "fragment B on Query { ...A }", key=await tenure.key())
    assert answer["data"] is None
    assert "Cannot spread fragment 'A' within itself" in answer["errors"][0]["message"]


async def test_tokens_and_page_sizes_are_capped(tenure: TenureHarness) -> None:
    await _customers(tenure)
    key = await tenure.key()
    many = "{ viewer { name " + " ".join("@include(if: true)" for _ in range(700)) + " } }"
    assert _limit(await tenure.gql(many, key=key)) == "tokens"
    assert _limit(await tenure.gql("{ customers(first: 101) { totalCount } }", key=key)) == "page_size"
    nested = await tenure.gql("{ customers(first: 1) { nodes { orders(first: 1000) { totalCount } } } }", key=key)
    assert _limit(nested) == "page_size"
    negative = await tenure.gql("{ customers(first: -1) { totalCount } }", key=key)
    assert negative["errors"][0]["extensions"]["field"] == "first"


async def test_batches_forms_and_get_mutations_are_refused(tenure: TenureHarness) -> None:
    headers = {"Authorization": f"Bearer {await tenure.key()}"}
    batch = await tenure.client.post("/graphql", json=[{"query": "{ viewer { name } }"}] * 2, headers=headers)
    assert batch.status_code == 400 and "Batching is not enabled" in batch.text
    # CSRF: a browser can send GET links and form posts across sites without a preflight.
    get = await tenure.client.get("/graphql", params={"query": MUTATION}, headers=headers)
    assert get.status_code == 400 and "not allowed when using GET" in get.text
    form = await tenure.client.post("/graphql", data={"query": MUTATION}, headers=headers)
    assert form.status_code == 400 and "Unsupported content type" in form.text
    plain = await tenure.client.post("/graphql", content=json.dumps({"query": MUTATION}),
                                     headers={**headers, "content-type": "text/plain"})
    assert plain.status_code == 400
    multipart = await tenure.client.post("/graphql", files={"operations": (None, json.dumps({"query": MUTATION}))},
                                         headers=headers)
    assert multipart.status_code == 400
    assert await tenure.scalar("SELECT count(*) FROM customers") == 0


async def test_oversized_bodies_get_413_declared_or_streamed(make_tenure: Any) -> None:
    async with make_tenure(plugins=[], max_body_bytes=2000) as tenure:
        headers = {"Authorization": f"Bearer {await tenure.key()}"}
        body = json.dumps({"query": "{ viewer { name } }", "variables": {"pad": "x" * 3000}}).encode()
        declared = await tenure.client.post("/graphql", content=body,
                                            headers={**headers, "content-type": "application/json"})
        assert declared.status_code == 413 and declared.json()["errors"][0]["extensions"]["limit"] == "body_size"

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 500):
                yield body[start:start + 500]

        streamed = await tenure.client.post("/graphql", content=chunks(),
                                            headers={**headers, "content-type": "application/json"})
        assert streamed.status_code == 413


def _boom_plugin() -> types.ModuleType:
    """A plugin with a field that fails the way a bug does: an exception with internals."""

    @strawberry.type
    class BoomQuery:
        @strawberry.field(permission_classes=[allow(Role.ADMIN)])
        def boom(self) -> int:
            raise RuntimeError("internal detail: connection to 10.0.0.5 failed, password=hunter2")

    module = types.ModuleType("boom_plugin")
    module.tenure_plugin_info = hookimpl(lambda: PluginInfo(name="boom", version="1", summary="test"))  # type: ignore[attr-defined]
    module.tenure_schema = hookimpl(lambda: SchemaContribution(query=BoomQuery))  # type: ignore[attr-defined]
    return module


async def test_production_hides_internals_and_keeps_meaningful_errors(make_tenure: Any) -> None:
    settings = {"environment": "production", "secret_key": "s" * 40, "introspection": False, "graphiql": False}
    async with make_tenure(plugins=["boom"], extra_plugins=[_boom_plugin()], **settings) as tenure:
        key = await tenure.key()
        boom = await tenure.gql("{ boom }", key=key)
        assert "hunter2" not in json.dumps(boom) and "10.0.0.5" not in json.dumps(boom)
        assert boom["errors"][0]["message"] == "Unexpected error."
        # What the caller can act on still says what is wrong.
        anonymous = await tenure.gql("{ viewer { name } }")
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert _limit(await tenure.gql("{ customers(first: 500) { totalCount } }", key=key)) == "page_size"
        invalid = await tenure.gql("{ nosuchfield }", key=key)
        assert "nosuchfield" in invalid["errors"][0]["message"]
        intro = await tenure.gql("{ __schema { types { name } } }", key=key)
        assert intro.get("data") is None and "introspection" in intro["errors"][0]["message"].lower()
        by_type = await tenure.gql('{ __type(name: "Customer") { fields { name } } }', key=key)
        assert by_type.get("data") is None
        page = await tenure.client.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()
    async with make_tenure(plugins=["boom"], extra_plugins=[_boom_plugin()]) as development:
        shown = await development.gql("{ boom }", key=await development.key())
        assert "internal detail" in shown["errors"][0]["message"]
        assert (await development.ok("{ __schema { queryType { name } } }"))["__schema"]["queryType"]["name"] == "Query"
        ide = await development.client.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" in ide.text.lower()
