"""Domain events: what happened, raised by the services inside their transaction.

Events travel in batches: a service raises every event of one change together (one API
order is a batch of one; an import raises a thousand), and each handler
(``tenure_event_handlers``) runs once per kind of event in the batch, in priority order, in
the same transaction. Then the event is written to the event log, which is the ``events`` feed that
partners catch up from, and a webhook delivery is queued for every subscriber to its type.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import bindparam, insert, select

from tenure.core import bulk
from tenure.core.config_cache import CachedConfig
from tenure.core.models import Customer, Event, Interaction, Order, Task, WebhookSubscription
from tenure.core.reads import Read, Write

if TYPE_CHECKING:
    from tenure.core.context import ServiceContext


@dataclass(frozen=True)
class DomainEvent:
    """Base of every event. ``type`` is its name in the feed and in webhooks."""

    type: ClassVar[str]

    @property
    def customer_id(self) -> int | None:
        return None

    def data(self) -> dict[str, Any]:
        return {}

    def summary(self) -> str:
        return self.type


@dataclass(frozen=True)
class CustomerCreated(DomainEvent):
    type: ClassVar[str] = "customer.created"
    customer: Customer

    @property
    def customer_id(self) -> int | None:
        return self.customer.id

    def data(self) -> dict[str, Any]:
        return {"customerId": self.customer.id, "name": self.customer.name}


@dataclass(frozen=True)
class CustomerUpdated(DomainEvent):
    type: ClassVar[str] = "customer.updated"
    customer: Customer
    changed: tuple[str, ...]

    @property
    def customer_id(self) -> int | None:
        return self.customer.id

    def data(self) -> dict[str, Any]:
        return {"customerId": self.customer.id, "changed": list(self.changed)}


@dataclass(frozen=True)
class CustomersMerged(DomainEvent):
    """``merged_id`` is being folded into ``survivor``. Handlers move the plugin's rows of
    the merged customer to the survivor (keeping the better of two where only one may
    stay, such as a tier); the merged customer is deleted right after."""

    type: ClassVar[str] = "customer.merged"
    survivor: Customer
    merged_id: int

    @property
    def customer_id(self) -> int | None:
        return self.survivor.id

    def data(self) -> dict[str, Any]:
        return {"customerId": self.survivor.id, "mergedCustomerId": self.merged_id}

    def summary(self) -> str:
        return f"Customer {self.merged_id} merged into this one"


@dataclass(frozen=True)
class InteractionLogged(DomainEvent):
    type: ClassVar[str] = "interaction.logged"
    interaction: Interaction

    @property
    def customer_id(self) -> int | None:
        return self.interaction.customer_id

    def data(self) -> dict[str, Any]:
        i = self.interaction
        return {"interactionId": i.id, "customerId": i.customer_id, "kind": i.kind,
                "channel": i.channel, "occurredAt": i.occurred_at.isoformat()}


@dataclass(frozen=True)
class OrderRecorded(DomainEvent):
    """A new order (never raised again for the same channel and external id)."""

    type: ClassVar[str] = "order.recorded"
    order: Order

    @property
    def customer_id(self) -> int | None:
        return self.order.customer_id

    def data(self) -> dict[str, Any]:
        return _order_data(self.order)


@dataclass(frozen=True)
class OrderCancelled(DomainEvent):
    type: ClassVar[str] = "order.cancelled"
    order: Order

    @property
    def customer_id(self) -> int | None:
        return self.order.customer_id

    def data(self) -> dict[str, Any]:
        return _order_data(self.order)


@dataclass(frozen=True)
class OrderRefunded(DomainEvent):
    """``amount`` (minor units) was refunded now; ``order.refunded_amount`` is the total."""

    type: ClassVar[str] = "order.refunded"
    order: Order
    amount: int

    @property
    def customer_id(self) -> int | None:
        return self.order.customer_id

    def data(self) -> dict[str, Any]:
        return {**_order_data(self.order), "refundedNow": self.amount}


@dataclass(frozen=True)
class TaskCreated(DomainEvent):
    type: ClassVar[str] = "task.created"
    task: Task

    @property
    def customer_id(self) -> int | None:
        return self.task.customer_id

    def data(self) -> dict[str, Any]:
        t = self.task
        return {"taskId": t.id, "customerId": t.customer_id, "title": t.title,
                "source": t.source, "assigneeId": t.assignee_id}


@dataclass(frozen=True)
class TaskCompleted(DomainEvent):
    type: ClassVar[str] = "task.completed"
    task: Task

    @property
    def customer_id(self) -> int | None:
        return self.task.customer_id

    def data(self) -> dict[str, Any]:
        return {"taskId": self.task.id, "customerId": self.task.customer_id,
                "source": self.task.source}


def _order_data(order: Order) -> dict[str, Any]:
    return {
        "orderId": order.id,
        "customerId": order.customer_id,
        "channel": order.channel,
        "externalId": order.external_id,
        "currency": order.currency,
        "amount": order.amount,
        "refundedAmount": order.refunded_amount,
        "status": order.status,
        "placedAt": order.placed_at.isoformat(),
    }


async def dispatch(ctx: ServiceContext, events: Sequence[DomainEvent]) -> None:
    """Hand ``events`` to their handlers, each kind as one batch in the order the kinds first
    appear, then write them to the event log in one statement and queue their webhooks."""
    by_type: dict[type[DomainEvent], list[DomainEvent]] = {}
    for event in events:
        by_type.setdefault(type(event), []).append(event)
    for event_type, batch in by_type.items():
        for handler in ctx.plugins.handlers_for(event_type):
            if handler.batch:
                await handler.handle(ctx, batch)
            else:
                for event in batch:
                    await handler.handle(ctx, event)
    await publish_many(ctx, [
        Publication(type=e.type, source="core", customer_id=e.customer_id, summary=e.summary(), data=e.data())
        for e in events])


@dataclass(frozen=True)
class Publication:
    """One event for the log: what :func:`publish_many` writes."""

    type: str
    source: str
    customer_id: int | None
    summary: str
    data: dict[str, Any]
    timeline: bool = False
    occurred_at: datetime | None = None


async def publish(
    ctx: ServiceContext,
    *,
    type: str,
    source: str,
    customer_id: int | None,
    summary: str,
    data: dict[str, Any],
    timeline: bool,
    occurred_at: datetime | None,
) -> int:
    return (await publish_many(ctx, [Publication(type, source, customer_id, summary, data, timeline, occurred_at)]))[0]


async def publish_many(ctx: ServiceContext, publications: Sequence[Publication]) -> list[int]:
    """Write ``publications`` to the event log (one statement) and queue a webhook delivery
    for each subscriber to their types. A transaction replaying history (``ctx.history``)
    writes the log and the timeline but queues no delivery: subscribers hear of an import
    once, from its summary event. Returns the event ids, in order (none for a batch of history)."""
    if not publications:
        return []
    # Changes made so far reach the database first, as they did when the event was an ORM
    # row: what follows in the transaction (counts, jobs, webhooks) reads them. Nothing
    # pending, no flush (each is a greenlet hop).
    session = ctx.session
    if session.new or session.dirty or session.deleted:
        await session.flush()
    now = ctx.now()
    rows = [{"type": p.type, "source": p.source, "customer_id": p.customer_id, "summary": p.summary[:500],
             "data": p.data, "on_timeline": p.timeline, "occurred_at": p.occurred_at or now} for p in publications]
    if len(rows) == 1:
        ids = [int(await _INSERT_EVENT.one(ctx.session, **rows[0]))]
    elif ctx.history:
        # History queues no deliveries, so no id is needed back: COPY on PostgreSQL, one
        # executemany elsewhere.
        await bulk.insert_rows(ctx.session, _EVENTS, rows)
        return []
    else:
        ids = await bulk.insert_returning_ids(ctx.session, _EVENTS, rows)
    subscriptions = [] if ctx.history else await _subscriptions(ctx)
    if subscriptions:
        for event_id, p in zip(ids, publications, strict=True):
            for subscription in subscriptions:
                if subscribes(subscription.event_types, p.type):
                    await ctx.enqueue(
                        "core.deliver_webhook",
                        {"subscriptionId": subscription.id, "eventId": event_id},
                        dedupe_key=f"webhook:{subscription.id}:{event_id}",
                    )
    return ids


def subscribes(patterns: list[str], event_type: str) -> bool:
    """Empty means every event; ``order.*`` matches every order event."""
    return not patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


#: The table itself, not the mapped class: many rows at once go as one executemany of the
#: driver, without the ORM's per-row bulk machinery.
_EVENTS: Any = Event.__table__
_INSERT_EVENT = Write(lambda _keys: insert(Event).values(
    {name: bindparam(name) for name in ("type", "source", "customer_id", "summary", "data", "on_timeline",
                                         "occurred_at")}).returning(Event.id))
_ACTIVE_SUBSCRIPTIONS = CachedConfig("webhooks.active_subscriptions", WebhookSubscription, Read(
    lambda _keys: select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
    .order_by(WebhookSubscription.id)))


async def _subscriptions(ctx: ServiceContext) -> list[WebhookSubscription]:
    if ctx._subscriptions is None:
        ctx._subscriptions = await _ACTIVE_SUBSCRIPTIONS.get(ctx.session)
    return ctx._subscriptions
