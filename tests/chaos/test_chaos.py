"""Chaos: two ``tenure serve`` and two ``tenure worker`` processes (and a scheduler) on
PostgreSQL with the Redis broker take mixed mutations while processes are killed with
SIGKILL at random moments and started again. Afterwards every acknowledged request's
effect is there exactly once, every outbox entry is done, every ledger balance equals its
entries and none is negative, and nothing (order, refund, redemption, task, message) is
doubled.

Bounded for CI: ``TENURE_CHAOS_REQUESTS`` mutations (1,000 by default; 10,000 for the long
form), seed ``TENURE_CHAOS_SEED`` (a failure replays with the same seed). Loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tenure.testing import pk_of
from tests.chaos.cluster import Cluster, flush_redis, recreate_database
from tests.chaos.driver import Book, Driver, Owned
from tests.chaos.verify import verify
from tests.support.receivers import http_receiver, smtp_server

POSTGRES_URL = os.environ.get("TENURE_CHAOS_POSTGRES_URL") or os.environ.get("TENURE_TEST_POSTGRES_URL", "")
#: "15 main": the PostgreSQL cluster (pg_ctlcluster's version and name) serving POSTGRES_URL,
#: to stop and start again in the middle of the load. Unset: that form is skipped.
PG_CLUSTER = os.environ.get("TENURE_CHAOS_PG_RESTART", "").split()
REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "")
REQUESTS = int(os.environ.get("TENURE_CHAOS_REQUESTS", "1000"))
SEED = int(os.environ.get("TENURE_CHAOS_SEED", "1124"))
CLIENTS = 8

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (POSTGRES_URL and REDIS_URL),
                       reason="needs TENURE_TEST_POSTGRES_URL and TENURE_TEST_REDIS_URL"),
]


async def _gql(port: int, key: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"http://127.0.0.1:{port}/graphql",
                                     json={"query": query, "variables": variables or {}},
                                     headers={"Authorization": f"Bearer {key}"})
    answer = response.json()
    assert not answer.get("errors"), answer
    return answer["data"]  # type: ignore[no-any-return]


async def _admin_key(database_url: str) -> str:
    from tenure.core import auth
    from tenure.core.db import Database

    db = Database(database_url)
    try:
        async with db.transaction() as session:
            return (await auth.create_api_key(session, name="chaos", role="admin")).key
    finally:
        await db.dispose()


async def _setup(port: int, key: str, webhook_url: str, plugins: set[str]) -> list[Owned]:
    await _gql(port, key, "mutation($u: String!) { createWebhookSubscription(input: {url: $u}) { secret } }",
               {"u": webhook_url})
    if "renewals" in plugins:
        await _gql(port, key, 'mutation { createPlan(input: {code: "care", name: "Care plan"}) '
                   "{ userErrors { message } } }")

    async def one_client(client: int) -> Owned:
        customers, subscriptions = [], []
        for n in range(4):
            data = await _gql(port, key, "mutation($i: CustomerInput!) { createCustomer(input: $i) "
                              "{ customer { id } } }",
                              {"i": {"name": f"Chaos {client}-{n}", "emails": [f"chaos{client}.{n}@example.com"],
                                     "consent": {"email": True}}})
            cid = pk_of(data["createCustomer"]["customer"]["id"])
            customers.append(cid)
            if "loyalty" in plugins:
                await _gql(port, key, "mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { balance } }",
                           {"i": {"customerId": str(cid), "points": 100_000, "reason": "chaos start",
                                  "idempotencyKey": f"start-{cid}"}})
            if "renewals" in plugins and n < 2:
                data = await _gql(port, key, "mutation($i: CreateSubscriptionInput!) { createSubscription(input: $i) "
                                  "{ subscription { id } userErrors { message } } }",
                                  {"i": {"customerId": str(cid), "plan": "care", "value": 12_000,
                                         "startsOn": "2026-01-01", "endsOn": "2027-06-30"}})
                subscriptions.append(pk_of(data["createSubscription"]["subscription"]["id"]))
        return Owned(customers, subscriptions)

    return list(await asyncio.gather(*(one_client(c) for c in range(CLIENTS))))


async def _kill_loop(cluster: Cluster, rng: random.Random, stop: asyncio.Event) -> None:
    """A process killed every two seconds or so, each started again after a moment, several
    down at once at times, but never both API processes."""
    restarting: dict[str, asyncio.Task[None]] = {}
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(1.5, 3.5))
        except TimeoutError:
            for task in restarting.values():
                if task.done():
                    task.result()  # a process that cannot start again fails the test here, loudly
            restarting = {n: t for n, t in restarting.items() if not t.done()}
            apis_down = sum(1 for n in restarting if n.startswith("api"))
            candidates = sorted(n for n in cluster.processes
                                if n not in restarting and not (n.startswith("api") and apis_down))
            if candidates:
                name = rng.choice(candidates)
                restarting[name] = asyncio.create_task(cluster.kill_and_restart(name, rng.uniform(0.1, 0.8)))
    await asyncio.gather(*restarting.values())


async def _restart_postgres(book: Book, after: int, down_for: float, log: dict[str, Any]) -> None:
    """Stop the database when ``after`` mutations were sent, keep it down, start it again."""
    while len(book.sent) < after:  # noqa: ASYNC110 - the clients fill the book; a glance every 0.1 s will do
        await asyncio.sleep(0.1)
    before = book.unavailable
    stop = await asyncio.create_subprocess_exec("pg_ctlcluster", *PG_CLUSTER, "stop", "-m", "fast")
    await stop.wait()
    await asyncio.sleep(down_for)
    log["unavailable_while_down"] = book.unavailable - before
    start = await asyncio.create_subprocess_exec("pg_ctlcluster", *PG_CLUSTER, "start")
    await start.wait()
    log["postgres_down_seconds"] = down_for


async def _run(requests: int, seed: int, *, restart_postgres: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    name = urlsplit(POSTGRES_URL).path.lstrip("/") + "_chaos"
    database_url = await recreate_database(POSTGRES_URL, name)
    flush_redis(REDIS_URL)
    with smtp_server() as mailbox, http_receiver() as hooks:
        # Logs live outside pytest's temporary folders, which another pytest run on the machine
        # may clean away while this test still writes to them.
        logs = Path(tempfile.mkdtemp(prefix=f"tenure-chaos-{seed}-"))
        cluster = Cluster(database_url, REDIS_URL, logs,
                          extra_env={"TENURE_SMTP_HOST": "127.0.0.1", "TENURE_SMTP_PORT": str(mailbox.port)})
        phases: dict[str, float] = {}
        mark = time.monotonic()
        cluster.migrate()
        key = await _admin_key(database_url)
        from tenure.core.plugins import load_plugins
        from tenure.core.settings import Settings

        settings = Settings.from_env(cluster.env, env_file=None)
        plugins = load_plugins(settings)
        try:
            await cluster.start()
            phases["start"] = time.monotonic() - mark
            owned = await _setup(cluster.api_ports[0], key, hooks.url, set(plugins.names()))
            phases["setup"] = time.monotonic() - mark - phases["start"]
            book = Book()
            driver = Driver(cluster.api_ports, key, rng, book, loyalty=plugins.is_enabled("loyalty"),
                            renewals=plugins.is_enabled("renewals"))
            counter = iter(range(requests))
            started = time.monotonic()

            async def client(number: int) -> None:
                for n in counter:
                    await driver.one(number, n, owned[number])

            stop = asyncio.Event()
            killer = asyncio.create_task(_kill_loop(cluster, random.Random(seed + 1), stop))
            postgres: dict[str, Any] = {}
            tasks = [client(i) for i in range(CLIENTS)]
            if restart_postgres:
                tasks.append(_restart_postgres(book, requests // 3, 4.0, postgres))
            await asyncio.gather(*tasks)
            load_seconds = time.monotonic() - started
            stop.set()
            await killer
            down = [name for name, process in cluster.processes.items() if not process.alive]
            assert not down, f"processes not running after the load: {down}"
            await driver.close()
            settle = time.monotonic()
            outcome = await verify(database_url, settings, plugins, book, hooks, within=150.0)
            phases["settle_and_verify"] = time.monotonic() - settle
        finally:
            cluster.stop()
    outcome.update({
        "seed": seed, "mutations": len(book.sent), "acknowledged": sum(s.acknowledged for s in book.sent),
        "http_requests": book.http_requests, "transport_failures": book.transport_failures,
        "double_submits": book.double_submits, "processes_killed": sum(cluster.kills.values()),
        "kills": cluster.kills, "load_seconds": round(load_seconds, 1), "gave_up": book.gave_up,
        "phases": {k: round(v, 1) for k, v in phases.items()},
        "graphql_errors": book.graphql_errors[:5], "refused": book.refused[:5], "unavailable": book.unavailable,
        "server_errors": book.server_errors, "logs": str(logs), **postgres,
    })
    return outcome


def _check(report: dict[str, Any]) -> None:
    print("chaos report: " + json.dumps(report, sort_keys=True))
    assert report["processes_killed"] >= 3, report
    assert report["losses"] == [] and report["duplicates"] == [], report
    assert report["outbox"]["pending"] == report["outbox"]["running"] == report["outbox"]["dead"] == 0, report
    assert report["invariants"] == [], report
    assert report["gave_up"] == 0 and report["refused"] == [] and report["graphql_errors"] == [], report
    assert report["acknowledged"] == report["mutations"] == REQUESTS, report
    assert report["server_errors"] == 0, report  # a failure is a clear 503 UNAVAILABLE, never a bare 500


def test_nothing_is_lost_or_doubled_when_processes_die() -> None:
    report = asyncio.run(_run(REQUESTS, SEED))
    _check(report)
    shutil.rmtree(report["logs"])  # kept when the test fails, to read what the processes said


@pytest.mark.skipif(not PG_CLUSTER, reason="set TENURE_CHAOS_PG_RESTART to the cluster to restart, e.g. '15 main'")
def test_postgresql_down_in_the_middle_fails_clearly_and_recovers() -> None:
    report = asyncio.run(_run(REQUESTS, SEED + 7, restart_postgres=True))
    _check(report)
    assert report["unavailable_while_down"] > 0, report  # callers were told, in words, what was wrong
    shutil.rmtree(report["logs"])
