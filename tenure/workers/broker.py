"""The dramatiq side of the distributed path.

Actors bind to a broker when they are declared, so the broker is built first and the one
actor, ``tenure_run_outbox_entry``, is declared on it explicitly (never on dramatiq's global
default, which would reach for RabbitMQ on localhost). The message carries an outbox id
only; the database says what to run, and the outbox claim makes a message delivered twice
run once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from tenure.core.logging import shown_url
from tenure.core.settings import Settings

log = logging.getLogger("tenure.worker")
ACTOR = "tenure_run_outbox_entry"
QUEUE = "tenure"


def make_broker(url: str) -> dramatiq.Broker:
    if url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    if url.startswith("amqp://"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    return StubBroker()


class BrokerDispatcher:
    """Sends one message per outbox entry (API processes and the scheduler)."""

    def __init__(self, settings: Settings) -> None:
        self.broker = make_broker(settings.broker_url)
        self.broker.declare_queue(QUEUE)

    async def dispatch(self, ids: list[int]) -> None:
        messages: list[dramatiq.Message[Any]] = [
            dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(i,), kwargs={}, options={}) for i in ids
        ]
        await asyncio.to_thread(self._send, messages)

    def _send(self, messages: list[dramatiq.Message[Any]]) -> None:
        for message in messages:
            self.broker.enqueue(message)

    async def backlog(self) -> int:
        """Messages waiting in the queue. While there are any, the scheduler does not
        re-send entries that look unclaimed: their message is most likely still queued,
        and re-sending it then would only pile duplicates onto the backlog."""
        return await asyncio.to_thread(self._backlog)

    def _backlog(self) -> int:
        client = getattr(self.broker, "client", None)
        if client is not None:  # Redis
            return int(client.llen(f"{self.broker.namespace}:{QUEUE}"))  # type: ignore[attr-defined]
        counts = getattr(self.broker, "get_queue_message_counts", None)
        if counts is not None:  # RabbitMQ
            return int(counts(QUEUE)[0])
        queue = getattr(self.broker, "queues", {}).get(QUEUE)
        return int(queue.qsize()) if queue is not None else 0

    async def close(self) -> None:
        await asyncio.to_thread(self.broker.close)


class WorkerLoop:
    """One event loop thread per worker process, holding the database engine (asyncpg
    pools belong to one loop); actor threads hand their coroutines to it."""

    def __init__(self, settings: Settings) -> None:
        from tenure.core.db import Database
        from tenure.core.plugins import load_plugins
        from tenure.core.tracing import instrument_database

        self.settings = settings
        self.plugins = load_plugins(settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tenure-worker-loop", daemon=True)
        self.thread.start()
        self.db = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
        instrument_database(self.db)  # when OTEL_* configures traces: each job's SQL and webhook calls
        self.dispatcher = BrokerDispatcher(settings)
        self.stopping = False
        self.running: dict[int, asyncio.Task[Any]] = {}

    async def _run(self, entry_id: int) -> str:
        from tenure.core import outbox

        if self.stopping:  # a message taken while the worker stops: for the next worker
            await outbox.hand_back(self.db, [entry_id])
            return "handed back"
        task = asyncio.current_task()
        assert task is not None
        self.running[entry_id] = task
        try:
            return await outbox.run_entry(self.db, self.plugins, self.settings, entry_id, self.dispatcher.dispatch)
        finally:
            self.running.pop(entry_id, None)

    def run_entry(self, entry_id: int) -> str:
        future = asyncio.run_coroutine_threadsafe(self._run(entry_id), self.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            return "released"  # stopped with the worker; its entry is due again (see drain)

    async def _drain(self, grace: float) -> int:
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=grace)
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()  # run_entry releases its claim as the cancellation passes through
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(tasks)

    def drain(self, grace: float) -> int:
        """Stop taking entries, let running jobs finish for up to ``grace`` seconds, then
        stop the rest and release their entries; returns how many were released."""
        self.stopping = True
        if self.running:
            log.info("stopping: waiting up to %s s for %d running jobs", grace, len(self.running))
        return asyncio.run_coroutine_threadsafe(self._drain(grace), self.loop).result()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.db.dispose(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def declare_actor(broker: dramatiq.Broker, worker_loop: WorkerLoop) -> dramatiq.Actor[Any, Any]:
    def run_outbox_entry(entry_id: int) -> None:
        from tenure.core.startup import database_problem

        try:
            outcome = worker_loop.run_entry(entry_id)
        except Exception as error:
            problem = database_problem(error, worker_loop.db.url)
            if problem is None:
                raise
            # The entry stays in the outbox; the scheduler sends it again once the database is back.
            log.warning("outbox entry %s not run: %s", entry_id, problem.message,
                        extra={"repeat_key": f"worker:{problem.kind}"})
            return
        log.debug("outbox entry %s: %s", entry_id, outcome)

    # Retries are the outbox's business (with backoff, recorded); dramatiq only carries.
    declare = dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker, max_retries=0)
    return declare(run_outbox_entry)


def run_worker(settings: Settings, *, threads: int = 4, stop: threading.Event | None = None) -> None:
    """Run a worker until SIGTERM/SIGINT (or ``stop`` is set)."""
    import signal

    broker = make_broker(settings.broker_url)
    worker_loop = WorkerLoop(settings)
    declare_actor(broker, worker_loop)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info("worker running with %s threads on %s", threads, shown_url(settings.broker_url))
    try:
        stop.wait()
    finally:
        released = worker_loop.drain(settings.job_drain_seconds)
        if released:
            log.info("stopping: %d jobs did not finish in %s s and were released", released,
                     settings.job_drain_seconds)
        worker.stop(timeout=10_000)
        worker_loop.close()
        broker.close()
