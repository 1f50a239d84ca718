"""Interactions: anything that happened between the business and a customer."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.errors import Conflict, NotFound, UserError
from tenure.core.events import InteractionLogged
from tenure.core.models import Customer, Interaction

MAX_PAYLOAD_BYTES = 16_384


async def log_interaction(
    ctx: ServiceContext,
    customer_id: int,
    kind: str,
    channel: str,
    occurred_at: datetime | None = None,
    summary: str = "",
    payload: dict[str, Any] | None = None,
    external_id: str | None = None,
) -> tuple[Interaction, bool]:
    """Log an interaction; with an ``external_id``, once per channel."""
    kind = v.text(kind, "kind", max_length=50).lower()
    channel = v.text(channel, "channel", max_length=50).lower()
    summary = v.text(summary, "summary", max_length=500, required=False)
    external_id = v.key(external_id, "externalId")
    when = v.aware(occurred_at, "occurredAt") if occurred_at else ctx.now()
    if when > ctx.now():
        raise UserError("must not be in the future", "occurredAt", "invalid_time")
    payload = payload or {}
    if not isinstance(payload, dict):
        raise UserError("must be a JSON object", "payload")
    if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
        raise UserError(f"must be at most {MAX_PAYLOAD_BYTES} bytes of JSON", "payload", "too_long")
    # With an external id, the customer's row lock comes first: the same interaction sent
    # twice at once then queues here and the second finds the first's row below.
    customer = await ctx.session.get(Customer, customer_id, with_for_update=(
        {"key_share": True} if external_id is not None and ctx.dialect == "postgresql" else False))
    if external_id is not None:
        existing = await ctx.session.scalar(
            select(Interaction).where(Interaction.channel == channel, Interaction.external_id == external_id)
            .execution_options(populate_existing=True)
        )
        if existing is not None:
            if existing.customer_id != customer_id or existing.kind != kind:
                raise Conflict(f"interaction {external_id!r} from {channel} was logged for another "
                               "customer or kind", "externalId")
            return existing, False
    if customer is None:
        raise NotFound("customer", customer_id, "customerId")
    interaction = Interaction(customer_id=customer_id, kind=kind, channel=channel, occurred_at=when,
                              summary=summary, payload=payload, external_id=external_id,
                              created_at=ctx.now())
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(interaction)
            await ctx.session.flush()
    except IntegrityError:
        # Logged at this moment for another customer (whose lock we do not hold).
        raise Conflict(f"interaction {external_id!r} from {channel} was logged for another customer",
                       "externalId") from None
    if customer.last_interaction_at is None or when > customer.last_interaction_at:
        customer.last_interaction_at = when
    await ctx.session.flush()
    await ctx.emit(InteractionLogged(interaction))
    return interaction, True
