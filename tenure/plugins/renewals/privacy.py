"""The renewals plugin's answer to exportCustomer and eraseCustomer.

Export: every subscription term of the customer, with the plan, and the reminders sent
about it. Erase: the client's ``externalId`` links the subscription to a person in
another system and goes (as the core's identities do); values, dates and statuses stay for
the renewal report. Cancellation reasons live on the timeline, which the core scrubs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.privacy import export_rows
from tenure.plugins.renewals.models import Plan, Reminder, Subscription

subscriptions = Subscription.__table__


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    return {
        "subscriptions": await export_rows(session, select(subscriptions, Plan.code.label("plan"),
                                                           Plan.name.label("plan_name"))
                                           .join(Plan, Plan.id == subscriptions.c.plan_id)
                                           .where(subscriptions.c.customer_id == customer_id)
                                           .order_by(subscriptions.c.id)),
        "reminders": await export_rows(session, select(Reminder.__table__)
                                       .join(subscriptions, subscriptions.c.id == Reminder.subscription_id)
                                       .where(subscriptions.c.customer_id == customer_id).order_by(Reminder.id)),
    }


async def erase(session: AsyncSession, customer_id: int) -> None:
    await session.execute(update(Subscription).where(Subscription.customer_id == customer_id)
                          .values(external_id=None).execution_options(synchronize_session=False))


def personal_data() -> list[PersonalData]:
    return [PersonalData("renewals", export, erase)]
