"""The tiers of ``tenure demo``: Member, Silver, Gold and Platinum, defined before the first
order, so members move up as their orders come in (the plugin's handler does it)."""

from __future__ import annotations

from tenure.core.context import ServiceContext
from tenure.core.contributions import DemoData
from tenure.plugins.tiers import service

# (name, rank, min spend in minor units over the tier window, min orders, points %, discount %, perks)
TIERS = (
    ("Member", 0, None, None, 100, 0, ["Birthday treat"]),
    ("Silver", 10, 150_00, 6, 110, 0, ["Birthday treat", "Free shipping over 30"]),
    ("Gold", 20, 350_00, 12, 125, 5, ["Birthday treat", "Free shipping", "Early access to new beans"]),
    ("Platinum", 30, 700_00, None, 150, 10,
     ["Birthday treat", "Free shipping", "Early access to new beans", "A brewing class a year"]),
)


async def setup(ctx: ServiceContext) -> None:
    if await service.active_tiers(ctx):
        return
    for name, rank, spend, orders, points, discount, perks in TIERS:
        await service.create_tier(ctx, service.TierData(
            name=name, rank=rank, min_spend=spend, min_orders=orders, points_multiplier=points,
            discount_percent=discount, perks=list(perks)))


DEMO = DemoData(setup=setup)
