"""Prometheus metrics through ``prometheus_client``.

Request figures (requests, latency, errors by GraphQL operation) are counted by each server
process. When ``PROMETHEUS_MULTIPROC_DIR`` is set (``tenure serve --workers N`` sets it up
itself, see tenure.cli) every process writes them to its own file there and any process's
``/metrics`` adds up all of them, so one scrape answers for the whole server whichever process
it reaches. Job and outbox figures are read from the outbox table at scrape time, so every API
process reports the same fleet-wide numbers however many ``tenure worker`` processes ran the
jobs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import case, func, select

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Operation names come from clients: only well-formed ones become labels, and at most this
#: many distinct ones per process, so a client cannot blow up the number of series.
MAX_OPERATIONS = 200
OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
NAMED_OPERATION = re.compile(r"^\s*(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)")
#: The media type of the text exposition format ``generate_latest`` writes.
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The ``_created`` series (when a counter was made) mean nothing to a dashboard, and
# multiprocess mode cannot write them: leave them out everywhere alike.
disable_created_metrics()


def operation_label(operation_name: str | None, query: str | None) -> str:
    """The operation's name as the client gave it or wrote it in the document; else
    ``anonymous``."""
    name = operation_name
    if not name and query:
        match = NAMED_OPERATION.match(query)
        name = match.group(1) if match else None
    return name if name and OPERATION_NAME.match(name) else "anonymous"


def multiprocess_dir() -> str | None:
    """The folder every server process writes its figures to, when there are several."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@contextlib.contextmanager
def multiprocess_folder(workers: int) -> Iterator[str | None]:
    """Set up the folder for ``tenure serve --workers N`` (N > 1): a fresh one of its own,
    removed when the server stops, or the ``PROMETHEUS_MULTIPROC_DIR`` given, emptied first
    (figures a past run left there would be added to this run's). Its worker processes are
    started after this and inherit the variable."""
    given = multiprocess_dir()
    if given is not None:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        yield given
        return
    if workers <= 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="tenure-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    try:
        yield made
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(made, ignore_errors=True)


class Metrics:
    """The request figures of one app: its own registry, so two apps in one process (tests)
    count apart; in multiprocess mode the figures live in the shared folder instead."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.operations: set[str] = set()
        self.requests = Counter("tenure_graphql_requests", "GraphQL requests served.", registry=self.registry)
        self.request_seconds = Histogram("tenure_graphql_request_seconds", "Time to answer a GraphQL request.",
                                         buckets=BUCKETS, registry=self.registry)
        self.operations_total = Counter("tenure_graphql_operations", "GraphQL operations run, by operation name.",
                                        ["operation"], registry=self.registry)
        self.operation_errors = Counter("tenure_graphql_operation_errors", "Operations whose answer carried errors.",
                                        ["operation"], registry=self.registry)
        self.requests_refused_busy = Counter(
            "tenure_graphql_requests_refused_busy",
            "GraphQL requests answered 503 because no request slot came free within TENURE_REQUEST_QUEUE_SECONDS.",
            registry=self.registry)
        self.operation_seconds = Histogram("tenure_graphql_operation_seconds",
                                           "Time to run a GraphQL operation, by name.", ["operation"],
                                           buckets=BUCKETS, registry=self.registry)

    def observe_request(self, seconds: float) -> None:
        self.requests.inc()
        self.request_seconds.observe(seconds)

    def observe_operation(self, operation: str, seconds: float, failed: bool) -> None:
        """One GraphQL operation run: its time, and whether its answer carried errors."""
        if operation not in self.operations:
            if len(self.operations) >= MAX_OPERATIONS:
                operation = "other"
            self.operations.add(operation)
        self.operations_total.labels(operation).inc()
        self.operation_seconds.labels(operation).observe(seconds)
        # An operation that never failed still shows its errors as 0 (a series to alert on).
        self.operation_errors.labels(operation).inc(1 if failed else 0)

    def request_figures(self) -> bytes:
        """This process's figures or, in multiprocess mode, every process's added up."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)

    async def render(self, db: Any) -> str:
        from tenure.core.tracing import quiet

        with quiet():  # a scrape every few seconds: no trace of its own
            outbox = _Fixed(await outbox_figures(db))
        registry = CollectorRegistry(auto_describe=True)
        registry.register(outbox)
        return (self.request_figures() + generate_latest(registry)).decode()


class _Fixed:
    """A collector of figures read beforehand (prometheus_client collects synchronously;
    the outbox is read with the async session)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


async def outbox_figures(db: Any) -> list[Metric]:
    """Entries by status, jobs by job and status, failed attempts, and the outbox's lag."""
    from tenure.core import clock
    from tenure.core.models import OutboxEntry, OutboxStatus

    async with db.reader() as session:
        by_job = (await session.execute(
            select(OutboxEntry.job, OutboxEntry.status, func.count(), func.sum(OutboxEntry.attempts),
                   func.sum(case((OutboxEntry.status.in_([OutboxStatus.DONE, OutboxStatus.RUNNING]), 1),
                                 else_=0)))
            .group_by(OutboxEntry.job, OutboxEntry.status).order_by(OutboxEntry.job, OutboxEntry.status)
        )).all()
        oldest = await session.scalar(
            select(func.min(OutboxEntry.available_at)).where(OutboxEntry.status == OutboxStatus.PENDING)
        )
    statuses: dict[str, int] = {}
    failed_attempts: dict[str, int] = {}
    entries = GaugeMetricFamily("tenure_outbox_entries", "Outbox entries by status.", labels=["status"])
    jobs = GaugeMetricFamily("tenure_jobs", "Jobs in the outbox by job and status: done ran, dead failed for good.",
                             labels=["job", "status"])
    for job, status, n, attempts, succeeded_or_running in by_job:
        statuses[status] = statuses.get(status, 0) + n
        # Every attempt but the one that succeeded (or is running now) failed.
        failed_attempts[job] = failed_attempts.get(job, 0) + int(attempts or 0) - int(succeeded_or_running or 0)
        jobs.add_metric([job, status], n)
    for status, n in sorted(statuses.items()):
        entries.add_metric([status], n)
    failed = GaugeMetricFamily("tenure_job_failed_attempts", "Attempts of a job that raised an error.",
                               labels=["job"])
    for job, n in sorted(failed_attempts.items()):
        failed.add_metric([job], n)
    lag = max(0.0, (clock.now() - clock.as_utc(oldest)).total_seconds()) if oldest is not None else 0.0
    lag_seconds = GaugeMetricFamily("tenure_outbox_lag_seconds",
                                    "Age of the oldest due entry not yet run (0 when none waits).", value=lag)
    return [entries, jobs, failed, lag_seconds]
