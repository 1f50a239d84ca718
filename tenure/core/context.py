"""The context every service, event handler and job receives: one session in one
transaction, the settings, the enabled plugins, the clock, and the way to raise events and
enqueue work that must happen after commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import clock

if TYPE_CHECKING:
    from tenure.core.events import DomainEvent
    from tenure.core.plugins import PluginManager
    from tenure.core.settings import Settings


@dataclass
class ServiceContext:
    session: AsyncSession
    settings: Settings
    plugins: PluginManager
    actor: str = "system"
    #: The changes are history being loaded (an import of past orders): handlers record
    #: them as of their own time and tell nobody (no message, survey, task or webhook).
    history: bool = False
    #: In a job, which run of its outbox entry this is (1 the first time): for jobs that
    #: keep their own retry schedule (:class:`tenure.core.outbox.RunAgain`).
    attempt: int = 1
    #: Outbox rows written in this transaction, handed to the job runner after commit.
    enqueued: list[int] = field(default_factory=list)
    _subscriptions: list[Any] | None = None

    @property
    def dialect(self) -> str:
        return self.session.bind.dialect.name if self.session.bind else "sqlite"

    def now(self) -> datetime:
        return clock.now()

    async def emit(self, *events: DomainEvent) -> None:
        """Run the events' handlers in this transaction, one batch per kind, then log and
        publish them."""
        from tenure.core import events as domain_events

        await domain_events.dispatch(self, events)

    async def publish(
        self,
        type: str,
        *,
        source: str,
        customer_id: int | None = None,
        summary: str = "",
        data: dict[str, Any] | None = None,
        timeline: bool = False,
        occurred_at: datetime | None = None,
    ) -> int:
        """Record an event in the log (and on the customer's timeline when ``timeline``);
        webhook subscribers to ``type`` get it after commit. Returns the event id."""
        from tenure.core import events

        return await events.publish(
            self,
            type=type,
            source=source,
            customer_id=customer_id,
            summary=summary,
            data=data or {},
            timeline=timeline,
            occurred_at=occurred_at,
        )

    async def enqueue(
        self,
        job: str,
        payload: dict[str, Any] | None = None,
        *,
        dedupe_key: str | None = None,
        delay: timedelta | None = None,
    ) -> int | None:
        """Queue ``job`` to run after commit. With a ``dedupe_key`` already queued, nothing
        is added and ``None`` comes back: the same work is never done twice."""
        from tenure.core import outbox

        entry_id = await outbox.enqueue(
            self.session, job, payload or {}, dedupe_key=dedupe_key, delay=delay
        )
        if entry_id is not None:
            self.enqueued.append(entry_id)
        return entry_id
