"""The plugin's rules, as plain functions over a ServiceContext."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from tenure.plugin import Customer, CustomersMerged, NotFound, ServiceContext, UserError, log_interaction
from tenure.plugin import validation as v
from tenure_visits.models import Visit


async def record_visit(ctx: ServiceContext, customer_id: int, venue: str, external_id: str,
                       visited_at: datetime | None = None) -> tuple[Visit, bool]:
    """Record a visit once per venue and external id; it is logged as an interaction too,
    and a thank-you is queued for after commit."""
    venue = v.text(venue, "venue", max_length=100)
    external_id = v.text(external_id, "externalId", max_length=200)
    when = v.aware(visited_at, "visitedAt") if visited_at else ctx.now()
    if when > ctx.now():
        raise UserError("must not be in the future", "visitedAt", "invalid_time")
    existing = await ctx.session.scalar(select(Visit).where(Visit.venue == venue, Visit.external_id == external_id))
    if existing is not None:
        return existing, False
    if await ctx.session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id, "customerId")
    visit = Visit(customer_id=customer_id, venue=venue, external_id=external_id, visited_at=when)
    ctx.session.add(visit)
    await ctx.session.flush()
    await log_interaction(ctx, customer_id, "visit", "store", when, f"Visited {venue}", {"venue": venue},
                          external_id=f"visits:{visit.id}")
    await ctx.enqueue("visits.thank", {"visitId": visit.id}, dedupe_key=f"visits.thank:{visit.id}")
    return visit, True


async def thank(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``visits.thank`` job: thank once; a second run finds it done and does nothing."""
    visit = await ctx.session.get(Visit, payload["visitId"])
    if visit is None or visit.thanked_at is not None:
        return
    visit.thanked_at = ctx.now()
    await ctx.publish("visits.thanked", source="visits", customer_id=visit.customer_id,
                      summary=f"Thanked for the visit to {visit.venue}", data={"visitId": visit.id}, timeline=True)


async def move_visits(ctx: ServiceContext, event: CustomersMerged) -> None:
    """A merge: the merged customer's visits become the survivor's."""
    await ctx.session.execute(
        update(Visit).where(Visit.customer_id == event.merged_id).values(customer_id=event.survivor.id)
    )
