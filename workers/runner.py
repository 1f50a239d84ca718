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
from typing import TYPE_CHECKING

from core import outbox
from workers import scheduler

if TYPE_CHECKING:
    from schema.server import Runtime

log = logging.getLogger("tenure.jobs")
Stop = Callable[[], Awaitable[None]]


class InProcessRunner:
    """Runs outbox entries in this process with bounded concurrency."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def dispatch(self, ids: list[int]) -> None:
        for entry_id in ids:
            self.queue.put_nowait(entry_id)

    async def _work(self) -> None:
        rt = self.runtime
        while True:
            entry_id = await self.queue.get()
            try:
                await outbox.run_entry(rt.db, rt.plugins, rt.settings, entry_id, self.dispatch)
            except Exception:
                log.exception("outbox entry %s could not be run; it will be retried", entry_id)

    def start(self) -> None:
        rt = self.runtime
        self.tasks = [asyncio.create_task(self._work()) for _ in range(rt.settings.job_concurrency)]
        self.tasks.append(asyncio.create_task(
            scheduler.run_forever(rt.db, rt.plugins, rt.settings, self.dispatch, self.stop_event)))

    async def stop(self) -> None:
        self.stop_event.set()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _nothing(ids: list[int]) -> None:
    """Entries stay in the outbox; whoever drains it runs them."""


async def start_background(
    runtime: Runtime, *, run_jobs: bool
) -> tuple[Callable[[list[int]], Awaitable[None]], Stop | None]:
    if runtime.settings.broker_url:
        from workers.broker import BrokerDispatcher

        dispatcher = BrokerDispatcher(runtime.settings)
        return dispatcher.dispatch, dispatcher.close
    if not run_jobs:
        return _nothing, None
    runner = InProcessRunner(runtime)
    runner.start()
    return runner.dispatch, runner.stop
