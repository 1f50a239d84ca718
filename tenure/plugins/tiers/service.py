"""Tier rules: defining tiers, upgrading at once when an order (or points) qualifies, the
review that downgrades after the grace period, staff overrides, merges, and the points
multiplier that loyalty asks for. Every change is put on the customer's timeline with why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy import event as orm_events
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import instance_state

from tenure.core import bulk
from tenure.core import validation as v
from tenure.core.config_cache import CachedConfig
from tenure.core.context import ServiceContext
from tenure.core.errors import Conflict, NotFound, UserError
from tenure.core.events import CustomersMerged, OrderRecorded, Publication, publish_many
from tenure.core.models import Customer
from tenure.core.money import money_text
from tenure.core.reads import Read, Write, attach, built, mark_written
from tenure.plugins.tiers import qualify
from tenure.plugins.tiers.models import Membership, Tier
from tenure.plugins.tiers.settings import tiers_settings


@dataclass
class TierData:
    name: str
    rank: int
    min_spend: int | None = None
    min_orders: int | None = None
    min_points: int | None = None
    window_days: int | None = None
    require_all: bool = False
    points_multiplier: int = 100
    discount_percent: int = 0
    perks: list[str] = field(default_factory=list)
    grace_days: int | None = None
    active: bool = True


def _clean(ctx: ServiceContext, data: TierData) -> dict[str, Any]:
    cfg = tiers_settings(ctx.settings)
    if not 0 <= data.rank <= 1000:
        raise UserError("must be between 0 and 1000", "rank", "invalid_rank")
    for name, value in (("minSpend", data.min_spend), ("minOrders", data.min_orders), ("minPoints", data.min_points)):
        if value is not None and not 0 <= value <= v.MAX_MINOR_UNITS:
            raise UserError("must not be negative", name, "invalid_threshold")
    window = cfg.window_days if data.window_days is None else data.window_days
    if not 1 <= window <= 3660:
        raise UserError("must be between 1 and 3660 days", "windowDays", "invalid_window")
    grace = cfg.grace_days if data.grace_days is None else data.grace_days
    if not 0 <= grace <= 3660:
        raise UserError("must be between 0 and 3660 days", "graceDays", "invalid_grace")
    if not 0 <= data.points_multiplier <= 10_000:
        raise UserError("a percent between 0 and 10000 (100 is no change)", "pointsMultiplier", "invalid_percent")
    if not 0 <= data.discount_percent <= 100:
        raise UserError("must be between 0 and 100", "discountPercent", "invalid_percent")
    if len(data.perks) > 50:
        raise UserError("at most 50 perks", "perks", "too_many")
    return {
        "name": v.text(data.name, "name", max_length=100), "rank": data.rank, "min_spend": data.min_spend,
        "min_orders": data.min_orders, "min_points": data.min_points, "window_days": window,
        "require_all": data.require_all, "points_multiplier": data.points_multiplier,
        "discount_percent": data.discount_percent, "grace_days": grace, "active": data.active,
        "perks": [v.text(p, f"perks[{n}]", max_length=200) for n, p in enumerate(data.perks)],
    }


async def _unique(ctx: ServiceContext, values: dict[str, Any], own_id: int | None) -> None:
    for column, name in ((Tier.name, "name"), (Tier.rank, "rank")):
        clash = await ctx.session.scalar(select(Tier.id).where(column == values[name], Tier.id != (own_id or 0)))
        if clash is not None:
            raise Conflict(f"another tier has this {name}", name)


async def create_tier(ctx: ServiceContext, data: TierData) -> Tier:
    values = _clean(ctx, data)
    await _unique(ctx, values, None)
    tier = Tier(**values, created_at=ctx.now(), updated_at=ctx.now())
    ctx.session.add(tier)
    await ctx.session.flush()
    return tier


async def update_tier(ctx: ServiceContext, tier_id: int, data: TierData) -> Tier:
    tier = await ctx.session.get(Tier, tier_id)
    if tier is None:
        raise NotFound("tier", tier_id, "id")
    values = _clean(ctx, data)
    await _unique(ctx, values, tier_id)
    for name, value in values.items():
        setattr(tier, name, value)
    tier.updated_at = ctx.now()
    await ctx.session.flush()
    return tier


_ACTIVE_TIERS = CachedConfig("tiers.active", Tier,
                             Read(lambda _keys: select(Tier).where(Tier.active.is_(True)).order_by(Tier.rank)))


async def active_tiers(ctx: ServiceContext) -> list[Tier]:
    """The active tiers, kept per process until they change (an order's handlers all ask)."""
    return await _ACTIVE_TIERS.get(ctx.session)


def describe(tier: Tier, figures: qualify.Figures, now: datetime, currency: str) -> str:
    parts = []
    if tier.min_spend is not None:
        parts.append(f"spend {money_text(figures.spend(now, tier.window_days), currency)}")
    if tier.min_orders is not None:
        parts.append(f"{figures.count(now, tier.window_days)} orders")
    if tier.min_points is not None:
        parts.append(f"{figures.points.get(tier.window_days, 0)} qualifying points")
    return (", ".join(parts) + f" in the last {tier.window_days} days") if parts else "everyone's starting tier"


async def _change(ctx: ServiceContext, customer_id: int, membership: Membership | None, tier: Tier, reason: str,
                  *, manual: bool = False, expires_at: datetime | None = None,
                  old: Tier | None = None, announce: list[Publication] | None = None,
                  as_of: datetime | None = None) -> Membership:
    """Move the customer to ``tier`` (since ``as_of``, history's time, or now) and tell the
    timeline, or add what to tell to ``announce`` (a batch's changes, published together)."""
    now = ctx.now()
    since = now if as_of is None else as_of
    if membership is None:
        membership = Membership(customer_id=customer_id, tier_id=tier.id, since=since, updated_at=now)
        ctx.session.add(membership)
    values = {"tier_id": tier.id, "since": since, "updated_at": now, "manual": manual, "reason": reason[:300],
              "expires_at": expires_at, "downgrade_on": None}
    if instance_state(membership).session_id is None:  # a batch's new membership, which the batch writes
        membership.__dict__.update(values)
    else:
        for name, value in values.items():
            setattr(membership, name, value)
    direction = "joined" if old is None else ("moved up to" if tier.rank > old.rank else "moved down to")
    told = Publication("tiers.changed", "tiers", customer_id, f"{direction} {tier.name}: {reason}"[:500],
                       {"customerId": customer_id, "tier": tier.name, "tierId": tier.id,
                        "previousTier": old.name if old else None, "reason": reason, "manual": manual}, timeline=True,
                       occurred_at=as_of)
    if announce is not None:
        announce.append(told)
    else:
        await publish_many(ctx, [told])
    return membership


async def evaluate(ctx: ServiceContext, customer_id: int, cause: str, *, review: bool = False,
                   tiers: list[Tier] | None = None, figures: qualify.Figures | None = None,
                   locked: dict[int, Membership] | None = None, announce: list[Publication] | None = None,
                   as_of: datetime | None = None) -> None:
    """Upgrade at once when the customer reaches a higher tier; when ``review`` (the
    periodic job), also start the grace period of one who no longer qualifies, and move
    them down once it has ended. An override is left alone until it expires. ``locked``: the
    memberships of a batch, read and locked by the caller. ``as_of``: the time to qualify
    at, when it is not now (an imported order's own time)."""
    tiers = await active_tiers(ctx) if tiers is None else tiers
    if not tiers:
        return
    now = ctx.now() if as_of is None else as_of
    if locked is not None:  # the batch's memberships, read and locked at once
        membership = locked.get(customer_id)
    else:
        membership = await ctx.session.get(Membership, customer_id, with_for_update=ctx.dialect == "postgresql")
    if figures is None:
        figures = (await qualify.figures_for(ctx.session, ctx.plugins, [customer_id], tiers, now))[customer_id]
    target = qualify.qualified(tiers, figures, now)
    current = next((t for t in tiers if membership and t.id == membership.tier_id), None)
    if membership is not None and current is None:
        current = await ctx.session.get(Tier, membership.tier_id)
    currency = ctx.settings.currency
    if target is not None and (current is None or target.rank > current.rank):
        why = f"{cause}: {describe(target, figures, now, currency)}"
        if membership is None and locked is not None:  # the batch writes its new memberships itself
            membership = locked[customer_id] = built(Membership, {
                "customer_id": customer_id, "tier_id": target.id, "since": now, "expires_at": None,
                "downgrade_on": None, "manual": False, "reason": "", "updated_at": now})
        await _change(ctx, customer_id, membership, target, why, old=current,
                      expires_at=qualify.lapses_at(target, figures, now), announce=announce, as_of=as_of)
        return
    if membership is None or current is None:
        return
    if membership.manual:
        if membership.expires_at is None or membership.expires_at > now or not review:
            return
        membership.manual = False
    if target is not None and target.rank == current.rank:
        membership.expires_at = qualify.lapses_at(current, figures, now)
        membership.downgrade_on = None
        return
    if not review:
        return
    if membership.downgrade_on is None:
        membership.downgrade_on = now + timedelta(days=current.grace_days)
        if current.grace_days:
            await ctx.publish("tiers.downgrade_scheduled", source="tiers", customer_id=customer_id,
                              summary=f"no longer reaches {current.name}; keeps it until "
                                      f"{membership.downgrade_on.date().isoformat()} (grace period)",
                              data={"customerId": customer_id, "tier": current.name,
                                    "downgradeOn": membership.downgrade_on.isoformat()}, timeline=True)
            return
    if membership.downgrade_on <= now:
        if target is None:
            await ctx.publish("tiers.changed", source="tiers", customer_id=customer_id,
                              summary=f"left {current.name}: the grace period ended",
                              data={"customerId": customer_id, "tier": None, "previousTier": current.name,
                                    "reason": "grace period ended", "manual": False}, timeline=True)
            await ctx.session.delete(membership)
            return
        why = (f"{describe(current, figures, now, currency)} no longer reaches {current.name}; "
               f"the {current.grace_days}-day grace period ended")
        await _change(ctx, customer_id, membership, target, why, old=current,
                      expires_at=qualify.lapses_at(target, figures, now))


async def on_orders_recorded(ctx: ServiceContext, events: list[OrderRecorded]) -> None:
    """Re-qualify each customer of the batch once (at most one order each), before the
    orders' points are counted: the memberships and the qualifying figures are read once.

    History (an import) qualifies each order as of its own time: the orders of the window
    before it count, the membership dates from it, and so does the timeline's entry; a
    customer only moves up then, the review after the import moving down those whose tier
    has lapsed since."""
    tiers = await active_tiers(ctx)
    if not tiers:
        return
    ids = [e.order.customer_id for e in events]
    memberships = await _lock_memberships(ctx, ids)
    held = list(memberships.values())
    as_of = {e.order.customer_id: e.order.placed_at for e in events} if ctx.history else {}
    figures = await qualify.figures_for(ctx.session, ctx.plugins, ids, tiers, ctx.now(), as_of=as_of or None)
    announce: list[Publication] = []
    for event in events:
        customer_id = event.order.customer_id
        await evaluate(ctx, customer_id, f"order {event.order.external_id}", tiers=tiers,
                       figures=figures[customer_id], locked=memberships, announce=announce,
                       as_of=as_of.get(customer_id))
    await _write_memberships(ctx, [m for m in memberships.values() if instance_state(m).key is None],
                             [m for m in held if instance_state(m).modified])
    await publish_many(ctx, announce)


async def _write_memberships(ctx: ServiceContext, new: list[Membership], changed: list[Membership]) -> None:
    """A batch's memberships in a statement each way, outside the unit of work: the new
    ones inserted (by COPY on PostgreSQL) and joined to the session, the changed ones
    updated in full by one executemany, then taken as written. A batch changes thousands of
    memberships, each in its own combination of columns, which the ORM would send apart."""
    if new:
        await bulk.insert_rows(ctx.session, _MEMBERSHIPS, [m.__dict__ for m in new], _MEMBERSHIP_COLUMNS)
        attach(ctx.session, new)
        _held(ctx).update((m.customer_id, m) for m in new)
    if changed:
        await bulk.update_rows(ctx.session, _MEMBERSHIPS, [
            {"c": m.customer_id, **{name: m.__dict__[name] for name in _CHANGING}} for m in changed],
            each=_SET_MEMBERSHIP, where="t.customer_id = v.c", types={"c": _MEMBERSHIPS.c.customer_id.type})
        mark_written(changed)


async def _lock_memberships(ctx: ServiceContext, customer_ids: list[int]) -> dict[int, Membership]:
    locked = {m.customer_id: m for m in attach(
        ctx.session, await _LOCK_MEMBERSHIPS.all(ctx.session, sorted(set(customer_ids))))}
    _held(ctx).update((customer_id, locked.get(customer_id)) for customer_id in customer_ids)
    return locked


#: The memberships the transaction holds locked, by customer (``None``: the customer has none),
#: as the batch's orders left them: what their points are then counted by. Kept in the
#: session, as its identity map keeps an instance only while something else refers to it.
_HELD = "tenure.tiers.memberships_held"


def _held(ctx: ServiceContext) -> dict[int, Membership | None]:
    held: dict[int, Membership | None] = ctx.session.info.setdefault(_HELD, {})
    return held


@orm_events.listens_for(Session, "after_transaction_end")
def _release_held(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's outermost transaction: the locks are gone
        session.info.pop(_HELD, None)


@orm_events.listens_for(Session, "after_soft_rollback")
def _forget_held(session: Session, _previous: SessionTransaction) -> None:
    session.info.pop(_HELD, None)  # a savepoint rolled back may have undone a membership


_MEMBERSHIPS: Any = Membership.__table__
_MEMBERSHIP_COLUMNS = [c.key for c in _MEMBERSHIPS.columns]
_CHANGING = [name for name in _MEMBERSHIP_COLUMNS if name != "customer_id"]
_SET_MEMBERSHIP = Write(lambda _keys: update(_MEMBERSHIPS).where(_MEMBERSHIPS.c.customer_id == bindparam("c")).values(
    {name: bindparam(name, type_=_MEMBERSHIPS.c[name].type) for name in _CHANGING}))

#: The memberships of a batch's customers, locked in customer order (SQLite renders no FOR
#: UPDATE), read on the driver and attached to the session, so a change is flushed as usual.
_LOCK_MEMBERSHIPS = Read(lambda keys: select(Membership).where(keys(Membership.customer_id))
                         .order_by(Membership.customer_id).with_for_update())


async def multipliers(ctx: ServiceContext, customer_ids: list[int]) -> dict[int, Any]:
    """Each member's points multiplier by their tier, for a batch of orders, in one read
    (none for the customers whose memberships the transaction holds locked, as after their
    orders were re-qualified)."""
    from tenure.plugins.loyalty.hookspecs import Multiplier

    tiers = {t.id: t for t in await active_tiers(ctx) if t.points_multiplier != 100}
    if not tiers:
        return {}
    known = ctx.session.info.get(_HELD, {})
    held = {customer_id: known[customer_id] for customer_id in customer_ids if customer_id in known}
    missing = [customer_id for customer_id in customer_ids if customer_id not in known]
    if missing:
        held.update((m.customer_id, m) for m in await ctx.session.scalars(
            select(Membership).where(Membership.customer_id.in_(missing))))
    return {customer_id: Multiplier(tier.points_multiplier, f"{tier.name} tier")
            for customer_id in customer_ids
            if (m := held.get(customer_id)) is not None and (tier := tiers.get(m.tier_id)) is not None}


async def on_points_earned(ctx: ServiceContext, customer_id: int) -> None:
    """Qualify on points as they are earned; not for history, whose points the ledger dates
    by the import: tiers on qualifying points count them at the review after it."""
    if ctx.history:
        return
    tiers = await active_tiers(ctx)
    if any(t.min_points is not None for t in tiers):
        await evaluate(ctx, customer_id, "points earned", tiers=tiers)


async def review(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The periodic review of every member (and of customers who ordered in the window)."""
    tiers = await active_tiers(ctx)
    if not tiers:
        return
    now = ctx.now()
    longest = max(t.window_days for t in tiers)
    from tenure.core.models import Order

    candidates = (select(Membership.customer_id).union(
        select(Order.customer_id).where(Order.placed_at > now - timedelta(days=longest)))).subquery()
    last = 0
    while True:
        ids = list(await ctx.session.scalars(
            select(candidates.c.customer_id).where(candidates.c.customer_id > last)
            .order_by(candidates.c.customer_id).limit(500)))
        if not ids:
            return
        last = ids[-1]
        figures = await qualify.figures_for(ctx.session, ctx.plugins, ids, tiers, now)
        for customer_id in ids:
            await evaluate(ctx, customer_id, "review", review=True, tiers=tiers, figures=figures[customer_id])


async def set_customer_tier(ctx: ServiceContext, customer_id: int, tier_id: int | None, reason: str,
                            until: datetime | None) -> Membership | None:
    """A staff override the review does not undo (until ``until``); ``tier_id`` None ends it."""
    reason = v.text(reason, "reason", max_length=300)
    if await ctx.session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id, "customerId")
    membership = await ctx.session.get(Membership, customer_id, with_for_update=ctx.dialect == "postgresql")
    old = await ctx.session.get(Tier, membership.tier_id) if membership else None
    if tier_id is None:
        if membership is not None and membership.manual:
            membership.manual = False
            membership.expires_at = ctx.now()
            await ctx.publish("tiers.override_ended", source="tiers", customer_id=customer_id,
                              summary=f"override of {old.name if old else 'tier'} ended: {reason}",
                              data={"customerId": customer_id, "reason": reason}, timeline=True)
        return membership
    tier = await ctx.session.get(Tier, tier_id)
    if tier is None:
        raise NotFound("tier", tier_id, "tierId")
    if until is not None and v.aware(until, "until") <= ctx.now():
        raise UserError("must be in the future", "until", "invalid_time")
    return await _change(ctx, customer_id, membership, tier, f"set by {ctx.actor}: {reason}", manual=True,
                         expires_at=until, old=old)


async def on_customers_merged(ctx: ServiceContext, event: CustomersMerged) -> None:
    """The survivor keeps the higher of the two tiers."""
    survivor_id, merged_id = event.survivor.id, event.merged_id
    pg = ctx.dialect == "postgresql"
    mine = await ctx.session.get(Membership, survivor_id, with_for_update=pg)
    theirs = await ctx.session.get(Membership, merged_id, with_for_update=pg)
    if theirs is None:
        return
    their_tier = await ctx.session.get(Tier, theirs.tier_id)
    my_tier = await ctx.session.get(Tier, mine.tier_id) if mine else None
    if their_tier is not None and (my_tier is None or their_tier.rank > my_tier.rank):
        changed = await _change(ctx, survivor_id, mine, their_tier, f"kept from merged customer {merged_id}",
                                manual=theirs.manual, expires_at=theirs.expires_at, old=my_tier)
        changed.since = theirs.since
    await ctx.session.delete(theirs)
    await ctx.session.flush()


async def distribution(session: Any) -> list[tuple[Tier | None, int]]:
    rows = (await session.execute(select(Tier, func.count(Membership.customer_id))
                                  .outerjoin(Membership, Membership.tier_id == Tier.id)
                                  .group_by(Tier.id).order_by(Tier.rank))).all()
    members = sum(n for _, n in rows)
    customers = await session.scalar(select(func.count()).select_from(Customer)) or 0
    return [(None, max(0, customers - members)), *[(tier, int(n)) for tier, n in rows]]
