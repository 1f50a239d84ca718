"""The outbox: work queued in the business transaction and run after it commits.

An entry is claimed with a lease before it runs, and marked done in the same transaction as
the job's own writes, under the claim it took; so a job runs to completion once, even when
the broker delivers its message twice or a worker dies halfway (the lease runs out and the
entry is picked up again, the half-done transaction having rolled back).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import traceback
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import clock, tracing
from tenure.core.db import Database, insert_ignoring_conflicts
from tenure.core.models import OutboxEntry, OutboxStatus
from tenure.core.reads import Write

if TYPE_CHECKING:
    from tenure.core.plugins import PluginManager
    from tenure.core.settings import Settings

log = logging.getLogger("tenure.jobs")

#: Hands entry ids to whatever runs them (the in-process runner or the broker).
Dispatch = Callable[[list[int]], Awaitable[None]]


async def enqueue(
    session: AsyncSession,
    job: str,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    delay: timedelta | None = None,
) -> int | None:
    now = clock.now()
    values: dict[str, Any] = {
        "job": job,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "available_at": now + delay if delay else now,
        "dispatched_at": None if delay else now,
        "created_at": now,
        "trace_context": tracing.trace_context(),  # the job's spans and log lines join this request
    }
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    written = await _ENQUEUE[(dialect == "postgresql", dedupe_key is not None)].all(session, **values)
    return written[0] if written else None


_OUTBOX: Any = OutboxEntry.__table__
_ENQUEUED_COLUMNS = ("job", "payload", "dedupe_key", "status", "attempts", "available_at", "dispatched_at",
                     "created_at", "trace_context")


def _enqueue(dialect: str, deduplicated: bool) -> Write:
    def build(_keys: Any) -> Any:
        statement = insert_ignoring_conflicts(dialect, _OUTBOX) if deduplicated else insert(_OUTBOX)
        return statement.values({name: bindparam(name, type_=_OUTBOX.c[name].type)
                                 for name in _ENQUEUED_COLUMNS}).returning(_OUTBOX.c.id)

    return Write(build)


#: One entry queued, by (is it PostgreSQL, is there a dedupe key): compiled once, on the driver.
_ENQUEUE = {(pg, deduplicated): _enqueue("postgresql" if pg else "sqlite", deduplicated)
            for pg in (True, False) for deduplicated in (True, False)}


async def claim(db: Database, entry_id: int, lease_seconds: int) -> tuple[str, OutboxEntry] | None:
    """Take the entry for this worker, if it is due and nobody holds it."""
    now = clock.now()
    token = secrets.token_hex(16)
    async with db.transaction() as session:
        result = await session.execute(
            update(OutboxEntry)
            .where(
                OutboxEntry.id == entry_id,
                or_(
                    and_(
                        OutboxEntry.status == OutboxStatus.PENDING,
                        OutboxEntry.available_at <= now,
                    ),
                    and_(
                        OutboxEntry.status == OutboxStatus.RUNNING,
                        OutboxEntry.locked_until < now,
                    ),
                ),
            )
            .values(
                status=OutboxStatus.RUNNING,
                claim_token=token,
                locked_until=now + timedelta(seconds=lease_seconds),
                attempts=OutboxEntry.attempts + 1,
            )
            .returning(OutboxEntry)
        )
        entry = result.scalar_one_or_none()
    return (token, entry) if entry is not None else None


class LeaseLost(Exception):
    """Another worker took the entry over after this one's lease ran out."""


class RunAgain(Exception):
    """Raised by a job that keeps its own retry schedule: what it wrote is kept (the record
    of a failed attempt) and its entry runs again after ``after``, ``reason`` its last error."""

    def __init__(self, reason: str, after: timedelta) -> None:
        super().__init__(reason)
        self.reason, self.after = reason, after


class GiveUp(Exception):
    """Raised by a job that failed for good: what it wrote is kept and its entry is dead at
    once, ``reason`` its last error (``tenure jobs failed``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _ending(stopped: RunAgain | GiveUp) -> tuple[str, dict[str, Any]]:
    """What becomes of an entry whose job stopped with ``stopped``: its outcome and row."""
    now = clock.now()
    values: dict[str, Any] = {"last_error": stopped.reason[:4000], "claim_token": None, "locked_until": None}
    if isinstance(stopped, RunAgain):
        return "retry", values | {"status": OutboxStatus.PENDING, "available_at": now + stopped.after,
                                  "dispatched_at": None}
    return "dead", values | {"status": OutboxStatus.DEAD, "completed_at": now}


async def run_entry(
    db: Database,
    plugins: PluginManager,
    settings: Settings,
    entry_id: int,
    dispatch: Dispatch | None = None,
) -> str:
    """Run one outbox entry; returns what became of it (done, retry, dead or skipped)."""
    with tracing.quiet():  # the job's own span starts once the claim says which context it had
        claimed = await claim(db, entry_id, settings.job_lease_seconds)
    if claimed is None:
        return "skipped"
    token, entry = claimed
    with tracing.job_context(entry.job, entry.id, entry.attempts, entry.trace_context):
        return await _run_claimed(db, plugins, settings, entry, token, dispatch)


async def _run_claimed(
    db: Database, plugins: PluginManager, settings: Settings, entry: OutboxEntry, token: str,
    dispatch: Dispatch | None,
) -> str:
    from tenure.core.context import ServiceContext

    spec = plugins.jobs.get(entry.job)
    if spec is None:
        await _fail(db, entry, token, f"no job named {entry.job} (is its plugin switched on?)", 0)
        return "dead"
    max_attempts = spec.max_attempts or settings.job_max_attempts
    ctx: ServiceContext | None = None
    try:
        async with db.transaction() as session:
            ctx = ServiceContext(session, settings, plugins, actor=f"job:{entry.job}", attempt=entry.attempts)
            outcome, values = "done", {"status": OutboxStatus.DONE, "completed_at": clock.now(), "last_error": None}
            try:
                await spec.run(ctx, dict(entry.payload))
            except (RunAgain, GiveUp) as stopped:
                outcome, values = _ending(stopped)
            done = await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry.id, OutboxEntry.claim_token == token)
                .values(**values)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(entry.job)
    except LeaseLost:
        log.warning("job %s (entry %s) ran past its lease; another worker has it", entry.job, entry.id)
        return "skipped"
    except asyncio.CancelledError:
        # The process is stopping (SIGTERM) and the job did not finish in time: its
        # transaction rolled back; hand the entry back now rather than after the lease.
        await asyncio.shield(release(db, entry.id, token))
        log.info("job %s (entry %s) stopped with the process; released to run again", entry.job, entry.id)
        raise
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        tracing.job_failed(exc)
        log.warning("job %s (entry %s) failed, attempt %s: %s", entry.job, entry.id, entry.attempts, message)
        log.debug("%s", traceback.format_exc())
        await _fail(db, entry, token, message, max_attempts - entry.attempts, settings)
        return "dead" if entry.attempts >= max_attempts else "retry"
    if dispatch is not None and ctx is not None and ctx.enqueued:
        await dispatch(ctx.enqueued)
    return outcome


async def _fail(
    db: Database,
    entry: OutboxEntry,
    token: str,
    error: str,
    attempts_left: int,
    settings: Settings | None = None,
) -> None:
    now = clock.now()
    if attempts_left > 0 and settings is not None:
        backoff = settings.job_backoff_seconds * (2 ** (entry.attempts - 1))
        values: dict[str, Any] = {
            "status": OutboxStatus.PENDING,
            "available_at": now + timedelta(seconds=min(backoff, 3600)),
            "dispatched_at": None,
        }
    else:
        values = {"status": OutboxStatus.DEAD, "completed_at": now}
    async with db.transaction() as session:
        await session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == entry.id, OutboxEntry.claim_token == token)
            .values(last_error=error[:4000], claim_token=None, locked_until=None, **values)
        )


async def release(db: Database, entry_id: int, token: str) -> bool:
    """Give back a claim whose job was stopped before it ended (its process is shutting
    down): the entry is due again at once, for any worker, and the attempt is not counted
    against it. Returns whether the claim was still this process's to give back."""
    async with db.transaction() as session:
        result = await session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id == entry_id, OutboxEntry.claim_token == token,
                   OutboxEntry.status == OutboxStatus.RUNNING)
            .values(status=OutboxStatus.PENDING, claim_token=None, locked_until=None, available_at=clock.now(),
                    dispatched_at=None, attempts=OutboxEntry.attempts - 1)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def hand_back(db: Database, entry_ids: list[int]) -> None:
    """Entries handed to this process that it will not run (it is stopping): marked not
    handed off, so the next sweep of any scheduler sends them on at once instead of after
    ``TENURE_JOB_REDISPATCH_SECONDS``."""
    if entry_ids:
        async with db.transaction() as session:
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id.in_(entry_ids), OutboxEntry.status == OutboxStatus.PENDING)
                .values(dispatched_at=None)
            )


async def due_entries(db: Database, *, redispatch_after: float = 60.0, limit: int = 500) -> list[int]:
    """Entries that are due and that nobody is known to be running: new ones whose hand-off
    was lost, retries whose backoff has passed, and ones whose worker died. Marks them
    handed off now."""
    now = clock.now()
    stale = now - timedelta(seconds=redispatch_after)
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                select(OutboxEntry.id)
                .where(
                    or_(
                        and_(
                            OutboxEntry.status == OutboxStatus.PENDING,
                            OutboxEntry.available_at <= now,
                            or_(OutboxEntry.dispatched_at.is_(None), OutboxEntry.dispatched_at <= stale),
                        ),
                        and_(
                            OutboxEntry.status == OutboxStatus.RUNNING,
                            OutboxEntry.locked_until < now,
                        ),
                    )
                )
                .order_by(OutboxEntry.id)
                .limit(limit)
            )
        )
        if ids:
            await session.execute(
                update(OutboxEntry).where(OutboxEntry.id.in_(ids)).values(dispatched_at=now)
            )
    return ids


async def drain(
    db: Database, plugins: PluginManager, settings: Settings, *, rounds: int = 50
) -> dict[str, int]:
    """Run every due entry, and what they enqueue, until none is left (tests, ``tenure
    jobs run``). Returns how many ended in each state."""
    counts: dict[str, int] = {}
    for _ in range(rounds):
        ids = await due_entries(db, redispatch_after=0)
        if not ids:
            break
        for entry_id in ids:
            outcome = await run_entry(db, plugins, settings, entry_id)
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


async def dead_entries(db: Database, limit: int = 50) -> list[OutboxEntry]:
    """Entries that failed for good, newest first (``tenure jobs failed``)."""
    async with db.reader() as session:
        return list(await session.scalars(
            select(OutboxEntry).where(OutboxEntry.status == OutboxStatus.DEAD).order_by(OutboxEntry.id.desc())
            .limit(limit)
        ))


async def retry_dead(db: Database, entry_id: int) -> bool:
    """Give a dead entry a fresh set of attempts, due now (``tenure jobs retry``)."""
    now = clock.now()
    async with db.transaction() as session:
        result = await session.execute(
            update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.status == OutboxStatus.DEAD)
            .values(status=OutboxStatus.PENDING, attempts=0, available_at=now, dispatched_at=None,
                    completed_at=None)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pending_ids(ids: Iterable[int | None]) -> list[int]:
    return [i for i in ids if i is not None]
