"""Workers killed with SIGKILL in the middle of a journey's steps for 400 customers, then two
restarted at once: every customer gets the journey's email once (one Message-ID each) and
its owner task once, and each step is recorded done exactly once.

The workers are real ``tenure jobs run`` processes, on a SQLite file and on PostgreSQL; a ``journeys.run`` job
handles 20 entries per transaction (TENURE_JOURNEYS_BATCH_SIZE), so a kill lands between
and inside them. A step's row, its message (and delivery job) or task, and the entry's move
on commit together, so a kill rolls a batch back whole and a later run does it once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenure.core.services.orders import OrderData, record_orders
from tenure.testing import TenureHarness
from tests.core.test_messages import owner
from tests.plugins.journeys_support import CREATE, customers
from tests.support.receivers import Mailbox, smtp_server

PEOPLE = 400
ROOT = Path(__file__).resolve().parents[2]


def worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tenure.cli", "jobs", "run", "journeys.run"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def set_up(url: str) -> None:
    async with TenureHarness.start(url, plugins=["journeys"], create_tables=url.startswith("sqlite")) as app:
        # The real clock, not a frozen one: the killed workers' leases must run out.
        olga = await owner(app, "olga@shop.test")
        made = (await app.ok(CREATE, {"input": {
            "name": "Welcome", "trigger": "first_order", "holdoutPercent": 0,
            "steps": [{"action": "message", "params": {"template": "journeys.welcome_tips"}},
                      {"action": "task", "params": {"title": "Say hello"}}]}}))["createJourney"]
        assert made["userErrors"] == []
        ids = await customers(app, PEOPLE, owner_id=olga)
        async with app.transaction() as ctx:
            outcomes = await record_orders(ctx, [OrderData(customer_id=c, channel="web", external_id=f"o{c}",
                                                           currency="USD", amount=1000) for c in ids])
        assert all(o.error is None for o in outcomes)
        assert await app.scalar("SELECT count(*) FROM journeys_entries") == PEOPLE


async def results(url: str) -> dict[str, int]:
    async with TenureHarness.start(url, plugins=["journeys"], create_tables=False) as app:
        return {
            "steps done": int(await app.scalar("SELECT count(*) FROM journeys_step_runs WHERE status = 'done'")),
            "step rows": int(await app.scalar("SELECT count(*) FROM journeys_step_runs")),
            "messages": int(await app.scalar("SELECT count(*) FROM messages")),
            "messages sent": int(await app.scalar("SELECT count(*) FROM messages WHERE status = 'sent'")),
            "tasks": int(await app.scalar("SELECT count(*) FROM tasks")),
            "customers with a task": int(await app.scalar("SELECT count(DISTINCT customer_id) FROM tasks")),
            "completed": int(await app.scalar("SELECT count(*) FROM journeys_entries WHERE status = 'completed'")),
        }


def wait_for(mailbox: Mailbox, count: int, process: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while len(mailbox.messages) < count and process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(mailbox.messages)} messages after {limit} s")
        time.sleep(0.02)


@pytest.mark.slow
def test_killed_workers_leave_every_step_done_once(database_url: str) -> None:
    url = database_url
    with smtp_server() as mailbox:
        asyncio.run(set_up(url))
        env = {**os.environ, "TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "journeys", "TENURE_ENVIRONMENT": "test",
               "TENURE_SMTP_HOST": "127.0.0.1", "TENURE_SMTP_PORT": str(mailbox.port),
               "TENURE_JOB_LEASE_SECONDS": "2", "TENURE_JOURNEYS_BATCH_SIZE": "20",
               "PYTHONPATH": str(ROOT)}
        env.pop("TENURE_NOW", None)
        first = worker(env)
        wait_for(mailbox, PEOPLE // 4, first, limit=180)
        assert first.poll() is None, "the worker finished before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = len(mailbox.messages)
        assert 0 < at_kill < PEOPLE
        midway = asyncio.run(results(url))
        assert midway["steps done"] < 2 * PEOPLE  # the kill left work undone
        for _ in range(4):  # two workers at once, again while a killed lease may still run
            time.sleep(2.5)  # the killed worker's lease on its entry runs out
            pair = [worker(env), worker(env)]
            for process in pair:
                output, _ = process.communicate(timeout=300)
                assert process.returncode == 0, output.decode()
            if asyncio.run(results(url))["completed"] == PEOPLE and len(set(mailbox.message_ids())) == PEOPLE:
                break

        assert asyncio.run(results(url)) == {
            "steps done": 2 * PEOPLE, "step rows": 2 * PEOPLE, "messages": PEOPLE, "messages sent": PEOPLE,
            "tasks": PEOPLE, "customers with a task": PEOPLE, "completed": PEOPLE}
        ids = mailbox.message_ids()
        assert len(set(ids)) == PEOPLE
        assert len({r for rcpts, _ in mailbox.messages for r in rcpts}) == PEOPLE
        # At most the one message in flight at the kill came twice, with the same Message-ID.
        assert len(ids) - len(set(ids)) <= 1
        print(f"\nkilled after {at_kill} of {PEOPLE} emails; {midway['steps done']} of {2 * PEOPLE} steps were "
              f"done then; {len(ids)} deliveries, {len(set(ids))} distinct Message-IDs")
