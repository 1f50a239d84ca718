"""The `events` subscription over graphql-transport-ws: authenticated when the socket
opens, it streams new events of the feed as mutations record them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tenure.core import auth
from tenure.core.db import Base, Database, enabled_tables
from tenure.core.plugins import load_plugins
from tenure.core.settings import Settings
from tenure.schema.server import create_app
from tenure.testing import pk_of

if TYPE_CHECKING:
    from starlette.testclient import TestClient

# starlette's TestClient (the one with websockets) asks for httpx2 over httpx; either works here.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

PROTOCOL = "graphql-transport-ws"
EVENTS = 'subscription { events(types: ["customer.created", "order.recorded"]) { id type customerId summary } }'


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings.from_env({"TENURE_DATABASE_URL": database_url, "TENURE_PLUGINS": "",
                                  "TENURE_ENVIRONMENT": "test"}, env_file=None).replace(subscription_poll_seconds=0.05)

    async def prepare() -> dict[str, str]:
        db = Database(database_url)
        try:
            if db.dialect == "sqlite":
                async with db.engine.begin() as conn:
                    await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=enabled_tables([])))
            async with db.transaction() as session:
                admin = await auth.create_api_key(session, name="admin", role="admin")
                partner = await auth.create_api_key(session, name="partner", role="integration", scopes=["events:read"])
                staff = await auth.create_api_key(session, name="staff", role="staff")
            return {"admin": admin.key, "partner": partner.key, "staff": staff.key,
                    "member": auth.member_token(settings.signing_key, 1, 600)[0]}
        finally:
            await db.dispose()

    from starlette.testclient import TestClient

    keys = asyncio.run(prepare())
    app = create_app(settings, load_plugins(settings), background=False)
    with TestClient(app) as client:
        yield client, keys


def _create(client: TestClient, key: str, name: str) -> str:
    query = f'mutation {{ createCustomer(input: {{name: "{name}"}}) {{ customer {{ id }} }} }}'
    answer = client.post("/graphql", headers={"Authorization": f"Bearer {key}"}, json={"query": query})
    return str(answer.json()["data"]["createCustomer"]["customer"]["id"])


def _open(client: TestClient, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    socket = client.websocket_connect("/graphql", subprotocols=[PROTOCOL], headers=headers or {})
    ws = socket.__enter__()
    ws.send_json({"type": "connection_init", "payload": payload})
    return socket, ws


def test_events_stream_to_a_subscriber(served: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = served
    _create(client, keys["admin"], "Before")  # already recorded: not streamed
    socket, ws = _open(client, {"Authorization": f"Bearer {keys['partner']}"})
    try:
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
        # Let the subscription note where the feed stands before anything new happens.
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        cid = _create(client, keys["admin"], "Streamed")
        client.post("/graphql", headers={"Authorization": f"Bearer {keys['admin']}"}, json={
            "query": f'mutation {{ recordOrder(input: {{customerId: "{cid}", channel: "web", externalId: "S1", '
                     'currency: "USD", amount: 100}) { created } }'})
        first, second = ws.receive_json(), ws.receive_json()
        assert first["type"] == "next" and first["id"] == "1"
        assert first["payload"]["data"]["events"]["type"] == "customer.created"
        assert first["payload"]["data"]["events"]["customerId"] == cid
        assert second["payload"]["data"]["events"]["type"] == "order.recorded"
        assert pk_of(second["payload"]["data"]["events"]["id"]) > pk_of(first["payload"]["data"]["events"]["id"])
        ws.send_json({"id": "1", "type": "complete"})
    finally:
        socket.__exit__(None, None, None)


def test_a_header_authenticates_too_and_catching_up_works(served: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = served
    _create(client, keys["admin"], "Old one")
    socket, ws = _open(client, {}, headers={"Authorization": f"Bearer {keys['admin']}"})
    try:
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json({"id": "a", "type": "subscribe", "payload": {
            "query": 'subscription { events(afterId: "0", types: ["customer.created"]) { summary } }'}})
        message = ws.receive_json()
        assert message["payload"]["data"]["events"]["summary"] == "customer.created"
    finally:
        socket.__exit__(None, None, None)


@pytest.mark.parametrize("payload", [{}, {"Authorization": "Bearer tnr_unknown_key"}, {"Authorization": "nonsense"}])
def test_no_valid_credentials_no_connection(served: tuple[TestClient, dict[str, str]], payload: dict[str, str]) -> None:
    client, _ = served
    socket, ws = _open(client, payload)
    try:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4403
    finally:
        socket.__exit__(None, None, None)


def test_roles_without_the_feed_are_refused(served: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = served
    for role in ("staff", "member"):
        socket, ws = _open(client, {"Authorization": f"Bearer {keys[role]}"})
        try:
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}})
            message = ws.receive_json()
            assert message["type"] == "error"
            assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
        finally:
            socket.__exit__(None, None, None)
