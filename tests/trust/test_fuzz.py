"""Fuzzing the live schema (hypothesis-graphql): random valid queries and mutations, with
random arguments, as an admin and as a member. Whatever comes in, the server answers with
JSON, never a 500, and every error says what was wrong without leaking internals."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Any

import pytest
from graphql import GraphQLScalarType, specified_scalar_types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes

from tenure.schema.build import build_schema
from tenure.testing import pk_of

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")

SCALARS: dict[str, Any] = {
    "Long": st.integers(min_value=-(2**63), max_value=2**63 - 1).map(nodes.Int),
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()).map(nodes.String),
    "Date": st.dates().map(nodes.String),
    "JSON": st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(
        lambda d: nodes.String(json.dumps(d))),
}
#: What a message must never show: the database or Python underneath.
INTERNALS = ("[SQL:", "sqlalchemy", "asyncpg", "sqlite3", "Traceback", "object has no attribute")


def _check(status: int, body: str) -> None:
    assert status != 500, body[:500]
    answer = json.loads(body)
    for error in answer.get("errors") or []:
        message = error.get("message") or ""
        assert message.strip(), f"an error without a message: {error}"
        assert not any(word in message for word in INTERNALS), message


@pytest.mark.parametrize("role", ["admin", "member"])
def test_no_request_the_schema_allows_breaks_the_server(make_tenure: Any, role: str) -> None:
    with asyncio.Runner() as runner:
        started = make_tenure(plugins=None)
        tenure = runner.run(started.__aenter__())
        try:
            data = runner.run(tenure.ok('mutation { createCustomer(input: {name: "Fuzz", emails: ["f@x.io"]}) '
                                        "{ customer { id } } }"))
            customer = pk_of(data["createCustomer"]["customer"]["id"])
            key = tenure.member_token(customer) if role == "member" else runner.run(tenure.key("admin"))
            schema = build_schema(tenure.plugins, tenure.settings)._schema
            # A scalar a plugin adds later is fuzzed with strings and numbers until it gets its own strategy.
            scalars = {**{name: st.text(max_size=20).map(nodes.String) | st.integers().map(nodes.Int)
                          for name, t in schema.type_map.items()
                          if isinstance(t, GraphQLScalarType) and name not in specified_scalar_types},
                       **SCALARS}
            seen: list[int] = []

            @settings(max_examples=60, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
            @given(from_schema(schema, custom_scalars=scalars))
            def request(query: str) -> None:
                response = runner.run(tenure.client.post("/graphql", json={"query": query},
                                                         headers={"Authorization": f"Bearer {key}"}))
                seen.append(response.status_code)
                _check(response.status_code, response.text)

            request()
            assert len(seen) >= 60 and set(seen) <= {200, 400}
        finally:
            runner.run(started.__aexit__(None, None, None))
