"""The NPS plugin's answer to exportCustomer and eraseCustomer.

Export: every invitation sent to the customer and every answer, with the survey's name
and the comment. Erase: comments are the person's own words and go; scores, categories
and dates stay, so the NPS report does not move.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.privacy import export_rows
from tenure.plugins.nps.models import Invitation, Response, Survey

invitations, responses = Invitation.__table__, Response.__table__


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    return {
        "invitations": await export_rows(session, select(invitations, Survey.name.label("survey"))
                                         .join(Survey, Survey.id == invitations.c.survey_id)
                                         .where(invitations.c.customer_id == customer_id)
                                         .order_by(invitations.c.id)),
        "responses": await export_rows(session, select(responses, Survey.name.label("survey"))
                                       .join(Survey, Survey.id == responses.c.survey_id)
                                       .where(responses.c.customer_id == customer_id).order_by(responses.c.id)),
    }


async def erase(session: AsyncSession, customer_id: int) -> None:
    await session.execute(update(Response).where(Response.customer_id == customer_id).values(comment="")
                          .execution_options(synchronize_session=False))


def personal_data() -> list[PersonalData]:
    return [PersonalData("nps", export, erase)]
