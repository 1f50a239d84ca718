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
from tenure.schema.relay import After, Before, Connection, First, Last, Node, id_of, node, paginate
from tenure.schema.types.common import USER_ERRORS, Long, Money, UserError


@strawberry.enum(description="Where a subscription's term stands.")
class SubscriptionStatus(Enum):
    ACTIVE = strawberry.enum_value("active", description="Running, not yet renewed.")
    RENEWED = strawberry.enum_value("renewed", description="Followed by a new term (renewedTo).")
    LAPSED = strawberry.enum_value("lapsed", description="Ended without renewal.")
    CANCELLED = strawberry.enum_value("cancelled", description="Called off before its end.")


@strawberry.type(name="Plan", description="What a subscription is for, and when its reminders go out.")
@node(Plan, allow(*STAFF))
class PlanType(Node):
    code: str = strawberry.field(description="The plan's code, unique: what createSubscription names.")
    name: str = strawberry.field(description="The plan's name, as shown to people.")

    @strawberry.field(description="Days before the end; the default (TENURE_RENEWALS_REMINDER_DAYS) when unset.")
    def reminder_days(self: Plan, info: Info) -> list[int]:
        settings = info.context.settings.for_plugin(service.PLUGIN, service.RenewalsSettings)
        return service.offsets_for(self, settings)


@strawberry.type(name="RenewalReminder", description="A reminder sent, once per end date and offset.")
class ReminderType:
    offset_days: int = strawberry.field(description="How many days before the end it went out.")
    ends_on: date = strawberry.field(description="The end date it reminded of.")
    sent_at: datetime = strawberry.field(description="When it was sent.")


_reminders_by_subscription = loaders.grouped(Reminder, Reminder.subscription_id, "renewals_reminders_by_subscription")
_subscriptions_by_customer = loaders.grouped(Subscription, Subscription.customer_id, "renewals_by_customer")


# Not named "Subscription": that is the name of GraphQL's root type of live updates.
@strawberry.type(name="CustomerSubscription", description="A subscription or contract with an end date.")
@node(Subscription, allow(*BACKOFFICE, scope="subscriptions:read"))
class SubscriptionType(Node):
    starts_on: date = strawberry.field(description="The first day of the term.")
    ends_on: date = strawberry.field(description="The last day of the term.")
    auto_renew: bool = strawberry.field(description="True when it renews by itself (no revenue at risk).")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    renewed_to_id: strawberry.ID | None = id_of(
        "CustomerSubscription", "renewed_to_id", deprecation_reason="Use `renewedTo`, the term itself.",
        description="The global id of the term that renewed this one.")
    external_id: str | None = strawberry.field(description="The client's id given to createSubscription.")

    @strawberry.field(description="Where the term stands.")
    def status(self: Subscription) -> SubscriptionStatus:
        return SubscriptionStatus(self.status)

    @strawberry.field(description="Per term.")
    def value(self: Subscription) -> Money:
        return Money(amount=Long(self.value), currency=self.currency)

    @strawberry.field(description="The plan it is for.")
    async def plan(self: Subscription, info: Info) -> PlanType:
        return await info.context.loader(loaders.by_id_cached(Plan)).load(self.plan_id)

    @strawberry.field(description="The reminders sent for it, oldest first.")
    async def reminders(self: Subscription, info: Info) -> list[ReminderType]:
        return await info.context.loader(_reminders_by_subscription).load(self.id)

    # An id, not a link to the Customer: members read their own subscriptions, and the
    # Customer type is the staff's view (orders, tasks, owner).
    customer_id: strawberry.ID = id_of("Customer", "customer_id", required=True,
                                       description="The global id of the customer it belongs to.")

    @strawberry.field(description="The term that renewed this one, once renewed.")
    async def renewed_to(self: Subscription, info: Info) -> SubscriptionType | None:
        if self.renewed_to_id is None:
            return None
        return await info.context.loader(loaders.by_id_cached(Subscription)).load(self.renewed_to_id)


@strawberry.type(description="Renewals of the subscriptions ending in one month.")
class RenewalMonth:
    month: date = strawberry.field(description="The month's first day.")
    ending: int = strawberry.field(description="Subscriptions whose term ends in the month.")
    renewed: int = strawberry.field(description="Of those, renewed.")
    lapsed: int = strawberry.field(description="Of those, ended without renewal.")
    cancelled: int = strawberry.field(description="Of those, cancelled.")
    open: int = strawberry.field(description="Still active: not renewed, lapsed or cancelled yet.")
    renewal_rate: float | None = strawberry.field(description="Renewed of those renewed, lapsed or cancelled (0-1).")
    revenue_at_risk: Money = strawberry.field(description="Value of the open ones without auto-renew.")
    revenue_lost: Money = strawberry.field(description="Value of the ones that lapsed.")


@strawberry.input(description="Every condition given must hold.")
class SubscriptionFilter:
    ending_before: date | None = strawberry.field(default=None, description="Ends on or before this day.")
    ending_after: date | None = strawberry.field(default=None, description="Ends on or after this day.")
    status: SubscriptionStatus | None = strawberry.field(default=None, description="Subscriptions with this status.")
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="Subscriptions of this customer.")
    plan: str | None = strawberry.field(default=None, description="Subscriptions of this plan (its code).")


@strawberry.input(description="A new plan.")
class CreatePlanInput:
    code: str = strawberry.field(description="The plan's code, unique, such as `gold-annual`.")
    name: str = strawberry.field(description="The plan's name.")
    reminder_days: list[int] | None = strawberry.field(default=None, description="Unset: the default, 90/60/30.")


@strawberry.input(description="A new subscription.")
class CreateSubscriptionInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer.")
    plan: str = strawberry.field(description="The plan's code.")
    value: Long = strawberry.field(description="Minor units per term.")
    starts_on: date = strawberry.field(description="The first day of the term.")
    ends_on: date = strawberry.field(description="The last day of the term, after startsOn.")
    auto_renew: bool = strawberry.field(default=False, description="True when it renews by itself; false unless given.")
    currency: str | None = strawberry.field(
        default=None, description="The ISO 4217 currency of value; null for the business's currency.")
    external_id: str | None = strawberry.field(
        default=None, description="Your own id of the subscription, unique across all customers: a retry with it "
        "returns the subscription created the first time; with other parameters it is refused.")


@strawberry.input(description="Changes to a subscription.")
class UpdateSubscriptionInput:
    id: strawberry.ID = strawberry.field(description="The subscription's id.")
    ends_on: date | None = strawberry.field(default=None, description="A new end date re-arms the reminders.")
    value: Long | None = strawberry.field(
        default=None, description="The new value per term, in minor units; null keeps it.")
    auto_renew: bool | None = strawberry.field(default=None, description="True or false; null keeps it.")


@strawberry.input(description="A new term for a subscription.")
class RenewSubscriptionInput:
    id: strawberry.ID = strawberry.field(description="The subscription (term) to renew.")
    ends_on: date | None = strawberry.field(default=None, description="Unset: a term as long as the last.")
    value: Long | None = strawberry.field(
        default=None, description="The new term's value, in minor units; null for the same as the last.")


@strawberry.input(description="The subscription to cancel.")
class CancelSubscriptionInput:
    id: strawberry.ID = strawberry.field(description="The subscription's id.")
    reason: str = strawberry.field(default="", description="Why, for the record.")


@strawberry.type(description="The result of createPlan.")
class PlanPayload:
    plan: PlanType | None = strawberry.field(description="The plan created; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of createSubscription, updateSubscription, renewSubscription or "
                             "cancelSubscription.")
class SubscriptionPayload:
    subscription: SubscriptionType | None = strawberry.field(
        description="The subscription (for renewSubscription, the new term); null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


def _payload(result: tuple[Any, list[UserError]]) -> SubscriptionPayload:
    return SubscriptionPayload(subscription=result[0], user_errors=result[1])


@strawberry.type
class RenewalsQuery:
    @strawberry.field(permission_classes=[allow(*STAFF)], description="Every plan.")
    async def plans(self, info: Info) -> list[PlanType]:
        async with info.context.db() as session:
            return list(await session.scalars(select(Plan).order_by(Plan.code)))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:read")],
                      description="Soonest end first.")
    async def subscriptions(self, info: Info, first: First = 20, after: After = None,
                            filter: Annotated[SubscriptionFilter | None, strawberry.argument(
                                description="Which subscriptions; null for all of them.")] = None,
                            last: Last = None,
                            before: Before = None) -> Connection[SubscriptionType]:
        f = filter or SubscriptionFilter()
        stmt = select(Subscription)
        if f.ending_before is not None:
            stmt = stmt.where(Subscription.ends_on <= f.ending_before)
        if f.ending_after is not None:
            stmt = stmt.where(Subscription.ends_on >= f.ending_after)
        if f.status is not None:
            stmt = stmt.where(Subscription.status == f.status.value)
        if f.customer_id is not None:
            stmt = stmt.where(Subscription.customer_id == to_int(f.customer_id, "filter.customerId", "Customer"))
        if f.plan is not None:
            stmt = stmt.join(Plan, Plan.id == Subscription.plan_id).where(Plan.code == f.plan.lower())
        order: list[tuple[Any, bool]] = [(Subscription.ends_on, False), (Subscription.id, False)]
        return await paginate(runner(info), stmt, order, first=first, after=after, last=last, before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:read")],
                      description="By month of the end date, from `from` to `to` (both included).")
    async def renewal_report(self, info: Info,
                             from_: Annotated[date, strawberry.argument(
                                 name="from", description="A day of the first month.")],
                             to: Annotated[date | None, strawberry.argument(
                                 description="A day of the last month; null for the month of `from`.")] = None,
                             ) -> list[RenewalMonth]:
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
    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Create a plan.")
    async def create_plan(self, info: Info, input: Annotated[CreatePlanInput, strawberry.argument(
            description="The plan.")]) -> PlanPayload:
        plan, errors = await in_transaction(info, lambda ctx: service.create_plan(
            ctx, code=input.code, name=input.name, reminder_days=input.reminder_days))
        return PlanPayload(plan=plan, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")],
                         description="Record a subscription; safe to send twice with the same externalId.")
    async def create_subscription(self, info: Info, input: Annotated[CreateSubscriptionInput, strawberry.argument(
            description="The subscription.")]) -> SubscriptionPayload:
        async def work(ctx: ServiceContext) -> Subscription:
            return await service.create_subscription(
                ctx, customer_id=parse_id(input.customer_id, "customerId", "Customer"), plan=input.plan,
                value=input.value, starts_on=input.starts_on, ends_on=input.ends_on, auto_renew=input.auto_renew,
                currency=input.currency, external_id=input.external_id)

        return _payload(await in_transaction(info, work))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")],
                         description="Change a subscription's end, value or auto-renewal.")
    async def update_subscription(self, info: Info, input: Annotated[UpdateSubscriptionInput, strawberry.argument(
            description="The subscription and what to change.")]) -> SubscriptionPayload:
        return _payload(await in_transaction(info, lambda ctx: service.update_subscription(
            ctx, parse_id(input.id, "id", "CustomerSubscription"), ends_on=input.ends_on, value=input.value,
            auto_renew=input.auto_renew)))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")],
                         description="Renew for a new term; returns the new term.")
    async def renew_subscription(self, info: Info, input: Annotated[RenewSubscriptionInput, strawberry.argument(
            description="The term to renew, and the new term's end and value.")]) -> SubscriptionPayload:
        return _payload(await in_transaction(info, lambda ctx: service.renew_subscription(
            ctx, parse_id(input.id, "id", "CustomerSubscription"), ends_on=input.ends_on, value=input.value)))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="subscriptions:write")],
                         description="Cancel a subscription.")
    async def cancel_subscription(self, info: Info, input: Annotated[CancelSubscriptionInput, strawberry.argument(
            description="The subscription and why.")]) -> SubscriptionPayload:
        return _payload(await in_transaction(info, lambda ctx: service.cancel_subscription(
            ctx, parse_id(input.id, "id", "CustomerSubscription"), input.reason)))


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
