"""Who qualifies for which tier: each customer's spend, orders and points over each tier's
rolling window, read for a batch of customers in one statement (plus one per window for
points), and pure functions over those figures that the handlers, the review job, the
GraphQL fields and ``whatIf`` share."""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.db import UTCDateTime
from tenure.core.models import Order, OrderStatus
from tenure.core.reads import Read
from tenure.plugins.tiers.models import Tier


@dataclass
class Figures:
    """A customer's net orders (time, amount) inside the longest window, newest first, and
    qualifying points by window length."""

    orders: list[tuple[datetime, int]] = field(default_factory=list)
    points: dict[int, int] = field(default_factory=dict)
    #: (spend, count) by (now, window days), worked out once: a batch asks for every tier.
    _windows: dict[tuple[datetime, int], tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    def _window(self, now: datetime, days: int) -> tuple[int, int]:
        found = self._windows.get((now, days))
        if found is None:
            since = now - timedelta(days=days)
            # Up to ``now``: history being imported is qualified as of each order's own time,
            # with the customer's later orders (a file out of time order) left out.
            inside = [amount for at, amount in self.orders if since < at <= now]
            found = self._windows[(now, days)] = (sum(inside), len(inside))
        return found

    def spend(self, now: datetime, days: int) -> int:
        return self._window(now, days)[0]

    def count(self, now: datetime, days: int) -> int:
        return self._window(now, days)[1]

    def with_order(self, at: datetime, amount: int) -> Figures:
        return Figures([(at, amount), *self.orders], dict(self.points))


def criteria(tier: Tier) -> list[str]:
    return [name for name in ("min_spend", "min_orders", "min_points") if getattr(tier, name) is not None]


def meets(tier: Tier, figures: Figures, now: datetime) -> bool:
    days = tier.window_days
    return _reaches(tier, figures.spend(now, days), figures.count(now, days), figures.points.get(days, 0))


def _reaches(tier: Tier, spend: int, count: int, points: int) -> bool:
    checks = []
    if tier.min_spend is not None:
        checks.append(spend >= tier.min_spend)
    if tier.min_orders is not None:
        checks.append(count >= tier.min_orders)
    if tier.min_points is not None:
        checks.append(points >= tier.min_points)
    if not checks:
        return True
    return all(checks) if tier.require_all else any(checks)


def qualified(tiers: Sequence[Tier], figures: Figures, now: datetime) -> Tier | None:
    """The highest-ranked tier the figures reach."""
    for tier in sorted(tiers, key=lambda t: -t.rank):
        if meets(tier, figures, now):
            return tier
    return None


def lapses_at(tier: Tier, figures: Figures, now: datetime) -> datetime | None:
    """When the tier stops being reached if no order comes: orders leave the window oldest
    first, and the first departure after which the rest falls short is when (orders of one
    moment leave together, but as the rest only shrinks, taking them one at a time finds the
    same moment). ``None`` when it never lapses (no criterion) or rests on points alone.
    One pass over the window's orders, however many a customer has."""
    if not criteria(tier) or (tier.min_spend is None and tier.min_orders is None):
        return None
    window = timedelta(days=tier.window_days)
    kept = sorted(o for o in figures.orders if now - window < o[0] <= now)
    spend, count, points = sum(amount for _, amount in kept), len(kept), figures.points.get(tier.window_days, 0)
    for at, amount in kept:
        spend, count = spend - amount, count - 1
        if not _reaches(tier, spend, count, points):
            return at + window
    return now


def next_tier(tiers: Sequence[Tier], current: Tier | None) -> Tier | None:
    above = [t for t in tiers if current is None or t.rank > current.rank]
    return min(above, key=lambda t: t.rank) if above else None


def to_go(tier: Tier, figures: Figures, now: datetime) -> dict[str, int | None]:
    days = tier.window_days
    return {
        "spend": None if tier.min_spend is None else max(0, tier.min_spend - figures.spend(now, days)),
        "orders": None if tier.min_orders is None else max(0, tier.min_orders - figures.count(now, days)),
        "points": None if tier.min_points is None else max(0, tier.min_points - figures.points.get(days, 0)),
    }


def recent_orders(keys: Any) -> Any:
    """Each customer's non-cancelled orders since ``since``, newest first: (customer, at, net)."""
    return (select(Order.customer_id, Order.placed_at, Order.amount - Order.refunded_amount)
            .where(keys(Order.customer_id), Order.status != OrderStatus.CANCELLED,
                   Order.placed_at > bindparam("since", type_=UTCDateTime()))
            .order_by(Order.customer_id, Order.placed_at.desc()))


def window_start(tiers: Sequence[Tier], now: datetime) -> datetime:
    return now - timedelta(days=max(t.window_days for t in tiers))


async def figures_for(session: AsyncSession, plugins: Any, customer_ids: Sequence[int], tiers: Sequence[Tier],
                      now: datetime, *, orders: Sequence[Any] | None = None,
                      as_of: dict[int, datetime] | None = None) -> dict[int, Figures]:
    """Figures for every customer in ``customer_ids`` over the tiers' windows (``orders``:
    the rows of :func:`recent_orders` since :func:`window_start`, when the caller read them).
    ``as_of``: a time for each customer to qualify at instead of ``now`` (history)."""
    found: dict[int, Figures] = defaultdict(Figures)
    if not tiers or not customer_ids:
        return found
    earliest = min(as_of.values()) if as_of else now
    rows = orders if orders is not None else await _RECENT_ORDERS.all(
        session, list(customer_ids), since=window_start(tiers, earliest))
    for customer_id, at, amount in rows:
        found[customer_id].orders.append((at, int(amount)))
    for days in sorted({t.window_days for t in tiers if t.min_points is not None}):
        since: dict[datetime, list[int]] = defaultdict(list)
        for customer_id in customer_ids:
            since[(as_of[customer_id] if as_of else now) - timedelta(days=days)].append(customer_id)
        for start, ids in since.items():
            for answer in plugins.hook.tiers_qualifying_points(session=session, customer_ids=ids, since=start):
                points = await answer if inspect.isawaitable(answer) else answer
                for customer_id, value in (points or {}).items():
                    figures = found[customer_id]
                    figures.points[days] = figures.points.get(days, 0) + int(value)
    return found

#: The same read, compiled once and sent on the driver, for the handlers and the review.
_RECENT_ORDERS = Read(recent_orders)
