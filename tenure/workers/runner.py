"""Where queued work goes after commit.

- No broker (the embedded default): an in-process runner, a few asyncio tasks in the
  server's own loop, plus the scheduler.
- ``TENURE_BROKER_URL`` set: a dramatiq message per entry; ``tenure worker`` processes run
  them and ``tenure scheduler`` enqueues periodic jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from tenure.core import outbox
from tenure.core.db import Database
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings
from tenure.core.startup import database_problem
from tenure.workers import scheduler

log = logging.getLogger("tenure.jobs")
Stop = Callable[[], Awaitable[None]]


class Runtime(Protocol):
    """What running jobs needs of a process (the server's ``tenure.schema.runtime.Runtime`` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def plugins(self) -> PluginManager: ...

    @property
    def db(self) -> Database: ...


class InProcessRunner:
    """Runs outbox entries in this process with bounded concurrency."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.running: set[int] = set()
        self.unstarted: list[int] = []
        self.idle = asyncio.Event()  # set while no job runs
        self.idle.set()

    async def dispatch(self, ids: list[int]) -> None:
        for entry_id in ids:
            self.queue.put_nowait(entry_id)

    async def _work(self) -> None:
        rt = self.runtime
        while True:
            entry_id = await self.queue.get()
            if self.stop_event.is_set():  # stopping: left for the next process to run
                self.unstarted.append(entry_id)
                continue
            self.running.add(entry_id)
            self.idle.clear()
            try:
                await outbox.run_entry(rt.db, rt.plugins, rt.settings, entry_id, self.dispatch)
            except Exception as error:
                problem = database_problem(error, rt.db.url)
                if problem is None:
                    log.exception("outbox entry %s could not be run; it will be retried", entry_id)
                else:  # it stays in the outbox; the scheduler hands it on again once the database is back
                    log.warning("outbox entry %s not run: %s", entry_id, problem.message,
                                extra={"repeat_key": f"runner:{problem.kind}"})
            finally:
                self.running.discard(entry_id)
                if not self.running:
                    self.idle.set()

    def start(self) -> None:
        rt = self.runtime
        self.tasks = [asyncio.create_task(self._work()) for _ in range(rt.settings.job_concurrency)]
        self.tasks.append(asyncio.create_task(
            scheduler.run_forever(rt.db, rt.plugins, rt.settings, self.dispatch, self.stop_event)))

    async def stop(self) -> None:
        """Drain (SIGTERM): take no new entry, let running jobs finish for up to
        ``TENURE_JOB_DRAIN_SECONDS``, then stop them, which releases their entries at once
        (see outbox.release); entries queued here but not started are handed back too."""
        self.stop_event.set()
        grace = self.runtime.settings.job_drain_seconds
        if self.running:
            log.info("stopping: waiting up to %s s for %d running jobs", grace, len(self.running))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), grace)
        if self.running:
            log.info("stopping: %d jobs did not finish in %s s; releasing them", len(self.running), grace)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self.queue.empty():
            self.unstarted.append(self.queue.get_nowait())
        with contextlib.suppress(Exception):  # the database may be the reason we stop
            await outbox.hand_back(self.runtime.db, self.unstarted)


async def _nothing(ids: list[int]) -> None:
    """Entries stay in the outbox; whoever drains it runs them."""


async def start_background(
    runtime: Runtime, *, run_jobs: bool
) -> tuple[Callable[[list[int]], Awaitable[None]], Stop | None]:
    if runtime.settings.broker_url:
        from tenure.workers.broker import BrokerDispatcher

        dispatcher = BrokerDispatcher(runtime.settings)
        return dispatcher.dispatch, dispatcher.close
    if not run_jobs:
        return _nothing, None
    runner = InProcessRunner(runtime)
    runner.start()
    return runner.dispatch, runner.stop
