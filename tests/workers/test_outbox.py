"""The outbox: failed jobs retry with backoff and end dead, visibly; an entry run twice
(twice handed over, or taken over after its lease ran out) commits its effect once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from click.testing import CliRunner

from tenure.cli import main
from tenure.core import clock
from tenure.core.checks import run_invariants
from tenure.core.outbox import run_entry
from tenure.testing import TenureHarness
from tests.workers import jobs_plugin


@pytest.fixture
async def app(make_tenure: Callable[..., Any]) -> AsyncIterator[TenureHarness]:
    async with make_tenure(plugins=["testjobs"], extra_plugins=[jobs_plugin]) as harness:
        yield harness


async def _enqueue(tenure: TenureHarness, job: str, payload: dict[str, Any]) -> int:
    async with tenure.transaction() as ctx:
        entry = await ctx.enqueue(job, payload)
    assert entry is not None
    return entry


async def _entry(tenure: TenureHarness, entry_id: int) -> dict[str, Any]:
    async with tenure.db.reader() as session:
        from sqlalchemy import select

        from tenure.core.models import OutboxEntry

        row = await session.scalar(select(OutboxEntry).where(OutboxEntry.id == entry_id))
        assert row is not None
        return {
            "status": row.status,
            "attempts": row.attempts,
            "available_at": row.available_at,
            "last_error": row.last_error,
        }


async def _done_events(tenure: TenureHarness) -> int:
    return int(await tenure.scalar("SELECT count(*) FROM events WHERE type = 'testjobs.done'"))


async def test_a_failing_job_backs_off_then_ends_dead(app: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    entry = await _enqueue(app, "testjobs.always_fails", {"orderId": 7})
    assert await app.run_jobs() == {"retry": 1}
    first = await _entry(app, entry)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert (first["available_at"] - frozen_clock.now()).total_seconds() == app.settings.job_backoff_seconds
    assert "the partner API is down" in first["last_error"]
    assert await app.run_jobs() == {}  # not due before its backoff has passed
    frozen_clock.advance(seconds=app.settings.job_backoff_seconds)
    assert await app.run_jobs() == {"retry": 1}
    second = await _entry(app, entry)
    assert (second["available_at"] - frozen_clock.now()).total_seconds() == 2 * app.settings.job_backoff_seconds
    frozen_clock.advance(seconds=2 * app.settings.job_backoff_seconds)
    assert await app.run_jobs() == {"dead": 1}
    dead = await _entry(app, entry)
    assert dead["status"] == "dead" and dead["attempts"] == 3
    frozen_clock.advance(days=1)
    assert await app.run_jobs() == {}
    # Every try rolled its own writes back.
    assert await app.scalar("SELECT count(*) FROM events WHERE type = 'testjobs.tried'") == 0
    # Visible to operators: `tenure check` and /metrics.
    problems = await run_invariants(app.db, app.plugins)
    assert any("1 outbox entries failed for good" in p for p in problems), problems
    metrics = (await app.client.get("/metrics")).text
    assert 'tenure_outbox_entries{status="dead"} 1' in metrics
    env = {"TENURE_DATABASE_URL": app.settings.database_url, "TENURE_PLUGINS": ""}
    listed = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "failed"], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.output.split()[:3] == [str(entry), "testjobs.always_fails", "3"]
    assert "RuntimeError: the partner API is down" in listed.output
    # Once the cause is fixed, an operator runs it again: a fresh set of attempts, due now.
    retried = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "retry", str(entry)], env=env)
    assert retried.exit_code == 0 and f"job {entry} queued again" in retried.output
    assert (await _entry(app, entry))["status"] == "pending"
    assert await app.run_jobs() == {"retry": 1}
    missing = await asyncio.to_thread(CliRunner().invoke, main, ["jobs", "retry", str(entry)], env=env)
    assert missing.exit_code == 1 and "no failed job" in missing.output


async def test_an_entry_run_twice_commits_once(app: TenureHarness) -> None:
    entry = await _enqueue(app, "testjobs.effect", {"n": 1})
    first = await run_entry(app.db, app.plugins, app.settings, entry)
    second = await run_entry(app.db, app.plugins, app.settings, entry)
    assert (first, second) == ("done", "skipped")
    together = await _enqueue(app, "testjobs.effect", {"n": 2})
    outcomes = await asyncio.gather(*[run_entry(app.db, app.plugins, app.settings, together) for _ in range(3)])
    assert sorted(outcomes) == ["done", "skipped", "skipped"]
    assert await _done_events(app) == 2


async def test_a_lease_that_ran_out_runs_the_job_once(app: TenureHarness, frozen_clock: clock.FrozenClock) -> None:
    jobs_plugin.gate.update(started=asyncio.Event(), release=asyncio.Event())
    entry = await _enqueue(app, "testjobs.slow", {"n": 1})
    stuck = asyncio.create_task(run_entry(app.db, app.plugins, app.settings, entry))
    await asyncio.wait_for(jobs_plugin.gate["started"].wait(), 10)
    # The first worker is past its lease: a second one takes the entry over.
    frozen_clock.advance(seconds=app.settings.job_lease_seconds + 1)
    takeover = asyncio.create_task(run_entry(app.db, app.plugins, app.settings, entry))
    if app.db.dialect == "postgresql":
        # Release the first only once the takeover holds the claim (two attempts counted).
        for _ in range(200):
            if (await _entry(app, entry))["attempts"] == 2:
                break
            await asyncio.sleep(0.05)
    else:
        await asyncio.sleep(0.2)  # the takeover is waiting for SQLite's write lock
    jobs_plugin.gate["release"].set()
    outcomes = [await stuck, await takeover]
    if app.db.dialect == "postgresql":
        # The second claimed it and committed; the first found its claim gone and rolled back.
        assert outcomes == ["skipped", "done"]
    else:
        # SQLite: the first holds the write lock, so the takeover waits for it and finds it done.
        assert outcomes == ["done", "skipped"]
    assert await _done_events(app) == 1
    assert (await _entry(app, entry))["status"] == "done"
