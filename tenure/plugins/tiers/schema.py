"""Tiers' root fields: ``tiers``, ``createTier``, ``updateTier``, ``setCustomerTier``, the
distribution report and ``simulateTiers``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import strawberry
from graphql import GraphQLError
from sqlalchemy import func, select
from strawberry.types import Info

from tenure.core import clock
from tenure.core.contributions import SchemaContribution
from tenure.core.models import Order, OrderStatus
from tenure.plugins.tiers import models as m
from tenure.plugins.tiers import service
from tenure.plugins.tiers.types import (
    CustomerTier,
    SimulatedTier,
    Tier,
    TierCount,
    TierCustomerFields,
    TierSimulation,
    customer_tier,
)
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import EVERYONE, STAFF, allow
from tenure.schema.types.common import USER_ERRORS, UserError


@strawberry.input(description="A tier: any one threshold set qualifies (all with requireAll); none: everyone's tier.")
class TierInput:
    name: str = strawberry.field(description="The tier's name, as shown to members.")
    rank: int = strawberry.field(description="Higher is better; unique.")
    min_spend: int | None = strawberry.field(default=None, description="Minor units over windowDays.")
    min_orders: int | None = strawberry.field(
        default=None, description="Orders (not cancelled) over windowDays that reach the tier; null when orders do "
                                  "not count.")
    min_points: int | None = strawberry.field(
        default=None, description="Qualifying points over windowDays that reach the tier (loyalty plugin); null when "
                                  "points do not count.")
    window_days: int | None = strawberry.field(default=None, description="Default TENURE_TIERS_WINDOW_DAYS.")
    require_all: bool = strawberry.field(
        default=False, description="True when every threshold set must be met; false when any one is enough.")
    points_multiplier: int = strawberry.field(default=100, description="Percent of the usual points.")
    discount_percent: int = strawberry.field(default=0, description="Percent off every order for members, 0 to 100.")
    perks: list[str] = strawberry.field(
        default_factory=list, description="Other benefits, in words, as shown to members.")
    grace_days: int | None = strawberry.field(default=None, description="Default TENURE_TIERS_GRACE_DAYS.")
    active: bool = strawberry.field(default=True, description="False retires the tier: no one new reaches it.")

    def data(self) -> service.TierData:
        return service.TierData(**{k: getattr(self, k) for k in service.TierData.__dataclass_fields__})


@strawberry.input(description="A tier and its new fields.")
class UpdateTierInput:
    id: strawberry.ID = strawberry.field(description="The tier's id.")
    tier: TierInput = strawberry.field(description="Every field of the tier, as it is to be.")


@strawberry.type(description="The result of createTier or updateTier.")
class TierPayload:
    tier: Tier | None = strawberry.field(description="The tier as saved; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Put a customer in a tier by hand; leave tierId out to end an override.")
class SetCustomerTierInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer's id.")
    tier_id: strawberry.ID | None = strawberry.field(
        default=None, description="The tier to put the customer in; null ends the override and lets the review decide.")
    reason: str = strawberry.field(description="Why, for the record and for colleagues.")
    until: datetime | None = strawberry.field(default=None, description="When the override ends (never if left out).")


@strawberry.type(description="The result of setCustomerTier.")
class SetCustomerTierPayload:
    tier: CustomerTier | None = strawberry.field(description="The customer's tier after the change; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="A candidate tier's thresholds: any one reached qualifies.")
class TierThresholdInput:
    name: str = strawberry.field(description="The candidate tier's name.")
    rank: int = strawberry.field(description="Its place in the ladder: higher is better.")
    min_spend: int | None = strawberry.field(
        default=None, description="Net spend over the period that reaches it, in minor units; null when spend does "
                                  "not count.")
    min_orders: int | None = strawberry.field(
        default=None, description="Orders over the period that reach it; null when orders do not count.")


@strawberry.input(description="Candidate tiers to try against recent orders.")
class SimulateTiersInput:
    months: int = strawberry.field(default=12, description="How many months of orders to replay, 1 to 60.")
    tiers: list[TierThresholdInput] = strawberry.field(
        description="The candidate tiers, 1 to 20; one without thresholds holds everyone below the others.")


@strawberry.type
class TiersQuery:
    @strawberry.field(permission_classes=[allow(*EVERYONE)], description="The tiers, lowest rank first.")
    async def tiers(self, info: Info, active_only: Annotated[bool, strawberry.argument(
            description="False includes retired tiers.")] = True) -> list[Tier]:
        stmt = select(m.Tier).order_by(m.Tier.rank)
        if active_only:
            stmt = stmt.where(m.Tier.active.is_(True))
        async with info.context.db() as session:
            return list(await session.scalars(stmt))

    @strawberry.field(permission_classes=[allow(*STAFF)], description="Customers per tier.")
    async def tier_distribution(self, info: Info) -> list[TierCount]:
        async with info.context.db() as session:
            rows = await service.distribution(session)
        return [TierCount(tier=tier, customers=n) for tier, n in rows]  # type: ignore[arg-type]

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Replay candidate spend/order thresholds over the last `months`; writes nothing.")
    async def simulate_tiers(self, info: Info, input: Annotated[SimulateTiersInput, strawberry.argument(
            description="The period and the candidate tiers.")]) -> TierSimulation:
        if not 1 <= input.months <= 60:
            raise GraphQLError("months must be between 1 and 60", extensions={"code": "BAD_USER_INPUT",
                                                                              "field": "months"})
        if not 1 <= len(input.tiers) <= 20:
            raise GraphQLError("give 1 to 20 tiers", extensions={"code": "BAD_USER_INPUT", "field": "tiers"})
        since = clock.now() - timedelta(days=round(input.months * 30.44))
        stmt = (select(Order.customer_id, func.count(), func.sum(Order.amount - Order.refunded_amount))
                .where(Order.placed_at > since, Order.status != OrderStatus.CANCELLED).group_by(Order.customer_id))
        async with info.context.db() as session:
            rows = (await session.execute(stmt)).all()
        ranked = sorted(input.tiers, key=lambda t: -t.rank)
        counts = {t.name: 0 for t in input.tiers}
        below = 0
        for _, orders, spend in rows:
            reached = next((t for t in ranked if (t.min_spend is None and t.min_orders is None)
                            or (t.min_spend is not None and int(spend or 0) >= t.min_spend)
                            or (t.min_orders is not None and orders >= t.min_orders)), None)
            if reached is None:
                below += 1
            else:
                counts[reached.name] += 1
        distribution = [SimulatedTier(name=t.name, customers=counts[t.name]) for t in sorted(input.tiers,
                                                                                            key=lambda t: t.rank)]
        return TierSimulation(months=input.months, customers=len(rows),
                              distribution=[SimulatedTier(name="(none)", customers=below), *distribution])


@strawberry.type
class TiersMutation:
    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Add a tier to the ladder.")
    async def create_tier(self, info: Info, input: Annotated[TierInput, strawberry.argument(
            description="The tier.")]) -> TierPayload:
        tier, errors = await in_transaction(info, lambda ctx: service.create_tier(ctx, input.data()))
        return TierPayload(tier=tier, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)],
                         description="Change a tier's name, thresholds or benefits.")
    async def update_tier(self, info: Info, input: Annotated[UpdateTierInput, strawberry.argument(
            description="The tier and its new fields.")]) -> TierPayload:
        tier, errors = await in_transaction(
            info, lambda ctx: service.update_tier(ctx, parse_id(input.id, "id", "Tier"), input.tier.data()))
        return TierPayload(tier=tier, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)],
                         description="A manual tier (with its reason) that the periodic review does not undo.")
    async def set_customer_tier(self, info: Info, input: Annotated[SetCustomerTierInput, strawberry.argument(
            description="The customer, the tier, the reason and until when.")]) -> SetCustomerTierPayload:
        async def work(ctx: object) -> int:
            customer_id = parse_id(input.customer_id, "customerId", "Customer")
            tier_id = parse_id(input.tier_id, "tierId", "Tier") if input.tier_id is not None else None
            await service.set_customer_tier(ctx, customer_id, tier_id, input.reason, input.until)  # type: ignore[arg-type]
            return customer_id

        customer_id, errors = await in_transaction(info, work)
        if customer_id is None:
            return SetCustomerTierPayload(tier=None, user_errors=errors)
        from tenure.schema import loaders

        customer = await info.context.loader(loaders.customers_by_id).load(customer_id)
        return SetCustomerTierPayload(tier=await customer_tier(info, customer), user_errors=[])


def contribution() -> SchemaContribution:
    return SchemaContribution(query=TiersQuery, mutation=TiersMutation,
                              extends={"Customer": TierCustomerFields, "Member": TierCustomerFields})
