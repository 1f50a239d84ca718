"""With the database out of reach, every caller is told so in words (503 / UNAVAILABLE),
never with a bare 500 or a driver's stack trace. (Recovery after a real PostgreSQL
restart is in tests/chaos.)"""

from __future__ import annotations

import socket

import pytest

from tenure.testing import TenureHarness


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when we return: nothing listens there


@pytest.mark.sqlite_only
async def test_a_database_out_of_reach_is_reported_clearly(database_url: str) -> None:
    url = f"postgresql+asyncpg://tenure:tenure@127.0.0.1:{_closed_port()}/nowhere"
    async with TenureHarness.start(url, plugins=[], create_tables=False, environment="production",
                                   secret_key="s" * 40) as tenure:
        keyed = await tenure.client.post("/graphql", json={"query": "{ customers(first: 1) { totalCount } }"},
                                         headers={"Authorization": "Bearer tnr_abcd1234_" + "k" * 43})
        assert keyed.status_code == 503 and keyed.headers["retry-after"]
        assert keyed.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert "cannot be reached" in keyed.json()["errors"][0]["message"]
        # A mutation reads its key in the transaction it writes in: opening it fails the same way.
        write = await tenure.client.post("/graphql", json={"query": 'mutation { createCustomer(input: {name: "A"}) '
                                                                    "{ userErrors { message } } }"},
                                         headers={"Authorization": "Bearer tnr_abcd1234_" + "k" * 43})
        assert write.status_code == 503 and write.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        member = await tenure.gql("{ me { name } }", key=tenure.member_token(7))  # signed: no database to check it
        assert member["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
        assert "Connect call failed" not in str(member) and "Unexpected error" not in str(member)
        ready = await tenure.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        assert (await tenure.client.get("/healthz")).status_code == 200  # the process itself is alive
