"""The journeys plugin's answer to exportCustomer and eraseCustomer.

Export: the journeys the customer entered, and each step run. Erase: nothing personal is
kept here (ids, times and step outcomes, which the journey figures need); the messages and
tasks the steps made belong to the core, which handles them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.privacy import export_rows
from tenure.plugins.journeys.models import Entry, Journey, StepRun


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    entries = Entry.__table__
    return {
        "entries": await export_rows(session, select(entries, Journey.name.label("journey"))
                                     .join(Journey, Journey.id == entries.c.journey_id)
                                     .where(entries.c.customer_id == customer_id).order_by(entries.c.id)),
        "steps": await export_rows(session, select(StepRun.__table__).join(entries, entries.c.id == StepRun.entry_id)
                                   .where(entries.c.customer_id == customer_id).order_by(StepRun.id)),
    }


async def erase(session: AsyncSession, customer_id: int) -> None:
    """Nothing to remove: entries hold no personal data (see the module notes)."""


def personal_data() -> list[PersonalData]:
    return [PersonalData("journeys", export, erase)]
