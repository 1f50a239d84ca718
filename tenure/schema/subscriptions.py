"""Subscriptions over graphql-transport-ws: ``events`` streams new entries of the events
feed. It reads the event log (the database is the truth, so any API process can serve any
subscriber) every ``TENURE_SUBSCRIPTION_POLL_SECONDS``, in a short read transaction each
time, and starts after the newest event, or after ``afterId`` to catch up first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from sqlalchemy import func, select
from strawberry.types import Info

from tenure.core import models
from tenure.core.models import Role
from tenure.schema.mutations import parse_id
from tenure.schema.permissions import allow
from tenure.schema.types.events import Event

BATCH = 100


@strawberry.type(description="Live updates, over a websocket (graphql-transport-ws).")
class Subscription:
    @strawberry.subscription(
        permission_classes=[allow(Role.ADMIN, Role.INTEGRATION, scope="events:read")],
        description="New events of the feed as they are recorded, oldest first; with `afterId`, "
        "the ones after that event first (\"0\": the whole feed).",
    )
    async def events(
        self, info: Info,
        types: Annotated[list[str] | None, strawberry.argument(
            description="Only events of these types, such as `order.recorded`; null or empty for every type.")] = None,
        after_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Start after this event (\"0\" for the whole feed); null starts with the next one.")] = None,
    ) -> AsyncGenerator[Event, None]:
        runtime = info.context.runtime
        wanted = models.Event.type.in_(types) if types else None
        async with runtime.db.reader() as session:
            if after_id is not None:
                last = 0 if str(after_id) == "0" else parse_id(after_id, "afterId", "Event")
            else:
                last = int(await session.scalar(select(func.coalesce(func.max(models.Event.id), 0))) or 0)
        while True:
            stmt = select(models.Event).where(models.Event.id > last).order_by(models.Event.id).limit(BATCH)
            if wanted is not None:
                stmt = stmt.where(wanted)
            async with runtime.db.reader() as session:
                rows = list(await session.scalars(stmt))
            for row in rows:
                last = row.id
                yield row
            if len(rows) < BATCH:
                await asyncio.sleep(runtime.settings.subscription_poll_seconds)
