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
from tenure.schema.relay import Connection, Edge, PageInfo, check_first, paginate
from tenure.schema.types.common import Money


@strawberry.enum(description="What a ledger entry did.")
class PointsEntryKind(Enum):
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REVERSE = "reverse"


@strawberry.type(description="Points that expire on a day (unless spent first).")
class ExpiringPoints:
    points: int
    at: datetime


@strawberry.type(description="A customer's points: only `balance` can be spent.")
class PointsSummary:
    balance: int = strawberry.field(description="Spendable now: the sum of the posted ledger entries.")
    pending: int = strawberry.field(description="Earned by orders still inside their return window.")
    lifetime_earned: int
    qualifying: int = strawberry.field(description="Points that count toward a tier over the qualifying window; "
                                                   "spending never lowers them.")
    shortfall: int = strawberry.field(description="Points of refunded orders that had been spent; new points "
                                                  "pay them off first.")
    expiring_soon: list[ExpiringPoints]


@strawberry.type(description="Part of an earlier lot that a spend, expiry or reversal used.")
class PointsDraw:
    lot_id: strawberry.ID
    points: int


@strawberry.type(description="One line of the points ledger (append-only).")
class PointsEntry:
    id: strawberry.ID
    points: int = strawberry.field(description="Positive adds a lot, negative takes from earlier lots.")
    qualifying: int
    pending: bool
    remaining: int = strawberry.field(description="For a lot: what is left of it to spend.")
    shortfall: int = strawberry.field(description="For a reversal: what could not be taken back (spent already).")
    reason: str
    source: str = strawberry.field(description="order, referral, birthday, manual, reward, expiry or a plugin")
    created_at: datetime
    available_at: datetime | None
    expires_at: datetime | None

    @strawberry.field
    def kind(self: m.Entry) -> PointsEntryKind:
        return PointsEntryKind(self.kind)

    @strawberry.field
    def order_id(self: m.Entry) -> strawberry.ID | None:
        return strawberry.ID(str(self.order_id)) if self.order_id else None

    @strawberry.field
    def reward_id(self: m.Entry) -> strawberry.ID | None:
        return strawberry.ID(str(self.reward_id)) if self.reward_id else None

    @strawberry.field(description="Which earlier lots this entry drew from, oldest first: where the points went.")
    async def draws(self: m.Entry, info: Info) -> list[PointsDraw]:
        rows = await info.context.loader(loaders.draws).load(self.id)
        return [PointsDraw(lot_id=strawberry.ID(str(r.lot_id)), points=r.points) for r in rows]


@strawberry.type(description="Something a member can spend points on.")
class Reward:
    id: strawberry.ID
    name: str
    description: str
    cost: int = strawberry.field(description="Points.")
    stock: int | None = strawberry.field(description="Left to give; null is unlimited.")
    per_customer_limit: int | None
    active: bool


@strawberry.type(description="How orders earn points: a base rate, a multiplier or a fixed bonus.")
class EarnRule:
    id: strawberry.ID
    name: str
    kind: str
    points: int
    per_amount: int = strawberry.field(description="Base rules: `points` per this many minor units.")
    currency: str | None
    percent: int = strawberry.field(description="Multipliers: 100 is no change, 200 doubles.")
    tag: str | None
    category: str | None
    trigger: str | None = strawberry.field(description="Bonuses: first_order, birthday or referral.")
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


async def points_summary(info: Info, customer_id: int) -> PointsSummary:
    account = await info.context.loader(loaders.accounts).load(customer_id)
    soon = await info.context.loader(loaders.expiring).load(customer_id)
    qualifying = await info.context.loader(loaders.qualifying).load(customer_id)
    return PointsSummary(
        balance=account.balance if account else 0, pending=account.pending if account else 0,
        lifetime_earned=account.lifetime_earned if account else 0, qualifying=qualifying,
        shortfall=account.shortfall if account else 0,
        expiring_soon=[ExpiringPoints(points=p, at=at) for p, at in soon])


async def ledger_page(info: Info, customer_id: int, first: int, after: str | None) -> Connection[PointsEntry]:
    context = info.context
    first = check_first(first, context.settings.max_page_size)
    counter = context.loader(core_loaders.count_per_customer(m.Entry), key=(m.Entry, "count"))
    if after is None:
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
                          [(m.Entry.created_at, True), (m.Entry.id, True)], first=first, after=after,
                          cap=context.settings.max_page_size, count=lambda: counter.load(customer_id))


@strawberry.type
class LoyaltyCustomerFields:
    @strawberry.field(description="Points balance, pending and expiring points (loyalty plugin).")
    async def points(self: models.Customer, info: Info) -> PointsSummary:
        return await points_summary(info, self.id)

    @strawberry.field(description="The points ledger, newest first.")
    async def points_ledger(self: models.Customer, info: Info, first: int = 20,
                            after: str | None = None) -> Connection[PointsEntry]:
        return await ledger_page(info, self.id, first, after)


@strawberry.type
class LoyaltyMemberFields(LoyaltyCustomerFields):
    @strawberry.field(description="Rewards in stock that the member's balance pays for now.")
    async def affordable_rewards(self: models.Customer, info: Info) -> list[Reward]:
        return await info.context.loader(loaders.affordable_rewards).load(self.id)


@strawberry.type(description="Points issued and where they went; outstanding points are the liability.")
class PointsLiability:
    issued: int
    redeemed: int
    expired: int
    reversed: int = strawberry.field(description="Taken back from refunded or cancelled orders.")
    adjusted_down: int
    outstanding: int = strawberry.field(description="Spendable points held by customers.")
    pending: int
    shortfall: int = strawberry.field(description="Points of refunds that had been spent, still owed.")
    outstanding_value: Money


@strawberry.type(description="What a candidate earn rule would have done over past orders (nothing written).")
class EarnSimulation:
    months: int
    orders: int
    points_issued: int
    points_reversed: int
    points_expired: int
    liability: int
    liability_value: Money
    current_rules_points: int = strawberry.field(description="What the rules in force gave the same orders.")
