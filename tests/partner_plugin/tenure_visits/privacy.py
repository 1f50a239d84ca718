"""Visits in exportCustomer and eraseCustomer. Where and when someone was says much about
them and a visit carries no amount a total depends on, so erasure removes the visits whole."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.plugin import PersonalData
from tenure_visits.models import Visit


async def export(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    visits = await session.scalars(select(Visit).where(Visit.customer_id == customer_id).order_by(Visit.visited_at))
    return [{"venue": v.venue, "externalId": v.external_id, "visitedAt": v.visited_at.isoformat(),
             "thankedAt": v.thanked_at.isoformat() if v.thanked_at else None} for v in visits]


async def erase(session: AsyncSession, customer_id: int) -> None:
    await session.execute(delete(Visit).where(Visit.customer_id == customer_id))


def personal_data() -> list[PersonalData]:
    return [PersonalData("visits", export, erase)]
