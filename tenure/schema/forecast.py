"""``upcoming(days:)``: what the scheduled rules will do in the coming days (core.forecast)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError
from tenure.core.forecast import PlannedItem, forecast
from tenure.core.models import Role
from tenure.schema.permissions import STAFF, allow
from tenure.schema.types.common import Long


@strawberry.type(description="One thing a scheduled rule will do on a day, if nothing changes.")
class UpcomingItem:
    plugin: str = strawberry.field(description="The plugin whose rule it is.")
    kind: str = strawberry.field(description="What happens, as `<plugin>.<what>` (`renewals.reminder`).")
    count: int = strawberry.field(description="How many: reminders, customers, lots of points, invitations.")
    summary: str = strawberry.field(description="The same in words.")
    amount: Long | None = strawberry.field(description="Value moved, in `unit`, where the rule moves value.")
    unit: str | None = strawberry.field(description="`points`, or the currency code of a minor-unit amount.")


@strawberry.type(description="A day of the forecast.")
class UpcomingDay:
    day: date = strawberry.field(description="The UTC calendar day the rules' jobs act on.")
    items: list[UpcomingItem] = strawberry.field(description="What each rule will do that day.")


@strawberry.type
class ForecastQuery:
    @strawberry.field(permission_classes=[allow(*STAFF, Role.INTEGRATION, scope="reports:read")],
                      description="What the scheduled rules will do each day from today for `days` days if nothing "
                                  "changes (renewal reminders, points expiring, tier downgrades, surveys and journey "
                                  "steps due), without doing any of it. Days with nothing are left out.")
    async def upcoming(self, info: Info, days: Annotated[int, strawberry.argument(
            description="How many days to look ahead, today included: 1 to 366.")] = 30) -> list[UpcomingDay]:
        async with info.context.db() as session:
            try:
                found = await forecast(ServiceContext(session, info.context.settings, info.context.plugins), days)
            except UserError as error:
                raise GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field}) from None
            finally:
                await session.rollback()
        return [UpcomingDay(day=d.day, items=[_item(p) for p in d.items]) for d in found]


def _item(planned: PlannedItem) -> UpcomingItem:
    item = planned.item
    return UpcomingItem(plugin=planned.plugin, kind=item.kind, count=item.count, summary=item.summary,
                        amount=None if item.amount is None else Long(item.amount), unit=item.unit)
