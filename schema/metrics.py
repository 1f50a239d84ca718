"""Prometheus metrics, in the text exposition format.

Request figures (requests, latency, errors by GraphQL operation) belong to this process;
Prometheus adds up the processes it scrapes. Job and outbox figures are read from the
outbox table, so every API process reports the same fleet-wide numbers however many
``tenure worker`` processes ran the jobs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Operation names come from clients: only well-formed ones become labels, and at most this
#: many distinct ones, so a client cannot blow up the number of series.
MAX_OPERATIONS = 200
OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
NAMED_OPERATION = re.compile(r"^\s*(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)")


def operation_label(operation_name: str | None, query: str | None) -> str:
    """The operation's name as the client gave it or wrote it in the document; else
    ``anonymous``."""
    name = operation_name
    if not name and query:
        match = NAMED_OPERATION.match(query)
        name = match.group(1) if match else None
    return name if name and OPERATION_NAME.match(name) else "anonymous"


@dataclass
class Histogram:
    count: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b}"}} {n}' for b, n in zip(BUCKETS, self.buckets, strict=True)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {self.seconds:.6f}", f"{name}_count{suffix} {self.count}"]
        return out


@dataclass
class Metrics:
    requests: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    operations: dict[str, Histogram] = field(default_factory=dict)
    operation_errors: dict[str, int] = field(default_factory=dict)

    def observe_request(self, seconds: float) -> None:
        self.requests += 1
        self.seconds += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    def observe_operation(self, operation: str, seconds: float, failed: bool) -> None:
        """One GraphQL operation run: its time, and whether its answer carried errors."""
        if operation not in self.operations and len(self.operations) >= MAX_OPERATIONS:
            operation = "other"
        self.operations.setdefault(operation, Histogram()).observe(seconds)
        if failed:
            self.operation_errors[operation] = self.operation_errors.get(operation, 0) + 1

    def _request_lines(self) -> list[str]:
        lines = [
            "# HELP tenure_graphql_requests_total GraphQL requests served.",
            "# TYPE tenure_graphql_requests_total counter",
            f"tenure_graphql_requests_total {self.requests}",
            "# HELP tenure_graphql_request_seconds Time to answer a GraphQL request.",
            "# TYPE tenure_graphql_request_seconds histogram",
        ]
        lines += [f'tenure_graphql_request_seconds_bucket{{le="{b}"}} {n}'
                  for b, n in zip(BUCKETS, self.buckets, strict=True)]
        lines += [
            f'tenure_graphql_request_seconds_bucket{{le="+Inf"}} {self.requests}',
            f"tenure_graphql_request_seconds_sum {self.seconds:.6f}",
            f"tenure_graphql_request_seconds_count {self.requests}",
            "# HELP tenure_graphql_operations_total GraphQL operations run, by operation name.",
            "# TYPE tenure_graphql_operations_total counter",
        ]
        names = sorted(self.operations)
        lines += [f'tenure_graphql_operations_total{{operation="{n}"}} {self.operations[n].count}' for n in names]
        lines += ["# HELP tenure_graphql_operation_errors_total Operations whose answer carried errors.",
                  "# TYPE tenure_graphql_operation_errors_total counter"]
        lines += [f'tenure_graphql_operation_errors_total{{operation="{n}"}} {self.operation_errors.get(n, 0)}'
                  for n in names]
        lines += ["# HELP tenure_graphql_operation_seconds Time to run a GraphQL operation, by name.",
                  "# TYPE tenure_graphql_operation_seconds histogram"]
        for n in names:
            lines += self.operations[n].lines("tenure_graphql_operation_seconds", f'operation="{n}"')
        return lines

    async def render(self, db: Any) -> str:
        from core import clock
        from core.models import OutboxEntry, OutboxStatus

        lines = self._request_lines()
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
        for job, status, n, attempts, succeeded_or_running in by_job:
            statuses[status] = statuses.get(status, 0) + n
            # Every attempt but the one that succeeded (or is running now) failed.
            failed_attempts[job] = failed_attempts.get(job, 0) + int(attempts or 0) - int(succeeded_or_running or 0)
        lines += ["# HELP tenure_outbox_entries Outbox entries by status.", "# TYPE tenure_outbox_entries gauge"]
        lines += [f'tenure_outbox_entries{{status="{status}"}} {n}' for status, n in sorted(statuses.items())]
        lines += ["# HELP tenure_jobs Jobs in the outbox by job and status: done ran, dead failed for good.",
                  "# TYPE tenure_jobs gauge"]
        lines += [f'tenure_jobs{{job="{job}",status="{status}"}} {n}' for job, status, n, _, _ in by_job]
        lines += ["# HELP tenure_job_failed_attempts Attempts of a job that raised an error.",
                  "# TYPE tenure_job_failed_attempts gauge"]
        lines += [f'tenure_job_failed_attempts{{job="{job}"}} {n}' for job, n in sorted(failed_attempts.items())]
        lag = max(0.0, (clock.now() - clock.as_utc(oldest)).total_seconds()) if oldest is not None else 0.0
        lines += ["# HELP tenure_outbox_lag_seconds Age of the oldest due entry not yet run (0 when none waits).",
                  "# TYPE tenure_outbox_lag_seconds gauge", f"tenure_outbox_lag_seconds {lag:.3f}"]
        return "\n".join(lines) + "\n"
