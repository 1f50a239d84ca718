"""The events feed and webhook types."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.types import Info

from tenure.core import clock, models
from tenure.core.models import Role
from tenure.core.services import webhooks
from tenure.schema import loaders
from tenure.schema.permissions import allow
from tenure.schema.relay import Node, id_of, node
from tenure.schema.types.common import JSON
from tenure.schema.types.core import Customer


@strawberry.type(description="An entry of the events feed; `id` only grows, so it is also the cursor.")
@node(models.Event, allow(Role.ADMIN, Role.INTEGRATION, scope="events:read"))
class Event(Node):
    type: str = strawberry.field(description="The event type, dotted, such as `order.recorded` or `customer.merged`.")
    source: str = strawberry.field(description="What recorded it: `core` or a plugin's name.")
    customer_id: strawberry.ID | None = id_of(
        "Customer", "customer_id", deprecation_reason="Use `customer`, the customer itself.",
        description="The global id of the customer it concerns; null for an event about no one customer.")
    summary: str = strawberry.field(description="One line on what happened; empty when none was given.")
    occurred_at: datetime = strawberry.field(description="When it happened.")

    @strawberry.field(description="The event's details as a JSON object; their shape depends on `type`.")
    def data(self: models.Event) -> JSON:
        return cast(JSON, self.data)

    @strawberry.field(description="The customer it concerns; null for an event about no one customer.")
    async def customer(self: models.Event, info: Info) -> Customer | None:
        if self.customer_id is None:
            return None
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="How a subscription's deliveries are going, from their recorded attempts.")
class WebhookHealth:
    last_attempt_at: datetime | None = strawberry.field(description="When the latest attempt was made; null if none.")
    last_success_at: datetime | None = strawberry.field(
        description="When a delivery last succeeded; null before any did.")
    last_error: str | None = strawberry.field(description="The last attempt's error, when it failed.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When the last attempt failed and another is scheduled: when.")
    dead_deliveries: int = strawberry.field(
        description="Deliveries given up (their retry schedule ran out, or the target was refused); "
                    "`tenure jobs failed` lists them and `tenure jobs retry` sends one again.")


@strawberry.type(description="A URL that receives POSTs of the events it subscribes to, signed after the "
                             "Standard Webhooks specification.")
@node(models.WebhookSubscription, allow(Role.ADMIN))
class WebhookSubscription(Node):
    url: str = strawberry.field(description="Where deliveries are POSTed.")
    event_types: list[str] = strawberry.field(description="Patterns such as 'order.*'; empty means every event.")
    description: str = strawberry.field(description="What the subscription is for, as its creator wrote it.")
    active: bool = strawberry.field(description="False while paused: no event is delivered and none is kept for later.")
    created_at: datetime = strawberry.field(description="When it was created.")

    @strawberry.field(description="After rotations, until when each replaced secret still signs deliveries "
                                  "beside the current one, newest first (those still valid).")
    def previous_secrets_expire_at(self: models.WebhookSubscription) -> list[datetime]:
        return [datetime.fromisoformat(p["expiresAt"]) for p in webhooks.valid_previous(self, clock.now())]

    @strawberry.field(description="How its deliveries are going.")
    async def health(self: models.WebhookSubscription, info: Info) -> WebhookHealth:
        async with info.context.db() as session:
            found = await webhooks.health(session, self.id)
        return WebhookHealth(**vars(found))


@strawberry.type(description="One attempt to deliver one event to one subscriber.")
@node(models.WebhookDelivery, allow(Role.ADMIN))
class WebhookDelivery(Node):
    subscription_id: strawberry.ID = id_of(
        "WebhookSubscription", "subscription_id", required=True,
        deprecation_reason="Use `subscription`, the subscription itself.",
        description="The global id of the subscription it was made for.")
    event_id: strawberry.ID = id_of(
        "Event", "event_id", required=True, deprecation_reason="Use `event`, the event itself.",
        description="The global id of the event it delivered.")
    attempt: int = strawberry.field(description="Which attempt at this delivery it was, from 1.")
    status_code: int | None = strawberry.field(
        description="The HTTP status the receiver answered; null when no answer came (timeout, refused connection).")
    ok: bool = strawberry.field(description="Whether the receiver accepted it (a 2xx answer).")
    error: str | None = strawberry.field(description="What went wrong, when it failed; null on success.")
    duration_ms: int = strawberry.field(description="How long the attempt took, in milliseconds.")
    delivered_at: datetime = strawberry.field(description="When the attempt was made.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When this attempt failed and another is scheduled: when (with jitter).")
    dead: bool = strawberry.field(description="This failed attempt was the last: the delivery was given up.")

    @strawberry.field(description="The webhook-id header: the same on every retry and replay of a delivery.")
    def webhook_id(self: models.WebhookDelivery) -> str:
        return webhooks.webhook_id(self.event_id)

    @strawberry.field(description="The subscription it was made for.")
    async def subscription(self: models.WebhookDelivery, info: Info) -> WebhookSubscription:
        return await info.context.loader(loaders.by_id_cached(models.WebhookSubscription)).load(self.subscription_id)

    @strawberry.field(description="The event it delivered.")
    async def event(self: models.WebhookDelivery, info: Info) -> Event:
        return await info.context.loader(loaders.by_id_cached(models.Event)).load(self.event_id)
