"""The renewals plugin's GraphQL: plans, subscriptions and their mutations, the renewal
report, ``Customer.subscriptions`` and ``Member.subscriptions``."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import clock
from tenure.core.context import ServiceContext
from tenure.core.errors import UserError as DomainError
from tenure.plugins.renewals import service
from tenure.plugins.renewals.models import Plan, Reminder, Subscription
from tenure.schema import loaders
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.queries import counter, runner, to_int
from tenure.schema.relay import Connection, paginate
from tenure.schema.types.common import Long, Money, UserError


@strawberry.enum
class SubscriptionStatus(Enum):
    ACTIVE = "active"
    RENEWED = "renewed"
    LAPSED = "lapsed"
    CANCELLED = "cancelled"


@strawberry.type(name="Plan", description="What a subscription is for, and when its reminders go out.")
class PlanType:
    id: strawberry.ID
    code: str
    name: str

    @strawberry.field(description="Days before the end; the default (TENURE_RENEWALS_REMINDER_DAYS) when unset.")
    def reminder_days(self: Plan, info: Info) -> list[int]:
        settings = info.context.settings.for_plugin(service.PLUGIN, service.RenewalsSettings)
        return service.offsets_for(self, settings)


@strawberry.type(name="RenewalReminder", description="A reminder sent, once per end date and offset.")
class ReminderType:
    offset_days: int
    ends_on: date
    sent_at: datetime


_reminders_by_subscription = loaders.grouped(Reminder, Reminder.subscription_id, "renewals_reminders_by_subscription")
_subscriptions_by_customer = loaders.grouped(Subscription, Subscription.customer_id, "renewals_by_customer")


# Not named "Subscription": that is the name of GraphQL's root type of live updates.
@strawberry.type(name="CustomerSubscription", description="A subscription or contract with an end date.")
class SubscriptionType:
    id: strawberry.ID
    starts_on: date
    ends_on: date
    auto_renew: bool
    created_at: datetime
    renewed_to_id: strawberry.ID | None = strawberry.field(description="The term that renewed this one.")
    external_id: str | None = strawberry.field(description="The client's id given to createSubscription.")

    @strawberry.field
    def status(self: Subscription) -> SubscriptionStatus:
        return SubscriptionStatus(self.status)

    @strawberry.field(description="Per term.")
    def value(self: Subscription) -> Money:
        return Money(amount=Long(self.value), currency=self.currency)

    @strawberry.field
    async def plan(self: Subscription, info: Info) -> PlanType:
        return await info.context.loader(loaders.by_id_cached(Plan)).load(self.plan_id)

    @strawberry.field
    async def reminders(self: Subscription, info: Info) -> list[ReminderType]:
        return await info.context.loader(_reminders_by_subscription).load(self.id)

    @strawberry.field
    async def customer_id(self: Subscription) -> strawberry.ID:
        return strawberry.ID(str(self.customer_id))


@strawberry.type(description="Renewals of the subscriptions ending in one month.")
class RenewalMonth:
    month: date
    ending: int
    renewed: int
    lapsed: int
    cancelled: int
    open: int = strawberry.field(description="Still active: not renewed, lapsed or cancelled yet.")
    renewal_rate: float | None = strawberry.field(description="Renewed of those renewed, lapsed or cancelled (0-1).")
    revenue_at_risk: Money = strawberry.field(description="Value of the open ones without auto-renew.")
    revenue_lost: Money = strawberry.field(description="Value of the ones that lapsed.")


@strawberry.input(description="Every condition given must hold.")
class SubscriptionFilter:
    ending_before: date | None = strawberry.field(default=None, description="Ends on or before this day.")
    ending_after: date | None = None
    status: SubscriptionStatus | None = None
    customer_id: strawberry.ID | None = None
    plan: str | None = None


@strawberry.input
class CreatePlanInput:
    code: str
    name: str
    reminder_days: list[int] | None = strawberry.field(default=None, description="Unset: the default, 90/60/30.")


@strawberry.input
class CreateSubscriptionInput:
    customer_id: strawberry.ID
    plan: str = strawberry.field(description="The plan's code.")
    value: Long = strawberry.field(description="Minor units per term.")
    starts_on: date
    ends_on: date
    auto_renew: bool = False
    currency: str | None = None
    external_id: str | None = strawberry.field(
        default=None, description="Your own id of the subscription, unique across all customers: a retry with it "
        "returns the subscription created the first time; with other parameters it is refused.")


@strawberry.input
class UpdateSubscriptionInput:
    id: strawberry.ID
    ends_on: date | None = strawberry.field(default=None, description="A new end date re-arms the reminders.")
    value: Long | None = None
    auto_renew: bool | None = None


@strawberry.input
class RenewSubscriptionInput:
    id: strawberry.ID
    ends_on: date | None = strawberry.field(default=None, description="Unset: a term as long as the last.")
    value: Long | None = None


@strawberry.input
class CancelSubscriptionInput:
    id: strawberry.ID
    reason: str = ""


@strawberry.type
class PlanPayload:
    plan: PlanType | None
    user_errors: list[UserError]


@strawberry.type
class SubscriptionPayload:
    subscription: SubscriptionType | None
    user_errors: list[UserError]


def _payload(result: tuple[Any, list[UserError]]) -> SubscriptionPayload:
    return SubscriptionPayload(subscription=result[0], user_errors=result[1])


@strawberry.type
class RenewalsQuery:
    @strawberry.field(permission_classes=[allow(*STAFF)])
    async def plans(self, info: Info) -> list[PlanType]:
        async with info.context.db() as session:
            return list(await session.scalars(select(Plan).order_by(Plan.code)))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:read")],
                      description="Soonest end first.")
    async def subscriptions(self, info: Info, first: int = 20, after: str | None = None,
                            filter: SubscriptionFilter | None = None) -> Connection[SubscriptionType]:
        f = filter or SubscriptionFilter()
        stmt = select(Subscription)
        if f.ending_before is not None:
            stmt = stmt.where(Subscription.ends_on <= f.ending_before)
        if f.ending_after is not None:
            stmt = stmt.where(Subscription.ends_on >= f.ending_after)
        if f.status is not None:
            stmt = stmt.where(Subscription.status == f.status.value)
        if f.customer_id is not None:
            stmt = stmt.where(Subscription.customer_id == to_int(f.customer_id, "filter.customerId"))
        if f.plan is not None:
            stmt = stmt.join(Plan, Plan.id == Subscription.plan_id).where(Plan.code == f.plan.lower())
        order: list[tuple[Any, bool]] = [(Subscription.ends_on, False), (Subscription.id, False)]
        return await paginate(runner(info), stmt, order, first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:read")],
                      description="By month of the end date, from `from` to `to` (both included).")
    async def renewal_report(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")],
                             to: date | None = None) -> list[RenewalMonth]:
        try:
            async with info.context.db() as session:
                months = await service.report(session, start=from_, end=to or clock.now().date())
        except DomainError as error:
            raise GraphQLError(str(error), extensions={"code": "BAD_USER_INPUT", "field": error.field}) from None
        currency = info.context.settings.currency
        return [RenewalMonth(month=m.start, ending=m.ending, renewed=m.renewed, lapsed=m.lapsed,
                             cancelled=m.cancelled, open=m.open, renewal_rate=m.renewal_rate,
                             revenue_at_risk=Money(amount=Long(m.revenue_at_risk), currency=currency),
                             revenue_lost=Money(amount=Long(m.revenue_lost), currency=currency)) for m in months]


@strawberry.type
class RenewalsMutation:
    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def create_plan(self, info: Info, input: CreatePlanInput) -> PlanPayload:
        plan, errors = await in_transaction(info, lambda ctx: service.create_plan(
            ctx, code=input.code, name=input.name, reminder_days=input.reminder_days))
        return PlanPayload(plan=plan, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")])
    async def create_subscription(self, info: Info, input: CreateSubscriptionInput) -> SubscriptionPayload:
        async def work(ctx: ServiceContext) -> Subscription:
            return await service.create_subscription(
                ctx, customer_id=parse_id(input.customer_id, "customerId"), plan=input.plan, value=input.value,
                starts_on=input.starts_on, ends_on=input.ends_on, auto_renew=input.auto_renew,
                currency=input.currency, external_id=input.external_id)

        return _payload(await in_transaction(info, work))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")])
    async def update_subscription(self, info: Info, input: UpdateSubscriptionInput) -> SubscriptionPayload:
        return _payload(await in_transaction(info, lambda ctx: service.update_subscription(
            ctx, parse_id(input.id, "id"), ends_on=input.ends_on, value=input.value, auto_renew=input.auto_renew)))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")],
                         description="Renew for a new term; returns the new term.")
    async def renew_subscription(self, info: Info, input: RenewSubscriptionInput) -> SubscriptionPayload:
        return _payload(await in_transaction(info, lambda ctx: service.renew_subscription(
            ctx, parse_id(input.id, "id"), ends_on=input.ends_on, value=input.value)))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")])
    async def cancel_subscription(self, info: Info, input: CancelSubscriptionInput) -> SubscriptionPayload:
        return _payload(await in_transaction(info, lambda ctx: service.cancel_subscription(
            ctx, parse_id(input.id, "id"), input.reason)))


@strawberry.type
class CustomerSubscriptions:
    @strawberry.field(description="Every term, soonest end first.")
    async def subscriptions(self: Any, info: Info) -> list[SubscriptionType]:
        rows = await info.context.loader(_subscriptions_by_customer).load(self.id)
        return sorted(rows, key=lambda s: (s.ends_on, s.id))


@strawberry.type
class MemberSubscriptions:
    @strawberry.field(description="The member's active subscriptions.")
    async def subscriptions(self: Any, info: Info) -> list[SubscriptionType]:
        rows = await info.context.loader(_subscriptions_by_customer).load(self.id)
        return sorted((s for s in rows if s.status == "active"), key=lambda s: (s.ends_on, s.id))
