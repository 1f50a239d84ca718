"""Loyalty's root fields: earn rules and rewards (staff), points changes (staff and
integrations), ``redeemReward`` (members for themselves), the liability report and ``simulateEarnRule``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import clock
from tenure.core.context import ServiceContext
from tenure.core.contributions import SchemaContribution
from tenure.core.errors import UserError as DomainUserError
from tenure.core.models import Role
from tenure.plugins.loyalty import ledger, reports, rules, service
from tenure.plugins.loyalty import models as m
from tenure.plugins.loyalty.types import (
    EarnRule,
    EarnSimulation,
    LoyaltyCustomerFields,
    LoyaltyMemberFields,
    PointsEntry,
    PointsLiability,
    Reward,
)
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, EVERYONE, STAFF, allow
from tenure.schema.relay import to_global_id
from tenure.schema.types.common import USER_ERRORS, Long, Money, UserError


@strawberry.input(description="An earn rule. kind base: `points` per `perAmount` minor units of `currency`; "
                              "multiplier: `percent`, limited by `tag`, line `category` and/or `startsAt`-`endsAt`; "
                              "bonus: `points` on `trigger` (first_order, birthday, referral).")
class EarnRuleInput:
    name: str = strawberry.field(description="The rule's name, at most 200 characters.")
    kind: str = strawberry.field(description="What sort of rule: `base`, `multiplier` or `bonus`.")
    points: int = strawberry.field(
        default=0, description="Base: points per perAmount; bonus: the points awarded (1 or more). Unused by "
                               "multipliers.")
    per_amount: int = strawberry.field(
        default=100, description="Base: how many minor units of currency earn `points`; 100 unless given.")
    currency: str | None = strawberry.field(
        default=None, description="Base: the ISO 4217 currency whose orders it applies to; null for the business's "
                                  "currency.")
    percent: int = strawberry.field(default=100, description="Multiplier: 100 is no change, 200 doubles, 0 to 10000.")
    tag: str | None = strawberry.field(
        default=None, description="Multiplier: only for customers with this tag; null for everyone.")
    category: str | None = strawberry.field(
        default=None, description="Multiplier: only for order lines of this product category; null for every line.")
    trigger: str | None = strawberry.field(default=None, description="Bonus: `first_order`, `birthday` or `referral`.")
    starts_at: datetime | None = strawberry.field(
        default=None, description="Multiplier: when it starts to apply, with a time zone; null for at once.")
    ends_at: datetime | None = strawberry.field(
        default=None, description="Multiplier: when it stops applying, after startsAt; null for never.")
    active: bool = strawberry.field(default=True, description="Whether the rule applies to new orders.")

    def data(self) -> rules.EarnRuleData:
        return rules.EarnRuleData(**{k: getattr(self, k) for k in rules.EarnRuleData.__dataclass_fields__})


@strawberry.input(description="An earn rule and its new fields.")
class UpdateEarnRuleInput:
    id: strawberry.ID = strawberry.field(description="The rule's id.")
    rule: EarnRuleInput = strawberry.field(description="Every field of the rule, as it is to be.")


@strawberry.type(description="The result of createEarnRule or updateEarnRule.")
class EarnRulePayload:
    rule: EarnRule | None = strawberry.field(description="The rule as saved; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="A reward of the catalogue.")
class RewardInput:
    name: str = strawberry.field(description="The reward's name, as shown to members.")
    cost: int = strawberry.field(description="What it costs, in points.")
    description: str = strawberry.field(default="", description="What the member gets, in words.")
    stock: int | None = strawberry.field(default=None, description="How many there are to give; null for unlimited.")
    per_customer_limit: int | None = strawberry.field(
        default=None, description="How many times one customer may redeem it; null for no limit.")
    active: bool = strawberry.field(default=True, description="False withdraws it: it can no longer be redeemed.")

    def data(self) -> service.RewardData:
        return service.RewardData(name=self.name, cost=self.cost, description=self.description, stock=self.stock,
                                  per_customer_limit=self.per_customer_limit, active=self.active)


@strawberry.input(description="A reward and its new fields.")
class UpdateRewardInput:
    id: strawberry.ID = strawberry.field(description="The reward's id.")
    reward: RewardInput = strawberry.field(description="Every field of the reward, as it is to be.")


@strawberry.type(description="The result of createReward or updateReward.")
class RewardPayload:
    reward: Reward | None = strawberry.field(description="The reward as saved; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Points to spend.")
class RedeemPointsInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer whose points to spend.")
    points: int = strawberry.field(description="How many points, 1 or more.")
    reason: str = strawberry.field(description="What they were spent on, for the ledger.")
    idempotency_key: str | None = strawberry.field(default=None, description="The same key twice spends once.")


@strawberry.input(description="A manual correction of a customer's points.")
class AdjustPointsInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer.")
    points: int = strawberry.field(description="Positive adds, negative takes away (never below zero).")
    reason: str = strawberry.field(description="Why, for the ledger and the audit.")
    qualifying: bool = strawberry.field(default=False, description="Whether added points count toward a tier.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key twice adjusts once; null for no such protection.")


@strawberry.input(description="Members leave out customerId (they redeem for themselves).")
class RedeemRewardInput:
    reward_id: strawberry.ID = strawberry.field(description="The reward's id.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer who redeems it (staff and integrations); members leave it out.")
    idempotency_key: str | None = strawberry.field(
        default=None, description="The same key twice redeems once; null for no such protection.")


@strawberry.input(description="A referral: who referred whom.")
class AwardReferralInput:
    referrer_id: strawberry.ID = strawberry.field(description="The customer who referred someone: they get the bonus.")
    referred_customer_id: strawberry.ID = strawberry.field(
        description="The customer they referred; each earns the bonus once.")


@strawberry.type(description="The result of redeemPoints, adjustPoints, redeemReward or awardReferral.")
class PointsEntryPayload:
    entry: PointsEntry | None = strawberry.field(description="The ledger entry written; null when refused.")
    balance: int | None = strawberry.field(description="The customer's spendable balance after the change.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="A candidate earn rule to replay over past orders.")
class SimulateEarnRuleInput:
    months: int = strawberry.field(default=12, description="How many months of past orders to replay; 12 unless given.")
    rule: EarnRuleInput = strawberry.field(description="The candidate rule.")


async def _entry_payload(info: Info, work: object) -> PointsEntryPayload:
    async def run(ctx: ServiceContext) -> tuple[m.Entry, int]:
        entry = await work(ctx)  # type: ignore[operator]
        account = ledger.held_account(ctx, entry.customer_id) or await ctx.session.get(m.Account, entry.customer_id)
        return entry, account.balance if account else 0

    result, errors = await in_transaction(info, run)
    entry, balance = result if result else (None, None)
    return PointsEntryPayload(entry=entry, balance=balance, user_errors=errors)  # type: ignore[arg-type]


@strawberry.type
class LoyaltyQuery:
    @strawberry.field(permission_classes=[allow(*STAFF)], description="Earn rules, newest first.")
    async def earn_rules(self, info: Info, active_only: Annotated[bool, strawberry.argument(
            description="True leaves out rules switched off.")] = False) -> list[EarnRule]:
        stmt = select(m.EarnRule).order_by(m.EarnRule.id.desc()).limit(500)
        if active_only:
            stmt = stmt.where(m.EarnRule.active.is_(True))
        async with info.context.db() as session:
            return list(await session.scalars(stmt))

    @strawberry.field(permission_classes=[allow(*EVERYONE)], description="The rewards catalogue, cheapest first.")
    async def rewards(self, info: Info, active_only: Annotated[bool, strawberry.argument(
            description="False includes withdrawn rewards.")] = True) -> list[Reward]:
        stmt = select(m.Reward).order_by(m.Reward.cost, m.Reward.id).limit(500)
        if active_only or info.context.principal.role == Role.MEMBER:
            stmt = stmt.where(m.Reward.active.is_(True))
        async with info.context.db() as session:
            return list(await session.scalars(stmt))

    @strawberry.field(permission_classes=[allow(*STAFF)], description="Points issued, redeemed, expired, outstanding.")
    async def points_liability(self, info: Info) -> PointsLiability:
        async with info.context.db() as session:
            found = await reports.liability(session, info.context.settings)
        value = Money(amount=Long(found.outstanding_value), currency=info.context.settings.currency)
        return PointsLiability(**{**found.__dict__, "outstanding_value": value})

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Replay a candidate earn rule over the last `months` of orders; writes nothing.")
    async def simulate_earn_rule(self, info: Info, input: Annotated[SimulateEarnRuleInput, strawberry.argument(
            description="The candidate rule and the period.")]) -> EarnSimulation:
        async with info.context.transaction() as ctx:
            try:
                candidate = m.EarnRule(**rules.clean_rule(ctx, input.rule.data()), created_at=ctx.now())
                found = await reports.simulate_earn_rule(ctx.session, ctx.settings, clock.now(), input.months,
                                                         candidate)
            except DomainUserError as error:
                raise GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field}) \
                    from None
            await ctx.session.rollback()
        value = Money(amount=Long(found.liability_value), currency=info.context.settings.currency)
        return EarnSimulation(**{**found.__dict__, "liability_value": value})


def _customer_for(info: Info, given: strawberry.ID | None) -> int | None:
    """A member's own id (another customer's is refused); ``None`` for other callers."""
    principal = info.context.principal
    if principal.role != Role.MEMBER:
        return None
    own = int(principal.customer_id)
    if given is not None and str(given) not in (str(own), to_global_id("Customer", own)):
        raise GraphQLError("a member can redeem only for themselves", extensions={"code": "FORBIDDEN"})
    return own


def _given(given: strawberry.ID | None) -> int:
    if given is None:
        raise DomainUserError("required for staff and integration keys", "customerId", "required")
    return parse_id(given, "customerId", "Customer")


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(permission_classes=[allow(*STAFF)],
                         description="Add an earn rule; it applies to orders recorded from now on.")
    async def create_earn_rule(self, info: Info, input: Annotated[EarnRuleInput, strawberry.argument(
            description="The rule.")]) -> EarnRulePayload:
        rule, errors = await in_transaction(info, lambda ctx: rules.create_rule(ctx, input.data()))
        return EarnRulePayload(rule=rule, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)],
                         description="Change an earn rule; orders recorded before keep their points.")
    async def update_earn_rule(self, info: Info, input: Annotated[UpdateEarnRuleInput, strawberry.argument(
            description="The rule and its new fields.")]) -> EarnRulePayload:
        rule, errors = await in_transaction(
            info, lambda ctx: rules.update_rule(ctx, parse_id(input.id, "id", "EarnRule"), input.rule.data()))
        return EarnRulePayload(rule=rule, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Add a reward to the catalogue.")
    async def create_reward(self, info: Info, input: Annotated[RewardInput, strawberry.argument(
            description="The reward.")]) -> RewardPayload:
        reward, errors = await in_transaction(info, lambda ctx: service.create_reward(ctx, input.data()))
        return RewardPayload(reward=reward, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Change a reward of the catalogue.")
    async def update_reward(self, info: Info, input: Annotated[UpdateRewardInput, strawberry.argument(
            description="The reward and its new fields.")]) -> RewardPayload:
        reward, errors = await in_transaction(
            info, lambda ctx: service.update_reward(ctx, parse_id(input.id, "id", "Reward"), input.reward.data()))
        return RewardPayload(reward=reward, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="points:write")],
                         description="Spend points; more than the balance is a userError and spends nothing.")
    async def redeem_points(self, info: Info, input: Annotated[RedeemPointsInput, strawberry.argument(
            description="The customer, the points and the reason.")]) -> PointsEntryPayload:
        return await _entry_payload(info, lambda ctx: service.redeem_points(
            ctx, parse_id(input.customer_id, "customerId", "Customer"), input.points, input.reason,
            input.idempotency_key))

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="A manual correction, with its reason.")
    async def adjust_points(self, info: Info, input: Annotated[AdjustPointsInput, strawberry.argument(
            description="The customer, the points and the reason.")]) -> PointsEntryPayload:
        return await _entry_payload(info, lambda ctx: service.adjust_points(
            ctx, parse_id(input.customer_id, "customerId", "Customer"), input.points, input.reason,
            input.idempotency_key, input.qualifying))

    @strawberry.mutation(permission_classes=[allow(*EVERYONE, scope="points:write")],
                         description="Spend points on a reward: members for themselves, staff for any customer.")
    async def redeem_reward(self, info: Info, input: Annotated[RedeemRewardInput, strawberry.argument(
            description="The reward, and the customer when staff redeem for one.")]) -> PointsEntryPayload:
        member = _customer_for(info, input.customer_id)
        return await _entry_payload(info, lambda ctx: service.redeem_reward(
            ctx, member if member is not None else _given(input.customer_id),
            parse_id(input.reward_id, "rewardId", "Reward"), input.idempotency_key))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="points:write")],
                         description="The referral bonus for the referrer, once per referred customer.")
    async def award_referral(self, info: Info, input: Annotated[AwardReferralInput, strawberry.argument(
            description="The referrer and the customer they referred.")]) -> PointsEntryPayload:
        return await _entry_payload(info, lambda ctx: service.award_referral(
            ctx, parse_id(input.referrer_id, "referrerId", "Customer"),
            parse_id(input.referred_customer_id, "referredCustomerId", "Customer")))


def contribution() -> SchemaContribution:
    return SchemaContribution(query=LoyaltyQuery, mutation=LoyaltyMutation,
                              extends={"Customer": LoyaltyCustomerFields, "Member": LoyaltyMemberFields})
