"""Loyalty's periodic jobs: post points whose return window closed, expire points oldest
first and remind members before they expire, and give birthday bonuses. Each is safe to run
twice: it acts only on what is still due, and reminders are marked on the lots they cover."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.contributions import JobSpec
from tenure.plugins.loyalty import ledger, service
from tenure.plugins.loyalty.models import Account, Entry
from tenure.plugins.loyalty.notify import remind
from tenure.plugins.loyalty.settings import LoyaltySettings, loyalty_settings

BATCH = 500


async def release_pending(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    now = ctx.now()
    due = (select(Entry.customer_id).where(Entry.pending.is_(True), Entry.points > 0, Entry.available_at <= now)
           .distinct().limit(BATCH))
    while ids := list(await ctx.session.scalars(due)):
        for customer_id in ids:
            await ledger.release(ctx, customer_id, now)


async def expire_points(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    now = ctx.now()
    cfg = loyalty_settings(ctx)
    lots = and_(Entry.pending.is_(False), Entry.remaining > 0)
    due = select(Entry.customer_id).where(lots, Entry.expires_at <= now).distinct().limit(BATCH)
    while ids := list(await ctx.session.scalars(due)):
        for customer_id in ids:
            entry = await ledger.expire(ctx, customer_id, now)
            if entry is not None:
                await ctx.publish("loyalty.points_expired", source="loyalty", customer_id=customer_id,
                                  summary=f"{-entry.points} points expired",
                                  data={"customerId": customer_id, "points": -entry.points}, timeline=True)
    horizon = now + timedelta(days=cfg.reminder_days)
    soon = and_(lots, Entry.expires_at > now, Entry.expires_at <= horizon, Entry.reminded_at.is_(None))
    rows = (await ctx.session.execute(
        select(Entry.customer_id, func.sum(Entry.remaining), func.min(Entry.expires_at)).where(soon)
        .group_by(Entry.customer_id))).all()
    for customer_id, points, first_at in rows:
        assert first_at is not None
        at = as_utc(first_at)
        await remind(ctx, "loyalty.points_expiring", customer_id=customer_id,
                     summary=f"{points} points expire by {at.date().isoformat()}",
                     data={"customerId": customer_id, "points": int(points), "firstExpiresAt": at.isoformat()},
                     template="loyalty.points_expiring",
                     placeholders={"points": int(points), "expires_on": at.date().isoformat()},
                     dedupe_key=f"loyalty:expiring:{customer_id}:{at.date().isoformat()}")
    if rows:
        await ctx.session.execute(update(Entry).where(soon).values(reminded_at=now)
                                  .execution_options(synchronize_session=False))


async def birthday_bonuses(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await service.birthday_bonuses(ctx)


def jobs(cfg: LoyaltySettings) -> list[JobSpec]:
    return [
        JobSpec("loyalty.release_pending", release_pending, schedule=cfg.release_schedule,
                description="Make points spendable once their order's return window has closed"),
        JobSpec("loyalty.expire_points", expire_points, schedule=cfg.expiry_schedule,
                description="Expire points oldest first and remind members of points expiring soon"),
        JobSpec("loyalty.birthday_bonuses", birthday_bonuses, schedule=cfg.birthday_schedule,
                description="Give today's birthdays their bonus points"),
    ]


async def ledger_matches(session: AsyncSession) -> list[str]:
    """Every balance equals its ledger's posted sum and its unspent lots; none is negative."""
    sums = (
        select(
            Entry.customer_id.label("customer_id"),
            func.sum(case((Entry.pending.is_(False), Entry.points), else_=0)).label("posted"),
            func.sum(case((Entry.pending.is_(True), Entry.points), else_=0)).label("pending"),
            func.sum(case((and_(Entry.pending.is_(False), Entry.points > 0), Entry.remaining), else_=0)).label("lots"),
        ).group_by(Entry.customer_id).subquery()
    )
    posted, pending, lots = (func.coalesce(sums.c.posted, 0), func.coalesce(sums.c.pending, 0),
                             func.coalesce(sums.c.lots, 0))
    rows = (await session.execute(
        select(Account.customer_id, Account.balance, Account.pending, posted, pending, lots)
        .outerjoin(sums, sums.c.customer_id == Account.customer_id)
        .where((Account.balance != posted) | (Account.pending != pending) | (Account.balance != lots)
               | (Account.balance < 0) | (Account.pending < 0))
        .limit(20))).all()
    problems = [
        f"customer {cid}: balance {balance} and pending {pend}, but the ledger adds up to {p} posted and "
        f"{q} pending, and the unspent lots to {lot}"
        for cid, balance, pend, p, q, lot in rows
    ]
    orphans = await session.scalar(
        select(func.count()).select_from(sums).where(
            sums.c.customer_id.not_in(select(Account.customer_id)), (sums.c.posted != 0) | (sums.c.pending != 0)))
    if orphans:
        problems.append(f"{orphans} customers have ledger entries but no account")
    return problems
