"""The loyalty plugin's GraphQL types, and the fields it adds to ``Customer`` and ``Member``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from tenure.core import models
from tenure.core.clock import as_utc
from tenure.plugins.loyalty import loaders
from tenure.plugins.loyalty import models as m
from tenure.schema import loaders as core_loaders
from tenure.schema.permissions import EVERYONE, STAFF, allow
from tenure.schema.relay import (
    After,
    Before,
    Connection,
    Edge,
    First,
    Last,
    Node,
    PageInfo,
    Window,
    check_first,
    id_of,
    node,
    paginate,
    to_global_id,
)
from tenure.schema.types.common import Money


@strawberry.enum(description="What a ledger entry did.")
class PointsEntryKind(Enum):
    EARN = strawberry.enum_value("earn", description="Points earned (by an order, a bonus, a referral).")
    REDEEM = strawberry.enum_value("redeem", description="Points spent on a reward or an order.")
    EXPIRE = strawberry.enum_value("expire", description="Points that ran out unspent.")
    ADJUST = strawberry.enum_value("adjust", description="Points added or taken away by hand, with a reason.")
    REVERSE = strawberry.enum_value(
        "reverse", description="Points taken back because their order was refunded or cancelled.")


@strawberry.type(description="Points that expire on a day (unless spent first).")
class ExpiringPoints:
    points: int = strawberry.field(description="How many points expire.")
    at: datetime = strawberry.field(description="When they expire.")


@strawberry.type(description="A customer's points: only `balance` can be spent.")
class PointsSummary:
    balance: int = strawberry.field(description="Spendable now: the sum of the posted ledger entries.")
    pending: int = strawberry.field(description="Earned by orders still inside their return window.")
    lifetime_earned: int = strawberry.field(description="Every point ever earned, spent or not.")
    qualifying: int = strawberry.field(description="Points that count toward a tier over the qualifying window; "
                                                   "spending never lowers them.")
    shortfall: int = strawberry.field(description="Points of refunded orders that had been spent; new points "
                                                  "pay them off first.")
    expiring_soon: list[ExpiringPoints] = strawberry.field(description="Points due to expire soon, soonest first.")


@strawberry.type(description="Part of an earlier lot that a spend, expiry or reversal used.")
class PointsDraw:
    lot_id: strawberry.ID = strawberry.field(description="The global id of the lot (a `PointsEntry`) drawn from.")
    points: int = strawberry.field(description="How many points were taken from that lot.")


@strawberry.type(description="One line of the points ledger (append-only).")
@node(m.Entry, allow(*EVERYONE, scope="customers:read"), owner=lambda entry: entry.customer_id)
class PointsEntry(Node):
    points: int = strawberry.field(description="Positive adds a lot, negative takes from earlier lots.")
    qualifying: int = strawberry.field(description="The points of this entry that count toward a tier.")
    pending: bool = strawberry.field(
        description="True while the points wait out the order's return window: not spendable yet.")
    remaining: int = strawberry.field(description="For a lot: what is left of it to spend.")
    shortfall: int = strawberry.field(description="For a reversal: what could not be taken back (spent already).")
    reason: str = strawberry.field(description="Why, in words (for an adjustment, the staff member's reason).")
    source: str = strawberry.field(
        description="What caused it: order, referral, birthday, manual, reward, expiry or a plugin's name.")
    created_at: datetime = strawberry.field(description="When the entry was written.")
    available_at: datetime | None = strawberry.field(
        description="When pending points become spendable; null once they are.")
    expires_at: datetime | None = strawberry.field(
        description="When what is left of this lot expires; null for never, and for entries that take points.")

    @strawberry.field(description="What the entry did.")
    def kind(self: m.Entry) -> PointsEntryKind:
        return PointsEntryKind(self.kind)

    # No link to the order: members read their ledger, and an Order leads on to staff-only fields.
    order_id: strawberry.ID | None = id_of("Order", "order_id", description="The global id of the order that "
                                           "earned or reversed these points, when one did.")
    reward_id: strawberry.ID | None = id_of(
        "Reward", "reward_id", deprecation_reason="Use `reward`, the reward itself.",
        description="The global id of the reward these points were spent on, when they were.")

    @strawberry.field(description="The reward these points were spent on, when they were.")
    async def reward(self: m.Entry, info: Info) -> Reward | None:
        if self.reward_id is None:
            return None
        return await info.context.loader(core_loaders.by_id_cached(m.Reward)).load(self.reward_id)

    @strawberry.field(description="Which earlier lots this entry drew from, oldest first: where the points went.")
    async def draws(self: m.Entry, info: Info) -> list[PointsDraw]:
        rows = await info.context.loader(loaders.draws).load(self.id)
        return [PointsDraw(lot_id=to_global_id("PointsEntry", r.lot_id), points=r.points) for r in rows]


@strawberry.type(description="Something a member can spend points on.")
@node(m.Reward, allow(*EVERYONE))
class Reward(Node):
    name: str = strawberry.field(description="The reward's name, as shown to members.")
    description: str = strawberry.field(description="What the member gets, in words.")
    cost: int = strawberry.field(description="Points.")
    stock: int | None = strawberry.field(description="Left to give; null is unlimited.")
    per_customer_limit: int | None = strawberry.field(
        description="How many times one customer may redeem it; null for no limit.")
    active: bool = strawberry.field(description="False once withdrawn: it can no longer be redeemed.")


@strawberry.type(description="How orders earn points: a base rate, a multiplier or a fixed bonus.")
@node(m.EarnRule, allow(*STAFF))
class EarnRule(Node):
    name: str = strawberry.field(description="The rule's name.")
    kind: str = strawberry.field(description="What sort of rule: `base`, `multiplier` or `bonus`.")
    points: int = strawberry.field(
        description="Base rules: points per `perAmount`; bonuses: the points awarded; 0 for multipliers.")
    per_amount: int = strawberry.field(description="Base rules: `points` per this many minor units.")
    currency: str | None = strawberry.field(
        description="Base rules: the ISO 4217 currency whose orders it applies to; null otherwise.")
    percent: int = strawberry.field(description="Multipliers: 100 is no change, 200 doubles.")
    tag: str | None = strawberry.field(description="Multipliers: only for customers with this tag; null for everyone.")
    category: str | None = strawberry.field(
        description="Multipliers: only for order lines of this product category; null for every line.")
    trigger: str | None = strawberry.field(description="Bonuses: first_order, birthday or referral.")
    starts_at: datetime | None = strawberry.field(
        description="Multipliers: when the rule starts to apply; null for from the start.")
    ends_at: datetime | None = strawberry.field(description="Multipliers: when it stops applying; null for never.")
    active: bool = strawberry.field(description="Whether the rule applies to new orders.")


async def points_summary(info: Info, customer_id: int) -> PointsSummary:
    account = await info.context.loader(loaders.accounts).load(customer_id)
    soon = await info.context.loader(loaders.expiring).load(customer_id)
    qualifying = await info.context.loader(loaders.qualifying).load(customer_id)
    return PointsSummary(
        balance=account.balance if account else 0, pending=account.pending if account else 0,
        lifetime_earned=account.lifetime_earned if account else 0, qualifying=qualifying,
        shortfall=account.shortfall if account else 0,
        expiring_soon=[ExpiringPoints(points=p, at=at) for p, at in soon])


async def ledger_page(info: Info, customer_id: int, window: Window) -> Connection[PointsEntry]:
    context = info.context
    first = check_first(window.first, context.settings.max_page_size)
    counter = context.loader(core_loaders.count_per_customer(m.Entry), key=(m.Entry, "count"))
    if window.plain:
        load = context.loader(core_loaders.latest_per_customer(m.Entry, m.Entry.created_at, first),  # type: ignore[arg-type]
                              key=(m.Entry, "latest", first))
        rows = await load.load(customer_id)
        edges = [Edge(node=r, key=[as_utc(r.created_at), r.id]) for r in rows[:first]]
        return Connection(edges=edges, count=lambda: counter.load(customer_id),
                          page_info=PageInfo(has_next_page=len(rows) > first, has_previous_page=False,
                                             start_cursor=edges[0].encoded() if edges else None,
                                             end_cursor=edges[-1].encoded() if edges else None))

    async def run(stmt: object) -> list[object]:
        async with context.db() as session:
            return list((await session.execute(stmt)).all())

    from sqlalchemy import select

    return await paginate(run, select(m.Entry).where(m.Entry.customer_id == customer_id),
                          [(m.Entry.created_at, True), (m.Entry.id, True)], first=first, after=window.after,
                          last=window.last, before=window.before,
                          cap=context.settings.max_page_size, count=lambda: counter.load(customer_id))


@strawberry.type
class LoyaltyCustomerFields:
    @strawberry.field(description="Points balance, pending and expiring points (loyalty plugin).")
    async def points(self: models.Customer, info: Info) -> PointsSummary:
        return await points_summary(info, self.id)

    @strawberry.field(description="The points ledger, newest first.")
    async def points_ledger(self: models.Customer, info: Info, first: First = 20, after: After = None,
                            last: Last = None, before: Before = None) -> Connection[PointsEntry]:
        return await ledger_page(info, self.id, Window(first, after, last, before))


@strawberry.type
class LoyaltyMemberFields(LoyaltyCustomerFields):
    @strawberry.field(description="Rewards in stock that the member's balance pays for now.")
    async def affordable_rewards(self: models.Customer, info: Info) -> list[Reward]:
        return await info.context.loader(loaders.affordable_rewards).load(self.id)


@strawberry.type(description="Points issued and where they went; outstanding points are the liability.")
class PointsLiability:
    issued: int = strawberry.field(description="Points ever earned.")
    redeemed: int = strawberry.field(description="Points spent on rewards or orders.")
    expired: int = strawberry.field(description="Points that expired unspent.")
    reversed: int = strawberry.field(description="Taken back from refunded or cancelled orders.")
    adjusted_down: int = strawberry.field(description="Points taken away by hand.")
    outstanding: int = strawberry.field(description="Spendable points held by customers.")
    pending: int = strawberry.field(description="Points earned but still inside their order's return window.")
    shortfall: int = strawberry.field(description="Points of refunds that had been spent, still owed.")
    outstanding_value: Money = strawberry.field(
        description="What the outstanding points are worth, at the configured value of a point.")


@strawberry.type(description="What a candidate earn rule would have done over past orders (nothing written).")
class EarnSimulation:
    months: int = strawberry.field(description="How many months of orders were replayed.")
    orders: int = strawberry.field(description="How many orders that was.")
    points_issued: int = strawberry.field(description="Points the candidate rule would have issued.")
    points_reversed: int = strawberry.field(description="Of those, points refunds would have taken back.")
    points_expired: int = strawberry.field(description="Of those, points that would have expired by now.")
    liability: int = strawberry.field(description="Points that would be outstanding now.")
    liability_value: Money = strawberry.field(description="What those outstanding points would be worth.")
    current_rules_points: int = strawberry.field(description="What the rules in force gave the same orders.")
