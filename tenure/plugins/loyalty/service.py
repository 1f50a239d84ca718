"""The loyalty rules: earning from orders (and taking back on refunds), redeeming points
and rewards, manual adjustments, referral and birthday bonuses, and merging. Every function
runs in the caller's transaction; a refusal raises :class:`UserError` and writes nothing."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, extract, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import idempotency
from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.errors import Conflict, NotFound, UserError
from tenure.core.events import CustomersMerged, OrderCancelled, OrderRecorded, OrderRefunded, Publication, publish_many
from tenure.core.models import Customer, CustomerTag, OrderStatus
from tenure.core.reads import Read
from tenure.plugins.loyalty import ledger
from tenure.plugins.loyalty.hookspecs import Multiplier
from tenure.plugins.loyalty.models import Entry, EntryKind, Reward
from tenure.plugins.loyalty.rules import MAX_POINTS, load_rules, order_points
from tenure.plugins.loyalty.settings import loyalty_settings


async def _customer(ctx: ServiceContext, customer_id: int, field: str = "customerId") -> Customer:
    customer = await ctx.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id, field)
    return customer


async def _locked_customer(ctx: ServiceContext, customer_id: int) -> Customer:
    """A customer the order's transaction holds locked (from the session's identity map
    without a greenlet hop), else read."""
    held = ctx.session.identity_map.get(_CUSTOMER_MAPPER.identity_key_from_primary_key((customer_id,)))
    return held if held is not None else await _customer(ctx, customer_id)


_CUSTOMER_MAPPER: Any = Customer.__mapper__
#: Which of the customers were given the first-order bonus already.
_HAD_FIRST_ORDER_BONUS = Read(lambda keys: select(Entry.customer_id).where(
    keys(Entry.customer_id), Entry.idempotency_key == "first_order"))


async def hook_multipliers(ctx: ServiceContext, customer_ids: list[int]) -> dict[int, list[Multiplier]]:
    """What other plugins (tiers) multiply each customer's points by: the batch hook once,
    and the one-customer hook of plugins that offer only that."""
    found: dict[int, list[Multiplier]] = {customer_id: [] for customer_id in customer_ids}
    for answer in ctx.plugins.hook.loyalty_points_multipliers(ctx=ctx, customer_ids=customer_ids):
        for customer_id, multiplier in (await answer if inspect.isawaitable(answer) else answer).items():
            found[customer_id].append(multiplier)
    if ctx.plugins.hook.loyalty_points_multiplier.get_hookimpls():
        for customer_id in customer_ids:
            for answer in ctx.plugins.hook.loyalty_points_multiplier(ctx=ctx, customer_id=customer_id):
                value = await answer if inspect.isawaitable(answer) else answer
                if value is not None:
                    found[customer_id].append(value)
    return found


async def _points_earned(ctx: ServiceContext, customer_id: int) -> None:
    for answer in ctx.plugins.hook.loyalty_points_earned(ctx=ctx, customer_id=customer_id):
        if inspect.isawaitable(answer):
            await answer


# -- Orders -----------------------------------------------------------------------------------


async def on_orders_recorded(ctx: ServiceContext, events: list[OrderRecorded]) -> None:
    """Earn the orders' points in their transaction (at most one order per customer in a
    batch), pending until each order's return window closes: the rules, tags, tier
    multipliers and accounts are read once for the batch, and the entries written at once."""
    cfg = loyalty_settings(ctx)
    rules = await load_rules(ctx.session)
    orders = [e.order for e in events]
    ids = [o.customer_id for o in orders]
    tags: dict[int, set[str]] = {customer_id: set() for customer_id in ids}
    if rules.needs_tags:
        for customer_id, tag in await ctx.session.execute(
                select(CustomerTag.customer_id, CustomerTag.tag).where(CustomerTag.customer_id.in_(ids))):
            tags[customer_id].add(tag)
    extra = await hook_multipliers(ctx, ids)
    bonus = rules.bonus("first_order")
    bonus_due: set[int] = set()
    if bonus is not None:
        first_orders = [o.customer_id for o in orders if (await _locked_customer(ctx, o.customer_id)).order_count == 1]
        had = set() if not first_orders else set(await _HAD_FIRST_ORDER_BONUS.all(ctx.session, first_orders))
        bonus_due = set(first_orders) - had
    credits: list[tuple[int, Entry, datetime]] = []
    earned: dict[int, tuple[Any, int, datetime]] = {}
    for order in orders:
        points, detail = order_points(
            rules, cfg, amount=order.amount, currency=order.currency,
            lines=[(line.amount, line.category) for line in order.lines] if rules.multipliers else [],
            tags=tags[order.customer_id],
            at=order.placed_at, extra_percents=[(m.percent, m.reason) for m in extra[order.customer_id]])
        pending_until = order.placed_at + timedelta(days=cfg.return_window_days)
        total = 0
        if points > 0:
            credits.append((order.customer_id, ledger.new_entry(
                ctx, order.customer_id, EntryKind.EARN, points, source="order",
                reason=f"order {order.external_id} ({order.channel})", order_id=order.id, key=f"order:{order.id}",
                qualifying=points, detail=detail), pending_until))
            total += points
        if bonus is not None and order.customer_id in bonus_due:
            credits.append((order.customer_id, ledger.new_entry(
                ctx, order.customer_id, EntryKind.EARN, bonus.points, source="order",
                reason=f"first order bonus ({bonus.name})", order_id=order.id, key="first_order"),
                pending_until))
            total += bonus.points
        if total:
            earned[order.customer_id] = (order, total, pending_until)
    if not credits:
        return
    await ledger.credit_many(ctx, credits, earned_at={o.customer_id: o.placed_at for o in orders})
    if not ctx.history:  # an import's orders are in the feed; their points are in the ledger
        await publish_many(ctx, [
            Publication("loyalty.points_earned", "loyalty", customer_id,
                        f"{points} points for order {order.external_id}",
                        {"customerId": customer_id, "orderId": order.id, "points": points,
                         "pendingUntil": pending_until.isoformat()}, timeline=True)
            for customer_id, (order, points, pending_until) in earned.items()])
    for customer_id in {customer_id for customer_id, entry, _ in credits if entry.qualifying > 0}:
        await _points_earned(ctx, customer_id)


async def _reverse(ctx: ServiceContext, order_id: int, customer_id: int, ratio: tuple[int, int], why: str) -> None:
    entries = await ledger.reverse_order(ctx, order_id, customer_id, ratio, why)
    taken = -sum(e.points for e in entries)
    short = sum(e.shortfall for e in entries)
    if taken or short:
        summary = f"{taken} points taken back: {why}" + (f"; {short} had been spent and are owed" if short else "")
        await ctx.publish("loyalty.points_reversed", source="loyalty", customer_id=customer_id, summary=summary,
                          data={"customerId": customer_id, "orderId": order_id, "points": taken, "shortfall": short},
                          timeline=True)


async def on_order_refunded(ctx: ServiceContext, event: OrderRefunded) -> None:
    order = event.order
    full = order.status == OrderStatus.REFUNDED or order.refunded_amount >= order.amount
    ratio = (1, 1) if full or order.amount == 0 else (order.refunded_amount, order.amount)
    await _reverse(ctx, order.id, order.customer_id, ratio, f"order {order.external_id} refunded")


async def on_order_cancelled(ctx: ServiceContext, event: OrderCancelled) -> None:
    order = event.order
    await _reverse(ctx, order.id, order.customer_id, (1, 1), f"order {order.external_id} cancelled")


async def on_customers_merged(ctx: ServiceContext, event: CustomersMerged) -> None:
    await ledger.merge_accounts(ctx, event.survivor.id, event.merged_id)


# -- Spending ---------------------------------------------------------------------------------


def _key(value: str | None) -> str | None:
    return v.text(value, "idempotencyKey", max_length=150) if value is not None else None


async def _once(ctx: ServiceContext, operation: str, customer_id: int, key: str | None, request: dict[str, Any],
                perform: Callable[[], Awaitable[Entry]]) -> Entry:
    """``perform`` once per key; the entry it wrote (no read of it back), or the one a
    first run wrote (read)."""
    made: list[Entry] = []

    async def run() -> dict[str, Any]:
        made.append(await perform())
        return {"entryId": made[0].id}

    if key is None:
        await run()
    else:
        result, _ = await idempotency.once(ctx, operation, f"{customer_id}:{key}", request, run)
        if not made:
            entry = await ctx.session.get(Entry, result["entryId"])
            assert entry is not None
            return entry
    return made[0]


async def redeem_points(ctx: ServiceContext, customer_id: int, points: int, reason: str,
                        idempotency_key: str | None = None) -> Entry:
    """Spend ``points`` of the posted balance (never more: a userError, nothing written)."""
    if not 1 <= points <= MAX_POINTS * 100:
        raise UserError("must be at least 1", "points", "invalid_points")
    reason = v.text(reason, "reason", max_length=300)
    key = _key(idempotency_key)

    async def perform() -> Entry:
        account = await ledger.locked_account(ctx, customer_id)
        if account is None:  # no account yet: is there such a customer at all?
            await _customer(ctx, customer_id)
            account = await ledger.lock_account(ctx, customer_id)
        entry = ledger.new_entry(ctx, customer_id, EntryKind.REDEEM, 0, source="manual", reason=reason, key=key)
        await ledger.debit(ctx, account, entry, points)
        return entry

    request = {"customerId": customer_id, "points": points, "reason": reason}
    return await _once(ctx, "loyalty.redeemPoints", customer_id, key, request, perform)


async def redeem_reward(ctx: ServiceContext, customer_id: int, reward_id: int,
                        idempotency_key: str | None = None) -> Entry:
    key = _key(idempotency_key)

    async def perform() -> Entry:
        await _customer(ctx, customer_id)
        reward = await ctx.session.get(Reward, reward_id)
        if reward is None:
            raise NotFound("reward", reward_id, "rewardId")
        if not reward.active:
            raise UserError("this reward is not offered any more", "rewardId", "inactive")
        account = await ledger.lock_account(ctx, customer_id)
        if reward.per_customer_limit is not None:
            taken = await ctx.session.scalar(select(func.count()).select_from(Entry).where(
                Entry.customer_id == customer_id, Entry.kind == EntryKind.REDEEM, Entry.reward_id == reward.id))
            if (taken or 0) >= reward.per_customer_limit:
                raise UserError(f"at most {reward.per_customer_limit} per customer", "rewardId", "limit_reached")
        if account.balance < reward.cost:
            raise UserError(f"costs {reward.cost} points; the balance is {account.balance}", "rewardId",
                            "insufficient_points")
        if reward.stock is not None:
            taken_one = await ctx.session.execute(update(Reward).where(Reward.id == reward.id, Reward.stock > 0)
                                                  .values(stock=Reward.stock - 1)
                                                  .execution_options(synchronize_session=False))
            if taken_one.rowcount != 1:  # type: ignore[attr-defined]
                raise UserError("out of stock", "rewardId", "out_of_stock")
        entry = ledger.new_entry(ctx, customer_id, EntryKind.REDEEM, 0, source="reward",
                                 reason=f"reward: {reward.name}", reward_id=reward.id, key=key)
        await ledger.debit(ctx, account, entry, reward.cost)
        await ctx.publish("loyalty.reward_redeemed", source="loyalty", customer_id=customer_id,
                          summary=f"Redeemed {reward.name} for {reward.cost} points",
                          data={"customerId": customer_id, "rewardId": reward.id, "points": reward.cost,
                                "entryId": entry.id}, timeline=True)
        return entry

    return await _once(ctx, "loyalty.redeemReward", customer_id, key, {"rewardId": reward_id}, perform)


async def adjust_points(ctx: ServiceContext, customer_id: int, points: int, reason: str,
                        idempotency_key: str | None = None, qualifying: bool = False) -> Entry:
    """A manual correction: positive adds a lot (spendable at once), negative spends."""
    if points == 0 or abs(points) > MAX_POINTS * 100:
        raise UserError("must not be zero", "points", "invalid_points")
    reason = v.text(reason, "reason", max_length=300)
    key = _key(idempotency_key)

    async def perform() -> Entry:
        await _customer(ctx, customer_id)
        account = await ledger.lock_account(ctx, customer_id)
        entry = ledger.new_entry(ctx, customer_id, EntryKind.ADJUST, points, source="manual", reason=reason, key=key,
                                 qualifying=points if qualifying and points > 0 else 0,
                                 detail={"by": ctx.actor})
        if points > 0:
            await ledger.credit(ctx, account, entry)
        else:
            await ledger.debit(ctx, account, entry, -points)
        return entry

    request = {"customerId": customer_id, "points": points, "reason": reason, "qualifying": qualifying}
    entry = await _once(ctx, "loyalty.adjustPoints", customer_id, key, request, perform)
    if qualifying and points > 0:
        await _points_earned(ctx, customer_id)
    return entry


async def award_referral(ctx: ServiceContext, referrer_id: int, referred_id: int) -> Entry:
    """The referral bonus, once per referred customer."""
    if referrer_id == referred_id:
        raise UserError("a customer cannot refer themselves", "referredCustomerId", "invalid")
    await _customer(ctx, referrer_id, "referrerId")
    await _customer(ctx, referred_id, "referredCustomerId")
    rule = (await load_rules(ctx.session)).bonus("referral")
    if rule is None:
        raise UserError("no active referral bonus rule (create one with trigger referral)", "referrerId", "no_rule")
    key = f"referral:{referred_id}"
    account = await ledger.lock_account(ctx, referrer_id)
    earlier = await ctx.session.scalar(select(Entry).where(Entry.source == "referral", Entry.idempotency_key == key))
    if earlier is not None:
        if earlier.customer_id != referrer_id:
            raise Conflict("this customer was referred by someone else already", "referredCustomerId")
        return earlier
    entry = ledger.new_entry(ctx, referrer_id, EntryKind.EARN, rule.points, source="referral",
                             reason=f"referred customer {referred_id}", key=key, detail={"referred": referred_id})
    await ledger.credit(ctx, account, entry)
    await ctx.publish("loyalty.referral_bonus", source="loyalty", customer_id=referrer_id,
                      summary=f"{rule.points} points for referring customer {referred_id}",
                      data={"customerId": referrer_id, "referredCustomerId": referred_id, "points": rule.points},
                      timeline=True)
    return entry


async def birthday_bonuses(ctx: ServiceContext) -> int:
    """Give today's birthdays their bonus, once a year each; returns how many got it."""
    rule = (await load_rules(ctx.session)).bonus("birthday")
    if rule is None:
        return 0
    today = ctx.now().date()
    month, day = extract("month", Customer.birthday), extract("day", Customer.birthday)
    is_birthday: ColumnElement[bool] = (month == today.month) & (day == today.day)
    leap_day = (month == 2) & (day == 29)
    if today.month == 2 and today.day == 28 and (today.year % 4 or (today.year % 100 == 0 and today.year % 400)):
        is_birthday = or_(is_birthday, leap_day)
    key = f"birthday:{today.year}"
    given = select(Entry.customer_id).where(Entry.idempotency_key == key)
    ids = list(await ctx.session.scalars(
        select(Customer.id).where(is_birthday, Customer.erased_at.is_(None), Customer.id.not_in(given))))
    for customer_id in ids:
        account = await ledger.lock_account(ctx, customer_id)
        entry = ledger.new_entry(ctx, customer_id, EntryKind.EARN, rule.points, source="birthday",
                                 reason=f"happy birthday {today.year}", key=key)
        await ledger.credit(ctx, account, entry)
        await ctx.publish("loyalty.birthday_bonus", source="loyalty", customer_id=customer_id,
                          summary=f"{rule.points} birthday points", data={"customerId": customer_id,
                                                                          "points": rule.points}, timeline=True)
    return len(ids)


@dataclass
class RewardData:
    name: str
    cost: int
    description: str = ""
    stock: int | None = None
    per_customer_limit: int | None = None
    active: bool = True


def _clean_reward(data: RewardData) -> dict[str, Any]:
    if not 1 <= data.cost <= MAX_POINTS * 100:
        raise UserError("must be at least 1 point", "cost", "invalid_points")
    if data.stock is not None and data.stock < 0:
        raise UserError("must not be negative", "stock", "invalid_stock")
    if data.per_customer_limit is not None and data.per_customer_limit < 1:
        raise UserError("must be at least 1 (leave it out for no limit)", "perCustomerLimit", "invalid_limit")
    return {"name": v.text(data.name, "name", max_length=200), "cost": data.cost, "stock": data.stock,
            "description": v.text(data.description, "description", max_length=1000, required=False),
            "per_customer_limit": data.per_customer_limit, "active": data.active}


async def create_reward(ctx: ServiceContext, data: RewardData) -> Reward:
    reward = Reward(**_clean_reward(data), created_at=ctx.now())
    ctx.session.add(reward)
    await ctx.session.flush()
    return reward


async def update_reward(ctx: ServiceContext, reward_id: int, data: RewardData) -> Reward:
    reward = await ctx.session.get(Reward, reward_id, with_for_update=ctx.dialect == "postgresql")
    if reward is None:
        raise NotFound("reward", reward_id, "id")
    for name, value in _clean_reward(data).items():
        setattr(reward, name, value)
    await ctx.session.flush()
    return reward


async def qualifying_points(session: AsyncSession, customer_ids: Sequence[int], since: datetime) -> dict[int, int]:
    """Qualifying points earned since ``since`` (net of reversals), for tiers on points."""
    rows = await session.execute(
        select(Entry.customer_id, func.sum(Entry.qualifying))
        .where(Entry.customer_id.in_(customer_ids), Entry.created_at >= since).group_by(Entry.customer_id))
    return {customer_id: max(0, int(total or 0)) for customer_id, total in rows}
