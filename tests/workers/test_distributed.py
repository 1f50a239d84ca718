"""The distributed path: an API transaction's outbox entry goes through the Redis broker to
a real dramatiq worker that runs it against PostgreSQL; and two schedulers ticking at once
enqueue each cron run once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tenure.core.db import Database
from tenure.testing import TenureHarness, pk_of, truncate_all
from tenure.workers import scheduler
from tenure.workers.broker import make_broker, run_worker
from tests.core.helpers import ERRORS, create_customer, record_order
from tests.support.receivers import http_receiver
from tests.workers import jobs_plugin

REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "")


async def _wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the worker did not finish in time")


@pytest.mark.skipif(not REDIS_URL, reason="set TENURE_TEST_REDIS_URL to test the Redis broker")
async def test_api_outbox_entry_runs_on_a_dramatiq_worker(postgres_url: str) -> None:
    broker = make_broker(REDIS_URL)
    broker.flush_all()  # type: ignore[attr-defined]
    broker.close()
    stop = threading.Event()
    try:
        async with TenureHarness.start(postgres_url, plugins=[], create_tables=False, broker_url=REDIS_URL) as api:
            worker = threading.Thread(target=run_worker, args=(api.settings,), kwargs={"threads": 2, "stop": stop})
            worker.start()
            try:
                with http_receiver() as receiver:
                    hook = await api.ok(
                        f"""mutation($u: String!) {{ createWebhookSubscription(input:
                        {{url: $u, eventTypes: ["order.recorded"]}}) {{ secret {ERRORS} }} }}""",
                        {"u": receiver.url},
                    )
                    assert hook["createWebhookSubscription"]["userErrors"] == []
                    cid = await create_customer(api, "Distributed")
                    await record_order(api, cid, "D-1", 1500)

                    async def delivered() -> bool:
                        done = await api.scalar("SELECT count(*) FROM outbox WHERE status = 'done'")
                        return bool(receiver.requests) and done == 1

                    await _wait_for(delivered)
                    assert len(receiver.requests) == 1
                    assert receiver.requests[0].headers["x-tenure-event-type"] == "order.recorded"
                    assert await api.scalar("SELECT count(*) FROM webhook_deliveries WHERE ok") == 1
                    # Nothing ran in the API process: the entry went through Redis.
                    assert await api.scalar("SELECT count(*) FROM outbox WHERE status <> 'done'") == 0
            finally:
                stop.set()
                worker.join(timeout=30)
            assert not worker.is_alive()
    finally:
        await truncate_all(postgres_url)


@pytest.fixture
async def harness(make_tenure: Callable[..., Any]) -> AsyncIterator[TenureHarness]:
    async with make_tenure(plugins=["testjobs"], extra_plugins=[jobs_plugin]) as app:
        yield app


async def test_two_schedulers_enqueue_each_fire_time_once(harness: TenureHarness) -> None:
    other = Database(harness.db.url)
    try:
        since = datetime(2026, 6, 1, 8, 58, tzinfo=UTC)
        until = datetime(2026, 6, 1, 9, 1, tzinfo=UTC)
        results = await asyncio.gather(
            *[scheduler.tick(db, harness.plugins, since, until) for db in (harness.db, other, harness.db, other)]
        )
        assert sum(len(r) for r in results) == 1
        rows = await harness.scalar("SELECT count(*) FROM outbox WHERE job = 'testjobs.every_five_minutes'")
        assert rows == 1
        key = await harness.scalar("SELECT dedupe_key FROM outbox")
        assert key == "schedule:testjobs.every_five_minutes:2026-06-01T09:00:00+00:00"
        # A scheduler that was down for a quarter of an hour catches up with the latest run only.
        later = await scheduler.tick(other, harness.plugins, until, until + timedelta(minutes=15))
        assert len(later) == 1
        assert (
            await harness.scalar("SELECT dedupe_key FROM outbox WHERE id = :id", id=later[0])
            == "schedule:testjobs.every_five_minutes:2026-06-01T09:15:00+00:00"
        )
        assert await harness.run_jobs() == {"done": 2}
        assert await harness.scalar("SELECT count(*) FROM events WHERE type = 'testjobs.done'") == 2
    finally:
        await other.dispose()


@pytest.mark.skipif(not REDIS_URL, reason="set TENURE_TEST_REDIS_URL to test the Redis broker")
async def test_tenure_worker_and_scheduler_processes(postgres_url: str, tmp_path: Path) -> None:
    broker = make_broker(REDIS_URL)
    broker.flush_all()  # type: ignore[attr-defined]
    broker.close()
    env = {**os.environ, "TENURE_DATABASE_URL": postgres_url, "TENURE_BROKER_URL": REDIS_URL,
           "TENURE_PLUGINS": "", "TENURE_RELAY_INTERVAL_SECONDS": "0.2", "TENURE_JOB_REDISPATCH_SECONDS": "0.5",
           "TENURE_LOG_LEVEL": "WARNING", "TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    processes = [await asyncio.create_subprocess_exec(sys.executable, "-m", "tenure.cli", command, env=env,
                                                      cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
                                                      stderr=asyncio.subprocess.STDOUT)
                 for command in ("worker", "scheduler")]
    try:
        async with TenureHarness.start(postgres_url, plugins=[], create_tables=False, broker_url=REDIS_URL) as api:
            with http_receiver() as receiver:
                await api.ok(f"""mutation($u: String!) {{ createWebhookSubscription(input: {{url: $u}})
                    {{ secret {ERRORS} }} }}""", {"u": receiver.url})
                cid = await create_customer(api, "Two processes")  # dispatched through Redis after commit

                async def first() -> bool:
                    return len(receiver.requests) >= 1

                await _wait_for(first)
                # A hand-off lost with a crashed API process: only the scheduler can find it.
                async with api.transaction() as ctx:
                    await ctx.publish("customer.updated", source="test", customer_id=pk_of(cid), summary="lost")

                async def second() -> bool:
                    return len(receiver.requests) >= 2

                await _wait_for(second)
                types = sorted(r.headers["x-tenure-event-type"] for r in receiver.requests)
                assert types == ["customer.created", "customer.updated"]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [(await asyncio.wait_for(process.communicate(), 30))[0].decode() for process in processes]
        await truncate_all(postgres_url)
    assert [p.returncode for p in processes] == [0, 0], outputs
