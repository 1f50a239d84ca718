"""The tiers plugin's GraphQL types and the ``tier`` field on ``Customer`` and ``Member``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

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
from tenure.schema.permissions import EVERYONE, allow
from tenure.schema.relay import Node, node


@strawberry.type(description="What a tier gives its members.")
class TierBenefits:
    points_multiplier: int = strawberry.field(description="Percent of the usual points (200 doubles them).")
    discount_percent: int = strawberry.field(
        description="Percent off every order for members of the tier (0 for none).")
    perks: list[str] = strawberry.field(description="Other benefits, in words, as shown to members.")


@strawberry.type(description="A membership level and what reaches it.")
@node(m.Tier, allow(*EVERYONE))
class Tier(Node):
    name: str = strawberry.field(description="The tier's name, as shown to members.")
    rank: int = strawberry.field(description="The tier's place in the ladder: higher is better, unique among tiers.")
    min_spend: int | None = strawberry.field(description="Minor units, net of refunds, over windowDays.")
    min_orders: int | None = strawberry.field(
        description="Orders (not cancelled) over windowDays that reach the tier; null when orders do not count.")
    min_points: int | None = strawberry.field(description="Qualifying points over windowDays (loyalty plugin).")
    window_days: int = strawberry.field(description="How many days back spend, orders and points count.")
    require_all: bool = strawberry.field(description="All criteria set must be met (otherwise any one).")
    grace_days: int = strawberry.field(description="How many days a member keeps the tier after no longer reaching it.")
    active: bool = strawberry.field(description="False once retired: no one new reaches it.")

    @strawberry.field(description="What the tier gives its members.")
    def benefits(self: m.Tier) -> TierBenefits:
        return TierBenefits(points_multiplier=self.points_multiplier, discount_percent=self.discount_percent,
                            perks=list(self.perks))


@strawberry.type(description="What is left to reach the next tier (null where that tier sets no such bar).")
class TierProgress:
    next_tier: Tier | None = strawberry.field(description="The tier above the current one; null at the top.")
    spend_to_go: int | None = strawberry.field(
        description="Spend still needed, in minor units of the business's currency.")
    orders_to_go: int | None = strawberry.field(description="Orders still needed.")
    points_to_go: int | None = strawberry.field(description="Qualifying points still needed (loyalty plugin).")


@strawberry.type(description="What one more order would do.")
class WhatIf:
    tier: Tier | None = strawberry.field(description="The tier the customer would then hold.")
    reaches_next_tier: bool = strawberry.field(description="True when the order would move the customer up.")
    message: str = strawberry.field(description="The same in a sentence fit to show a member.")


@strawberry.type(description="A customer's tier, since when, and the way up.")
class CustomerTier:
    tier: Tier | None = strawberry.field(description="The tier held; null when the customer holds none.")
    since: datetime | None = strawberry.field(description="When the customer reached the tier; null without one.")
    expires_at: datetime | None = strawberry.field(
        description="When the tier stops being reached if no order comes (or an override ends).")
    will_downgrade_on: datetime | None = strawberry.field(description="When the member moves down, grace included.")
    manual: bool = strawberry.field(description="Set by staff (an override the review leaves alone).")
    reason: str = strawberry.field(description="Why the tier was set by hand (for a manual tier); empty otherwise.")
    progress: TierProgress = strawberry.field(description="What is left to reach the next tier.")
    customer_id: strawberry.Private[int]
    figures: strawberry.Private[qualify.Figures]
    tiers: strawberry.Private[list[m.Tier]]

    @strawberry.field(description="What one more order of `spend` minor units now would do.")
    def what_if(self, info: Info, spend: Annotated[int, strawberry.argument(
            description="The order's amount, in minor units of the business's currency.")]) -> WhatIf:
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
    tier: Tier | None = strawberry.field(description="The tier; null for customers in no tier.")
    customers: int = strawberry.field(description="How many customers hold it.")


@strawberry.type(description="A candidate threshold's tier and how many customers it would hold.")
class SimulatedTier:
    name: str = strawberry.field(description="The candidate tier's name; `(none)` for customers below every threshold.")
    customers: int = strawberry.field(description="How many customers it would hold.")


@strawberry.type(description="What candidate thresholds would give, replayed over recent orders (nothing written).")
class TierSimulation:
    months: int = strawberry.field(description="How many months of orders were replayed.")
    customers: int = strawberry.field(description="Customers with an order in the period.")
    distribution: list[SimulatedTier] = strawberry.field(
        description="How many customers each candidate tier would hold, `(none)` first, then lowest rank first.")
