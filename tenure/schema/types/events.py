"""The events feed and webhook types."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.types import Info

from tenure.core import clock, models
from tenure.core.services import webhooks
from tenure.schema.types.common import JSON


@strawberry.type(description="An entry of the events feed; `id` only grows, so it is also the cursor.")
class Event:
    id: strawberry.ID
    type: str
    source: str
    customer_id: strawberry.ID | None
    summary: str
    occurred_at: datetime

    @strawberry.field
    def data(self: models.Event) -> JSON:
        return cast(JSON, self.data)


@strawberry.type(description="How a subscription's deliveries are going, from their recorded attempts.")
class WebhookHealth:
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None = strawberry.field(description="The last attempt's error, when it failed.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When the last attempt failed and another is scheduled: when.")
    dead_deliveries: int = strawberry.field(
        description="Deliveries given up (their retry schedule ran out, or the target was refused); "
                    "`tenure jobs failed` lists them and `tenure jobs retry` sends one again.")


@strawberry.type(description="A URL that receives POSTs of the events it subscribes to, signed after the "
                             "Standard Webhooks specification.")
class WebhookSubscription:
    id: strawberry.ID
    url: str
    event_types: list[str] = strawberry.field(description="Patterns such as 'order.*'; empty means every event.")
    description: str
    active: bool
    created_at: datetime

    @strawberry.field(description="After rotations, until when each replaced secret still signs deliveries "
                                  "beside the current one, newest first (those still valid).")
    def previous_secrets_expire_at(self: models.WebhookSubscription) -> list[datetime]:
        return [datetime.fromisoformat(p["expiresAt"]) for p in webhooks.valid_previous(self, clock.now())]

    @strawberry.field
    async def health(self: models.WebhookSubscription, info: Info) -> WebhookHealth:
        async with info.context.db() as session:
            found = await webhooks.health(session, self.id)
        return WebhookHealth(**vars(found))


@strawberry.type(description="One attempt to deliver one event to one subscriber.")
class WebhookDelivery:
    id: strawberry.ID
    subscription_id: strawberry.ID
    event_id: strawberry.ID
    attempt: int
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: int
    delivered_at: datetime
    next_attempt_at: datetime | None = strawberry.field(
        description="When this attempt failed and another is scheduled: when (with jitter).")
    dead: bool = strawberry.field(description="This failed attempt was the last: the delivery was given up.")

    @strawberry.field(description="The webhook-id header: the same on every retry and replay of a delivery.")
    def webhook_id(self: models.WebhookDelivery) -> str:
        return webhooks.webhook_id(self.event_id)
