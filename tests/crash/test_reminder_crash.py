"""A worker killed with SIGKILL in the middle of 1,000 renewal reminders, then restarted:
every reminder reaches the (real) SMTP server, each Message-ID once.

The worker is a real ``tenure jobs run`` process on a SQLite file. Delivery is marked in
the transaction that finishes the job, so a kill can at most repeat the one message that
was in flight, with the same Message-ID: receivers drop it, and the test counts it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenure.core import clock
from tenure.core.models import Customer, CustomerContact, MessageStatus
from tenure.plugins.renewals import service
from tenure.plugins.renewals.models import Plan, Reminder, Subscription
from tenure.testing import TenureHarness
from tests.support.receivers import Mailbox, smtp_server

REMINDERS = 1000


def worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tenure.cli", "jobs", "run"], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(mailbox: Mailbox, count: int, process: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while len(mailbox.messages) < count and process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(mailbox.messages)} messages after {limit} s")
        time.sleep(0.02)


async def setup(url: str, mailbox_port: int) -> None:
    async with TenureHarness.start(url, plugins=["renewals"], smtp_host="127.0.0.1",
                                   smtp_port=mailbox_port) as tenure:
        now = clock.now()
        async with tenure.transaction() as ctx:
            plan = Plan(code="pro", name="Pro", reminder_days=[30], created_at=now)
            ctx.session.add(plan)
            customers = [Customer(name=f"Customer {i}", consent_email=True, consent_sms=False, consent_push=False,
                                  order_count=0, total_spent=0, created_at=now, updated_at=now,
                                  contacts=[CustomerContact(kind="email", value=f"c{i}@example.com")])
                         for i in range(REMINDERS)]
            ctx.session.add_all(customers)
            await ctx.session.flush()
            ctx.session.add_all(Subscription(customer_id=c.id, plan_id=plan.id, value=1000, currency="USD",
                                             starts_on=now.date() - timedelta(days=300),
                                             ends_on=now.date() + timedelta(days=30), status="active",
                                             armed_on=now.date() - timedelta(days=300), created_at=now,
                                             updated_at=now) for c in customers)
        last_id = await tenure.scalar("SELECT max(id) FROM renewals_subscriptions")
        after = 0
        while after < last_id:  # the daily job, batch by batch, recording the reminders
            async with tenure.transaction() as ctx:
                await service.daily(ctx, {"after": after})
                after = await ctx.session.scalar(select(func.max(Reminder.subscription_id)))
        recorded = await tenure.scalar("SELECT count(*) FROM messages WHERE status = 'pending'")
        assert recorded == REMINDERS


async def count_sent(url: str) -> int:
    async with TenureHarness.start(url, plugins=["renewals"], create_tables=False) as tenure:
        return int(await tenure.scalar("SELECT count(*) FROM messages WHERE status = :s", s=MessageStatus.SENT.value))


@pytest.mark.slow
def test_worker_killed_mid_batch_delivers_every_reminder_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    with smtp_server() as mailbox:
        asyncio.run(setup(url, mailbox.port))
        env = {**os.environ, "TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "renewals", "TENURE_ENVIRONMENT": "test",
               "TENURE_SMTP_HOST": "127.0.0.1", "TENURE_SMTP_PORT": str(mailbox.port),
               "TENURE_JOB_LEASE_SECONDS": "2", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        started = time.monotonic()
        first = worker(env, tmp_path)
        wait_for(mailbox, REMINDERS // 3, first, limit=120)
        first_run = time.monotonic() - started
        assert first.poll() is None, "the worker finished before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = len(mailbox.messages)
        assert 0 < at_kill < REMINDERS
        time.sleep(2.5)  # the killed worker's lease on its entry runs out
        restarted = time.monotonic()
        for _ in range(3):  # a restarted worker, and once more should it meet a lease still running
            second = worker(env, tmp_path)
            output, _ = second.communicate(timeout=300)
            assert second.returncode == 0, output.decode()
            if len(set(mailbox.message_ids())) == REMINDERS:
                break
            time.sleep(2.5)

        ids = mailbox.message_ids()
        assert len(set(ids)) == REMINDERS
        assert {r for rcpts, _ in mailbox.messages for r in rcpts} == {f"c{i}@example.com" for i in range(REMINDERS)}
        # At most the one message in flight at the kill came twice, with the same Message-ID.
        assert len(ids) - len(set(ids)) <= 1
        assert asyncio.run(count_sent(url)) == REMINDERS
        print(f"\nkilled after {at_kill} of {REMINDERS} ({first_run:.1f} s, process start included); the restart "
              f"delivered the rest in {time.monotonic() - restarted:.1f} s; {len(ids)} deliveries, "
              f"{len(set(ids))} distinct Message-IDs")
