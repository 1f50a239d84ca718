"""The predictions plugin's answer to exportCustomer and eraseCustomer: the customer's row is
numbers derived from the kept orders (no free text, no identifier), exported as held and kept
on erasure, as the orders it comes from are."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.privacy import export_rows
from tenure.plugins.predictions.models import Prediction


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    rows = await export_rows(session, select(Prediction.__table__).where(Prediction.customer_id == customer_id))
    return {"prediction": rows[0] if rows else None}


async def erase(session: AsyncSession, customer_id: int) -> None:
    return None


def personal_data() -> list[PersonalData]:
    return [PersonalData("predictions", export, erase)]
