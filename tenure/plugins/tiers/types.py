"""The tiers plugin's GraphQL types and the ``tier`` field on ``Customer`` and ``Member``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import clock, models
from tenure.core.money import money_text
from tenure.core.reads import Read
from tenure.plugins.tiers import models as m
from tenure.plugins.tiers import qualify
from tenure.schema.context import Context
from tenure.schema.loaders import fetch


@strawberry.type(description="What a tier gives its members.")
class TierBenefits:
    points_multiplier: int = strawberry.field(description="Percent of the usual points (200 doubles them).")
    discount_percent: int
    perks: list[str]


@strawberry.type(description="A membership level and what reaches it.")
class Tier:
    id: strawberry.ID
    name: str
    rank: int
    min_spend: int | None = strawberry.field(description="Minor units, net of refunds, over windowDays.")
    min_orders: int | None
    min_points: int | None = strawberry.field(description="Qualifying points over windowDays (loyalty plugin).")
    window_days: int
    require_all: bool = strawberry.field(description="All criteria set must be met (otherwise any one).")
    grace_days: int
    active: bool

    @strawberry.field
    def benefits(self: m.Tier) -> TierBenefits:
        return TierBenefits(points_multiplier=self.points_multiplier, discount_percent=self.discount_percent,
                            perks=list(self.perks))


@strawberry.type(description="What is left to reach the next tier (null where that tier sets no such bar).")
class TierProgress:
    next_tier: Tier | None
    spend_to_go: int | None
    orders_to_go: int | None
    points_to_go: int | None


@strawberry.type(description="What one more order would do.")
class WhatIf:
    tier: Tier | None
    reaches_next_tier: bool
    message: str


@strawberry.type(description="A customer's tier, since when, and the way up.")
class CustomerTier:
    tier: Tier | None
    since: datetime | None
    expires_at: datetime | None = strawberry.field(
        description="When the tier stops being reached if no order comes (or an override ends).")
    will_downgrade_on: datetime | None = strawberry.field(description="When the member moves down, grace included.")
    manual: bool = strawberry.field(description="Set by staff (an override the review leaves alone).")
    reason: str
    progress: TierProgress
    customer_id: strawberry.Private[int]
    figures: strawberry.Private[qualify.Figures]
    tiers: strawberry.Private[list[m.Tier]]

    @strawberry.field(description="What one more order of `spend` minor units now would do.")
    def what_if(self, info: Info, spend: int) -> WhatIf:
        now = clock.now()
        currency = info.context.settings.currency
        after = qualify.qualified(self.tiers, self.figures.with_order(now, max(0, spend)), now)
        current = self.tier
        up = after is not None and (current is None or after.rank > current.rank)
        if up:
            message = f"One more order of {money_text(spend, currency)} reaches {after.name}"  # type: ignore[union-attr]
        else:
            nxt = qualify.next_tier(self.tiers, current)  # type: ignore[arg-type]
            if nxt is None:
                message = f"You are at the top tier, {current.name}" if current else "There are no tiers"
            else:
                left = qualify.to_go(nxt, self.figures.with_order(now, max(0, spend)), now)
                needs = [f"{money_text(left['spend'], currency)} more spend" if left["spend"] else "",
                         f"{left['orders']} more orders" if left["orders"] else "",
                         f"{left['points']} more points" if left["points"] else ""]
                message = (f"An order of {money_text(spend, currency)} leaves {nxt.name} "
                           f"{' or '.join(n for n in needs if n)} away")
        return WhatIf(tier=after if up else current, reaches_next_tier=up, message=message)  # type: ignore[arg-type]


_ACTIVE_TIERS = Read(lambda _keys: select(m.Tier).where(m.Tier.active.is_(True)).order_by(m.Tier.rank))
_MEMBERSHIPS = Read(lambda keys: select(m.Membership).where(keys(m.Membership.customer_id)))


async def active_tiers(context: Context, keys: Sequence[int]) -> list[list[m.Tier]]:
    rows = await fetch(context, _ACTIVE_TIERS, ())
    return [rows for _ in keys]


async def memberships(context: Context, keys: Sequence[int]) -> list[m.Membership | None]:
    rows = {r.customer_id: r for r in await fetch(context, _MEMBERSHIPS, keys)}
    return [rows.get(k) for k in keys]


_RECENT_ORDERS = Read(qualify.recent_orders)


async def figures(context: Context, keys: Sequence[int]) -> list[qualify.Figures]:
    tiers = await context.loader(active_tiers).load(0)
    now = clock.now()
    orders = await fetch(context, _RECENT_ORDERS, keys, since=qualify.window_start(tiers, now)) if tiers else []
    async with context.db() as session:
        found = await qualify.figures_for(session, context.plugins, list(keys), tiers, now, orders=orders)
    return [found.get(k) or qualify.Figures() for k in keys]


async def customer_tier(info: Info, customer: models.Customer) -> CustomerTier:
    context = info.context
    tiers = await context.loader(active_tiers).load(0)
    membership = await context.loader(memberships).load(customer.id)
    found = await context.loader(figures).load(customer.id)
    now = clock.now()
    current = next((t for t in tiers if membership and t.id == membership.tier_id), None)
    if membership is None:
        starting = tiers[0] if tiers and not qualify.criteria(tiers[0]) else None
        current = starting
    nxt = qualify.next_tier(tiers, current)
    left = qualify.to_go(nxt, found, now) if nxt else {"spend": None, "orders": None, "points": None}
    downgrade = membership.downgrade_on if membership else None
    if membership is not None and downgrade is None and membership.expires_at and current is not None:
        lower = [t for t in tiers if t.rank < current.rank]
        if lower or qualify.criteria(current):
            downgrade = membership.expires_at + timedelta(days=0 if membership.manual else current.grace_days)
    return CustomerTier(
        tier=current, since=membership.since if membership else (customer.created_at if current else None),
        expires_at=membership.expires_at if membership else None, will_downgrade_on=downgrade,
        manual=bool(membership and membership.manual), reason=membership.reason if membership else "",
        progress=TierProgress(next_tier=nxt, spend_to_go=left["spend"], orders_to_go=left["orders"],  # type: ignore[arg-type]
                              points_to_go=left["points"]),
        customer_id=customer.id, figures=found, tiers=tiers)


@strawberry.type
class TierCustomerFields:
    @strawberry.field(description="The customer's membership tier (tiers plugin).")
    async def tier(self: models.Customer, info: Info) -> CustomerTier:
        return await customer_tier(info, self)


@strawberry.type(description="How many customers each tier holds (tier null: none).")
class TierCount:
    tier: Tier | None
    customers: int


@strawberry.type(description="A candidate threshold's tier and how many customers it would hold.")
class SimulatedTier:
    name: str
    customers: int


@strawberry.type(description="What candidate thresholds would give, replayed over recent orders (nothing written).")
class TierSimulation:
    months: int
    customers: int = strawberry.field(description="Customers with an order in the period.")
    distribution: list[SimulatedTier]
