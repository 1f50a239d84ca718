"""The tiers plugin's answer to exportCustomer and eraseCustomer.

Export: the customer's membership (with the tier's name) and its history, the tier changes
on the customer's timeline. Erase: the reason staff typed for a manual override may name
the person and is blanked; the membership itself stays (it follows from the kept orders).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.models import Event
from tenure.core.privacy import export_rows
from tenure.plugins.tiers.models import Membership, Tier

memberships = Membership.__table__


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    membership = await export_rows(session, select(memberships, Tier.name.label("tier"))
                                   .join(Tier, Tier.id == memberships.c.tier_id)
                                   .where(memberships.c.customer_id == customer_id))
    history = await export_rows(session, select(Event.type, Event.occurred_at, Event.summary, Event.data)
                                .where(Event.customer_id == customer_id, Event.source == "tiers")
                                .order_by(Event.occurred_at, Event.id))
    return {"membership": membership[0] if membership else None, "history": history}


async def erase(session: AsyncSession, customer_id: int) -> None:
    await session.execute(update(Membership).where(Membership.customer_id == customer_id, Membership.manual.is_(True))
                          .values(reason="").execution_options(synchronize_session=False))


def personal_data() -> list[PersonalData]:
    return [PersonalData("tiers", export, erase)]
