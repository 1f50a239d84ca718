"""Prometheus metrics of one process, in the text exposition format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Metrics:
    requests: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))

    def observe_request(self, seconds: float) -> None:
        self.requests += 1
        self.seconds += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    async def render(self, db: Any) -> str:
        from core.models import OutboxEntry, OutboxStatus

        lines = [
            "# HELP tenure_graphql_requests_total GraphQL requests served.",
            "# TYPE tenure_graphql_requests_total counter",
            f"tenure_graphql_requests_total {self.requests}",
            "# HELP tenure_graphql_request_seconds Time to answer a GraphQL request.",
            "# TYPE tenure_graphql_request_seconds histogram",
        ]
        lines += [f'tenure_graphql_request_seconds_bucket{{le="{b}"}} {n}' for b, n in zip(BUCKETS, self.buckets, strict=True)]
        lines += [
            f'tenure_graphql_request_seconds_bucket{{le="+Inf"}} {self.requests}',
            f"tenure_graphql_request_seconds_sum {self.seconds:.6f}",
            f"tenure_graphql_request_seconds_count {self.requests}",
        ]
        async with db.reader() as session:
            rows = (await session.execute(
                select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status)
            )).all()
            oldest = await session.scalar(
                select(func.min(OutboxEntry.available_at)).where(OutboxEntry.status == OutboxStatus.PENDING)
            )
        lines += ["# HELP tenure_outbox_entries Outbox entries by status.", "# TYPE tenure_outbox_entries gauge"]
        lines += [f'tenure_outbox_entries{{status="{status}"}} {n}' for status, n in rows]
        if oldest is not None:
            from core import clock

            lag = max(0.0, (clock.now() - clock.as_utc(oldest)).total_seconds())
            lines += ["# HELP tenure_outbox_lag_seconds Age of the oldest pending entry.",
                      "# TYPE tenure_outbox_lag_seconds gauge", f"tenure_outbox_lag_seconds {lag:.3f}"]
        return "\n".join(lines) + "\n"
