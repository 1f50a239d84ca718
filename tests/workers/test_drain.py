"""SIGTERM to a `tenure worker` (dramatiq on Redis) in the middle of a job: the job is
stopped after TENURE_JOB_DRAIN_SECONDS and its outbox entry is due again at once, for the
next worker, rather than held for the 300-second lease."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tenure.testing import TenureHarness, truncate_all
from tenure.workers.broker import make_broker
from tests.core.helpers import ERRORS
from tests.core.test_startup import Silent

REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "")
DELIVERY = "SELECT status, claim_token, locked_until, attempts, available_at <= now() FROM outbox " \
           "WHERE job = 'core.deliver_webhook'"


@pytest.mark.skipif(not REDIS_URL, reason="set TENURE_TEST_REDIS_URL to run a dramatiq worker")
async def test_sigterm_to_a_worker_releases_its_running_job_at_once(postgres_url: str, tmp_path: Path) -> None:
    broker = make_broker(REDIS_URL)
    broker.flush_all()  # type: ignore[attr-defined]
    broker.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update({"TENURE_DATABASE_URL": postgres_url, "TENURE_BROKER_URL": REDIS_URL, "TENURE_PLUGINS": "",
                "TENURE_WEBHOOK_TIMEOUT_SECONDS": "600", "TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                "TENURE_JOB_DRAIN_SECONDS": "1", "TENURE_LOG_LEVEL": "INFO"})
    log = tmp_path / "worker.log"
    silent = Silent()
    with log.open("w") as handle:
        worker = await asyncio.create_subprocess_exec(sys.executable, "-m", "tenure.cli", "worker", env=env,
                                                      cwd=tmp_path, stdout=handle, stderr=handle)
    try:
        async with TenureHarness.start(postgres_url, plugins=[], create_tables=False, broker_url=REDIS_URL) as api:
            await api.ok(f"""mutation($u: String!) {{ createWebhookSubscription(input: {{url: $u}})
                {{ secret {ERRORS} }} }}""", {"u": silent.url})
            await api.ok(f'mutation {{ createCustomer(input: {{name: "Held"}}) {{ customer {{ id }} {ERRORS} }} }}')
            deadline = time.monotonic() + 60
            while (await api.scalar("SELECT count(*) FROM outbox WHERE job = 'core.deliver_webhook' "
                                    "AND status = 'running'")) != 1:
                assert time.monotonic() < deadline, log.read_text()
                assert worker.returncode is None, log.read_text()
                await asyncio.sleep(0.2)
            # The worker holds the delivery (its lease runs 300 s); now it is told to stop.
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(worker.wait(), 60) == 0, log.read_text()
            async with api.db.reader() as session:
                row = (await session.execute(text(DELIVERY))).one()
            assert tuple(row) == ("pending", None, None, 0, True), log.read_text()
            assert "released to run again" in log.read_text()
            assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        silent.close()
        await truncate_all(postgres_url)
