"""The periodic scheduler: enqueues each scheduled job at its cron times (UTC).

A fire time becomes an outbox entry with the dedupe key ``schedule:<job>:<time>``, so two
schedulers running at once, or one restarted, enqueue each run once. After a pause only
the latest missed run is enqueued: jobs compute their work from the clock, so one run
catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from croniter import croniter

from tenure.core import clock, outbox, tracing
from tenure.core.db import Database
from tenure.core.outbox import Dispatch
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings
from tenure.core.startup import database_problem

log = logging.getLogger("tenure.scheduler")


def last_fire(expression: str, since: datetime, until: datetime) -> datetime | None:
    """The latest cron time in ``(since, until]``, if any."""
    previous: datetime = croniter(expression, until + timedelta(microseconds=1)).get_prev(datetime)
    return previous if previous > since else None


async def tick(db: Database, plugins: PluginManager, since: datetime, until: datetime) -> list[int]:
    """Enqueue every scheduled job whose time came in ``(since, until]``; returns new ids."""
    created: list[int] = []
    async with db.transaction() as session:
        for spec in plugins.jobs.values():
            if spec.schedule is None:
                continue
            fire = last_fire(spec.schedule, since, until)
            if fire is None:
                continue
            entry = await outbox.enqueue(session, spec.name, {"scheduledFor": fire.isoformat()},
                                         dedupe_key=f"schedule:{spec.name}:{fire.isoformat()}")
            if entry is not None:
                created.append(entry)
                log.info("scheduled %s for %s", spec.name, fire.isoformat())
    return created


async def run_forever(
    db: Database, plugins: PluginManager, settings: Settings, dispatch: Dispatch,
    stop: asyncio.Event, *, sweep: bool = True, backlog: Callable[[], Awaitable[int]] | None = None,
) -> None:
    """Tick every ``TENURE_RELAY_INTERVAL_SECONDS``; also hand on entries whose hand-off
    was lost, retries that are due, and entries whose worker died."""
    since = clock.now() - timedelta(minutes=1)
    failed = 0
    while not stop.is_set():
        until = clock.now()
        try:
            with tracing.quiet():  # polling every second is nobody's request: no trace of its own
                ids = await tick(db, plugins, since, until)
                # Re-send only once the broker's queue has drained (see BrokerDispatcher.backlog).
                if sweep and (backlog is None or await backlog() == 0):
                    ids += await outbox.due_entries(db, redispatch_after=settings.job_redispatch_seconds)
            since = until
            if ids:
                await dispatch(sorted(set(ids)))
        except Exception as error:  # the database may be restarting: say why, once a minute, and keep going
            failed += 1
            problem = database_problem(error, db.url)
            if problem is None:
                log.exception("the scheduler's round failed; trying again every %s s", settings.relay_interval_seconds)
            else:
                log.warning("the scheduler cannot work: %s; trying again every %s s", problem.message,
                            settings.relay_interval_seconds, extra={"repeat_key": f"scheduler:{problem.kind}"})
        else:
            if failed:
                log.info("the scheduler works again, after %d failed rounds", failed)
                failed = 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.relay_interval_seconds)
