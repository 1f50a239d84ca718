"""The events feed and webhook types."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry

from core import models
from schema.types.common import JSON


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


@strawberry.type(description="A URL that receives signed POSTs of the events it subscribes to.")
class WebhookSubscription:
    id: strawberry.ID
    url: str
    event_types: list[str] = strawberry.field(description="Patterns such as 'order.*'; empty means every event.")
    description: str
    active: bool
    created_at: datetime


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
