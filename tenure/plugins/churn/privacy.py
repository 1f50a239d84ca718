"""The churn plugin's answer to exportCustomer and eraseCustomer.

Export: the customer's score (RFM, segment, stage, health and the signals behind it) and
every warning. Erase: a warning's reasons are words about the person and go; the score is
numbers derived from the kept orders, and the warnings stay for the report's counts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.privacy import export_rows
from tenure.plugins.churn.models import Score, Warning


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    score = await export_rows(session, select(Score.__table__).where(Score.customer_id == customer_id))
    return {
        "score": score[0] if score else None,
        "warnings": await export_rows(session, select(Warning.__table__).where(Warning.customer_id == customer_id)
                                      .order_by(Warning.id)),
    }


async def erase(session: AsyncSession, customer_id: int) -> None:
    await session.execute(update(Warning).where(Warning.customer_id == customer_id).values(reasons=[])
                          .execution_options(synchronize_session=False))


def personal_data() -> list[PersonalData]:
    return [PersonalData("churn", export, erase)]
