"""Reports: the points liability (issued, redeemed, expired, outstanding), and ``simulate``,
which replays a candidate earn rule over past orders without writing anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from tenure.core.errors import UserError
from tenure.core.models import Customer, CustomerTag, Order, OrderStatus
from tenure.core.settings import Settings
from tenure.plugins.loyalty.models import Account, EarnRule, Entry, EntryKind
from tenure.plugins.loyalty.rules import RuleSet, load_rules, order_points
from tenure.plugins.loyalty.settings import loyalty_settings


@dataclass
class Liability:
    issued: int
    redeemed: int
    expired: int
    reversed: int
    adjusted_down: int
    outstanding: int
    pending: int
    shortfall: int
    outstanding_value: int


async def liability(session: AsyncSession, settings: Settings) -> Liability:
    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, Entry.points), else_=0)), 0)

    row = (await session.execute(select(
        total(Entry.points > 0), total(Entry.kind == EntryKind.REDEEM), total(Entry.kind == EntryKind.EXPIRE),
        total(Entry.kind == EntryKind.REVERSE), total((Entry.kind == EntryKind.ADJUST) & (Entry.points < 0)),
    ))).one()
    accounts = (await session.execute(select(
        func.coalesce(func.sum(Account.balance), 0), func.coalesce(func.sum(Account.pending), 0),
        func.coalesce(func.sum(Account.shortfall), 0)))).one()
    outstanding = int(accounts[0])
    return Liability(issued=int(row[0]), redeemed=-int(row[1]), expired=-int(row[2]), reversed=-int(row[3]),
                     adjusted_down=-int(row[4]), outstanding=outstanding, pending=int(accounts[1]),
                     shortfall=int(accounts[2]),
                     outstanding_value=outstanding * loyalty_settings(settings).point_value_minor)


@dataclass
class EarnSimulation:
    months: int
    orders: int
    points_issued: int
    points_reversed: int
    points_expired: int
    liability: int
    liability_value: int
    current_rules_points: int


def months_ago(now: datetime, months: int) -> datetime:
    month = now.month - months
    year = now.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    day = min(now.day, 28)
    return now.replace(year=year, month=month, day=day)


async def simulate_earn_rule(session: AsyncSession, settings: Settings, now: datetime, months: int,
                             candidate: EarnRule) -> EarnSimulation:
    """What the rules plus ``candidate`` would have issued on the orders of the last ``months``
    (refunds taken back, expiry applied, before tier multipliers), next to the current rules."""
    if not 1 <= months <= 60:
        raise UserError("must be between 1 and 60", "months", "invalid_months")
    cfg = loyalty_settings(settings)
    current = await load_rules(session)
    trial = RuleSet([*current.rules, candidate])
    since = months_ago(now, months)
    issued = reversed_ = expired = now_points = count = 0
    last_id = 0
    while True:
        orders = list(await session.scalars(
            select(Order).where(Order.placed_at >= since, Order.placed_at <= now, Order.id > last_id,
                                Order.status != OrderStatus.CANCELLED)
            .options(selectinload(Order.lines)).order_by(Order.id).limit(1000)))
        if not orders:
            break
        last_id = orders[-1].id
        ids = {o.customer_id for o in orders}
        tags: dict[int, set[str]] = {}
        if trial.needs_tags:
            for cid, tag in await session.execute(select(CustomerTag.customer_id, CustomerTag.tag)
                                                  .where(CustomerTag.customer_id.in_(ids))):
                tags.setdefault(cid, set()).add(tag)
        firsts = dict((await session.execute(select(Customer.id, Customer.first_order_at)
                                             .where(Customer.id.in_(ids)))).all())
        for order in orders:
            count += 1
            lines = [(line.amount, line.category) for line in order.lines]
            args = {"amount": order.amount, "currency": order.currency, "lines": lines,
                    "tags": tags.get(order.customer_id, set()), "at": order.placed_at}
            points, _ = order_points(trial, cfg, **args)  # type: ignore[arg-type]
            now_points += order_points(current, cfg, **args)[0]  # type: ignore[arg-type]
            bonus = trial.bonus("first_order")
            first = firsts.get(order.customer_id)
            if bonus is not None and first is not None and abs((first - order.placed_at).total_seconds()) < 1:
                points += bonus.points
            back = -(-points * order.refunded_amount // order.amount) if order.amount else 0
            issued += points
            reversed_ += back
            if cfg.expiry_days and order.placed_at + timedelta(days=cfg.expiry_days) <= now:
                expired += points - back
    left = issued - reversed_ - expired
    return EarnSimulation(months=months, orders=count, points_issued=issued, points_reversed=reversed_,
                          points_expired=expired, liability=left, liability_value=left * cfg.point_value_minor,
                          current_rules_points=now_points)
