"""With the database out of reach, every caller is told so in words (503 / UNAVAILABLE),
never with a bare 500 or a driver's stack trace; a request the database stopped for
another's sake is told to send it again (RETRY). (Recovery after a real PostgreSQL restart
is in tests/chaos.)"""

from __future__ import annotations

import asyncio
import socket

import pytest

from tenure.testing import TenureHarness, pk_of, truncate_all


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


async def test_a_request_the_database_stops_for_another_is_told_to_send_it_again(postgres_url: str) -> None:
    """Two transactions want the same customer's rows in opposite order: PostgreSQL breaks
    the deadlock by stopping the one that waited first, here an order. Its caller is told
    why and that nothing was written (``RETRY``), in production too, and the same order sent
    again is recorded."""
    from sqlalchemy import text

    from tests.core.helpers import RECORD_ORDER, create_customer

    try:
        async with TenureHarness.start(postgres_url, plugins=["churn"], environment="production",
                                       secret_key="s" * 40) as tenure:
            customer = await create_customer(tenure)
            key = await tenure.key()
            order = {"input": {"customerId": customer, "channel": "web", "externalId": "GIVE-WAY-1",
                               "currency": "USD", "amount": 900}}
            async with tenure.db.engine.connect() as other, tenure.db.engine.connect() as watcher:
                # Another transaction holds the customer's churn mark, which an order writes last.
                await other.execute(text("INSERT INTO churn_stale (customer_id, marked_at) VALUES (:c, now()) "
                                         "ON CONFLICT (customer_id) DO UPDATE SET marked_at = excluded.marked_at"),
                                    {"c": pk_of(customer)})
                sending = asyncio.ensure_future(tenure.gql(RECORD_ORDER, order, key=key))
                waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() " \
                          "AND wait_event_type = 'Lock'"
                for _ in range(200):  # the order holds its customer and waits for the mark
                    found = (await watcher.execute(text(waiting))).scalar()
                    await watcher.rollback()  # the activity view is read once per transaction
                    if found:
                        break
                    await asyncio.sleep(0.02)
                # ... and the other transaction now asks for the customer: a deadlock.
                await other.execute(text("SELECT id FROM customers WHERE id = :c FOR UPDATE"),
                                    {"c": pk_of(customer)})
                await other.rollback()
            answer = await sending
            assert answer["data"] is None or answer["data"]["recordOrder"] is None
            (error,) = answer["errors"]
            assert error["extensions"]["code"] == "RETRY", error
            assert "nothing was written" in error["message"] and "send the request again" in error["message"]
            assert await tenure.scalar("SELECT count(*) FROM orders") == 0
            again = await tenure.ok(RECORD_ORDER, order, key=key)
            assert again["recordOrder"]["created"] is True
    finally:
        await truncate_all(postgres_url)
