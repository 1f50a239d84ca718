"""Caps on depth, aliases, tokens, complexity, page size and body size: a request over one
gets an error naming it, and the server keeps answering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.core.helpers import create_customer

FINE = "{ viewer { role } }"

CASES = [
    (
        "depth",
        "{ customers(first: 2) { edges { node { orders { edges { node { customer { id } } } } } } } }",
        "TENURE_MAX_DEPTH",
    ),
    (
        "aliases",
        "{ a: viewer { role } b: viewer { role } c: viewer { role } d: viewer { role } }",
        "TENURE_MAX_ALIASES",
    ),
    ("tokens", "{ viewer { " + "role " * 120 + "} }", "TENURE_MAX_TOKENS"),
    ("complexity", "{ customers(first: 50) { nodes { id name emails tags orderCount } } }", "TENURE_MAX_COMPLEXITY"),
    ("page_size", "{ events(first: 51) { totalCount } }", "TENURE_MAX_PAGE_SIZE"),
    ("page_size", '{ customer(id: "1") { orders(first: 51) { totalCount } } }', "TENURE_MAX_PAGE_SIZE"),
]


@pytest.mark.parametrize(("limit", "query", "setting"), CASES, ids=[f"{c[0]}-{n}" for n, c in enumerate(CASES)])
async def test_a_request_over_a_cap_is_refused_by_name(
    make_tenure: Callable[..., Any], limit: str, query: str, setting: str
) -> None:
    async with make_tenure(
        plugins=[], max_depth=6, max_aliases=3, max_tokens=100, max_complexity=200, max_page_size=50
    ) as tenure:
        await create_customer(tenure, "Someone")
        answer = await tenure.gql(query, key=await tenure.key())
        assert answer.get("data") is None or all(v is None for v in answer["data"].values())
        error = answer["errors"][0]
        assert setting in error["message"], error
        assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": limit}
        assert (await tenure.ok(FINE))["viewer"]["role"] == "ADMIN"


async def test_the_same_query_under_the_caps_runs(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[], max_depth=8, max_aliases=3, max_complexity=2000, max_page_size=50) as tenure:
        await create_customer(tenure, "Someone")
        data = await tenure.ok("{ customers(first: 50) { nodes { id name emails tags orderCount } } }")
        assert data["customers"]["nodes"][0]["name"] == "Someone"


async def test_a_body_over_the_limit_is_refused(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[], max_body_bytes=2_000) as tenure:
        headers = {"Authorization": f"Bearer {await tenure.key()}", "Content-Type": "application/json"}
        padded = '{"query": "' + " " * 3_000 + '{ viewer { role } }"}'
        declared = await tenure.client.post("/graphql", content=padded, headers=headers)
        assert declared.status_code == 413
        assert "TENURE_MAX_BODY_BYTES" in declared.json()["errors"][0]["message"]

        async def chunks() -> Any:
            for start in range(0, len(padded), 500):
                yield padded[start : start + 500].encode()

        streamed = await tenure.client.post("/graphql", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        small = '{"query": "{ viewer { role } }"}'

        async def one_chunk() -> Any:
            yield small.encode()

        fine = await tenure.client.post("/graphql", content=one_chunk(), headers=headers)
        assert fine.status_code == 200 and fine.json()["data"]["viewer"]["role"] == "ADMIN"


async def test_default_page_sizes_count_toward_complexity(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[], max_complexity=300) as tenure:
        await create_customer(tenure, "Someone")
        # No `first` anywhere: 20 customers by default, each with 10 orders by default.
        implicit = "{ customers { nodes { name orders { nodes { externalId lines { sku } } } } } }"
        answer = await tenure.gql(implicit, key=await tenure.key())
        assert answer["errors"][0]["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": "complexity"}
        # customers: 1 + 20 x (nodes: 1 + name 1 + orders: 1 + 10 x (nodes: 1 + externalId 1 + lines 2)) = 861
        assert "complexity is 861," in answer["errors"][0]["message"]
        small = "{ customers(first: 5) { nodes { name orders(first: 2) { nodes { externalId lines { sku } } } } } }"
        assert (await tenure.ok(small))["customers"]["nodes"] == [{"name": "Someone", "orders": {"nodes": []}}]


def _graphql_view(tenure: Any) -> Any:
    return next(route.app for route in tenure.app.routes if getattr(route, "path", "") == "/graphql")


async def test_a_request_that_finds_every_slot_taken_is_told_the_server_is_busy(
        make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[], max_concurrent_requests=1, request_queue_seconds=0.2) as tenure:
        key = await tenure.key("admin")
        headers = {"Authorization": f"Bearer {key}"}
        async with _graphql_view(tenure).turns.take():  # another request holds the only slot
            answer = await tenure.client.post("/graphql", json={"query": FINE}, headers=headers)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        error = answer.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAVAILABLE"
        assert "every request slot has been taken for 0.2 s" in error["message"]
        metrics = (await tenure.client.get("/metrics")).text
        assert "tenure_graphql_requests_refused_busy_total 1.0" in metrics
        # The slot free again, the same request runs.
        again = await tenure.client.post("/graphql", json={"query": FINE}, headers=headers)
        assert again.status_code == 200 and again.json()["data"]["viewer"]["role"] == "ADMIN"


async def test_requests_waiting_for_a_slot_run_in_the_order_they_came() -> None:
    import asyncio

    from tenure.schema.admission import Turns

    turns = Turns(1, queue_seconds=5)
    ran: list[int] = []

    async def request(n: int) -> None:
        async with turns.take():
            ran.append(n)
            await asyncio.sleep(0)

    async with turns.take():
        waiting = []
        for n in range(6):
            waiting.append(asyncio.create_task(request(n)))
            await asyncio.sleep(0)  # each arrives after the one before
        assert turns.waiting == 6
    await asyncio.gather(*waiting)
    assert ran == [0, 1, 2, 3, 4, 5]


def test_the_request_slots_settings_are_checked() -> None:
    from tenure.core.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="TENURE_MAX_CONCURRENT_REQUESTS: 0 \\(no limit\\) or more"):
        Settings.from_env({"TENURE_MAX_CONCURRENT_REQUESTS": "-1"}, env_file=None).check()
    with pytest.raises(SettingsError, match="TENURE_REQUEST_QUEUE_SECONDS: more than 0"):
        Settings.from_env({"TENURE_REQUEST_QUEUE_SECONDS": "0"}, env_file=None).check()
