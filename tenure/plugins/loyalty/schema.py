"""Loyalty's root fields: earn rules and rewards (staff), points changes (staff and
integrations), ``redeemReward`` (members for themselves), the liability report and ``simulateEarnRule``."""

from __future__ import annotations

from datetime import datetime

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
from tenure.schema.types.common import Long, Money, UserError


@strawberry.input(description="An earn rule. kind base: `points` per `perAmount` minor units of `currency`; "
                              "multiplier: `percent`, limited by `tag`, line `category` and/or `startsAt`-`endsAt`; "
                              "bonus: `points` on `trigger` (first_order, birthday, referral).")
class EarnRuleInput:
    name: str
    kind: str
    points: int = 0
    per_amount: int = 100
    currency: str | None = None
    percent: int = 100
    tag: str | None = None
    category: str | None = None
    trigger: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True

    def data(self) -> rules.EarnRuleData:
        return rules.EarnRuleData(**{k: getattr(self, k) for k in rules.EarnRuleData.__dataclass_fields__})


@strawberry.input
class UpdateEarnRuleInput:
    id: strawberry.ID
    rule: EarnRuleInput


@strawberry.type
class EarnRulePayload:
    rule: EarnRule | None
    user_errors: list[UserError]


@strawberry.input
class RewardInput:
    name: str
    cost: int
    description: str = ""
    stock: int | None = None
    per_customer_limit: int | None = None
    active: bool = True

    def data(self) -> service.RewardData:
        return service.RewardData(name=self.name, cost=self.cost, description=self.description, stock=self.stock,
                                  per_customer_limit=self.per_customer_limit, active=self.active)


@strawberry.input
class UpdateRewardInput:
    id: strawberry.ID
    reward: RewardInput


@strawberry.type
class RewardPayload:
    reward: Reward | None
    user_errors: list[UserError]


@strawberry.input
class RedeemPointsInput:
    customer_id: strawberry.ID
    points: int
    reason: str
    idempotency_key: str | None = strawberry.field(default=None, description="The same key twice spends once.")


@strawberry.input
class AdjustPointsInput:
    customer_id: strawberry.ID
    points: int = strawberry.field(description="Positive adds, negative takes away (never below zero).")
    reason: str
    qualifying: bool = strawberry.field(default=False, description="Whether added points count toward a tier.")
    idempotency_key: str | None = None


@strawberry.input(description="Members leave out customerId (they redeem for themselves).")
class RedeemRewardInput:
    reward_id: strawberry.ID
    customer_id: strawberry.ID | None = None
    idempotency_key: str | None = None


@strawberry.input
class AwardReferralInput:
    referrer_id: strawberry.ID
    referred_customer_id: strawberry.ID


@strawberry.type
class PointsEntryPayload:
    entry: PointsEntry | None
    balance: int | None = strawberry.field(description="The customer's spendable balance after the change.")
    user_errors: list[UserError]


@strawberry.input
class SimulateEarnRuleInput:
    months: int = 12
    rule: EarnRuleInput


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
    async def earn_rules(self, info: Info, active_only: bool = False) -> list[EarnRule]:
        stmt = select(m.EarnRule).order_by(m.EarnRule.id.desc()).limit(500)
        if active_only:
            stmt = stmt.where(m.EarnRule.active.is_(True))
        async with info.context.db() as session:
            return list(await session.scalars(stmt))

    @strawberry.field(permission_classes=[allow(*EVERYONE)], description="The rewards catalogue, cheapest first.")
    async def rewards(self, info: Info, active_only: bool = True) -> list[Reward]:
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
    async def simulate_earn_rule(self, info: Info, input: SimulateEarnRuleInput) -> EarnSimulation:
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
    if given is not None and str(given) != str(own):
        raise GraphQLError("a member can redeem only for themselves", extensions={"code": "FORBIDDEN"})
    return own


def _given(given: strawberry.ID | None) -> int:
    if given is None:
        raise DomainUserError("required for staff and integration keys", "customerId", "required")
    return parse_id(given, "customerId")


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def create_earn_rule(self, info: Info, input: EarnRuleInput) -> EarnRulePayload:
        rule, errors = await in_transaction(info, lambda ctx: rules.create_rule(ctx, input.data()))
        return EarnRulePayload(rule=rule, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def update_earn_rule(self, info: Info, input: UpdateEarnRuleInput) -> EarnRulePayload:
        rule, errors = await in_transaction(
            info, lambda ctx: rules.update_rule(ctx, parse_id(input.id, "id"), input.rule.data()))
        return EarnRulePayload(rule=rule, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def create_reward(self, info: Info, input: RewardInput) -> RewardPayload:
        reward, errors = await in_transaction(info, lambda ctx: service.create_reward(ctx, input.data()))
        return RewardPayload(reward=reward, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def update_reward(self, info: Info, input: UpdateRewardInput) -> RewardPayload:
        reward, errors = await in_transaction(
            info, lambda ctx: service.update_reward(ctx, parse_id(input.id, "id"), input.reward.data()))
        return RewardPayload(reward=reward, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="points:write")],
                         description="Spend points; more than the balance is a userError and spends nothing.")
    async def redeem_points(self, info: Info, input: RedeemPointsInput) -> PointsEntryPayload:
        return await _entry_payload(info, lambda ctx: service.redeem_points(
            ctx, parse_id(input.customer_id, "customerId"), input.points, input.reason, input.idempotency_key))

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="A manual correction, with its reason.")
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> PointsEntryPayload:
        return await _entry_payload(info, lambda ctx: service.adjust_points(
            ctx, parse_id(input.customer_id, "customerId"), input.points, input.reason, input.idempotency_key,
            input.qualifying))

    @strawberry.mutation(permission_classes=[allow(*EVERYONE, scope="points:write")],
                         description="Spend points on a reward: members for themselves, staff for any customer.")
    async def redeem_reward(self, info: Info, input: RedeemRewardInput) -> PointsEntryPayload:
        member = _customer_for(info, input.customer_id)
        return await _entry_payload(info, lambda ctx: service.redeem_reward(
            ctx, member if member is not None else _given(input.customer_id), parse_id(input.reward_id, "rewardId"),
            input.idempotency_key))

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="points:write")],
                         description="The referral bonus for the referrer, once per referred customer.")
    async def award_referral(self, info: Info, input: AwardReferralInput) -> PointsEntryPayload:
        return await _entry_payload(info, lambda ctx: service.award_referral(
            ctx, parse_id(input.referrer_id, "referrerId"), parse_id(input.referred_customer_id, "referredCustomerId")))


def contribution() -> SchemaContribution:
    return SchemaContribution(query=LoyaltyQuery, mutation=LoyaltyMutation,
                              extends={"Customer": LoyaltyCustomerFields, "Member": LoyaltyMemberFields})
