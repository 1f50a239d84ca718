"""Batch loaders for the loyalty fields: one statement per kind of read for a whole page
of customers (or the one member), however long their ledgers are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, func, select

from core import clock
from plugins.loyalty.models import Account, Draw, Entry, Reward
from plugins.loyalty.settings import loyalty_settings
from schema.context import Context


async def accounts(context: Context, keys: Sequence[int]) -> list[Account | None]:
    """Each account comes with its qualifying points (a subquery), which prime the
    :func:`qualifying` loader: a points summary costs one statement less."""
    since = clock.now() - timedelta(days=loyalty_settings(context.settings).qualifying_window_days)
    window = (select(func.coalesce(func.sum(Entry.qualifying), 0))
              .where(Entry.customer_id == Account.customer_id, Entry.created_at >= since).scalar_subquery())
    async with context.db() as session:
        rows = (await session.execute(select(Account, window).where(Account.customer_id.in_(keys)))).all()
    found = {account.customer_id: account for account, _ in rows}
    context.loader(qualifying).prime_many({account.customer_id: max(0, int(points or 0)) for account, points in rows})
    return [found.get(k) for k in keys]


async def expiring(context: Context, keys: Sequence[int]) -> list[list[tuple[int, object]]]:
    """Per customer, (points, at) of unspent lots expiring within the reminder window, by day."""
    now = clock.now()
    horizon = now + timedelta(days=loyalty_settings(context.settings).reminder_days)
    stmt = (select(Entry.customer_id, Entry.expires_at, Entry.remaining)
            .where(Entry.customer_id.in_(keys), Entry.pending.is_(False), Entry.remaining > 0,
                   Entry.expires_at > now, Entry.expires_at <= horizon)
            .order_by(Entry.customer_id, Entry.expires_at))
    async with context.db() as session:
        rows = (await session.execute(stmt)).all()
    groups: dict[int, dict[object, int]] = defaultdict(dict)
    for customer_id, at, remaining in rows:
        assert at is not None
        day = clock.as_utc(at).replace(hour=0, minute=0, second=0, microsecond=0)
        groups[customer_id][day] = groups[customer_id].get(day, 0) + remaining
    return [[(points, day) for day, points in groups.get(k, {}).items()] for k in keys]


async def qualifying(context: Context, keys: Sequence[int]) -> list[int]:
    since = clock.now() - timedelta(days=loyalty_settings(context.settings).qualifying_window_days)
    stmt = (select(Entry.customer_id, func.sum(Entry.qualifying))
            .where(Entry.customer_id.in_(keys), Entry.created_at >= since).group_by(Entry.customer_id))
    async with context.db() as session:
        found = dict((await session.execute(stmt)).all())
    return [max(0, int(found.get(k) or 0)) for k in keys]


async def draws(context: Context, keys: Sequence[int]) -> list[list[Draw]]:
    async with context.db() as session:
        rows = list(await session.scalars(select(Draw).where(Draw.entry_id.in_(keys)).order_by(Draw.lot_id)))
    groups: dict[int, list[Draw]] = defaultdict(list)
    for row in rows:
        groups[row.entry_id].append(row)
    return [groups.get(k, []) for k in keys]


async def affordable_rewards(context: Context, keys: Sequence[int]) -> list[list[Reward]]:
    """Active rewards in stock that each customer's balance pays for (one joined statement)."""
    stmt = (select(Account.customer_id, Reward)
            .join(Reward, and_(Reward.active.is_(True), Reward.cost <= Account.balance,
                               (Reward.stock.is_(None)) | (Reward.stock > 0)))
            .where(Account.customer_id.in_(keys)).order_by(Account.customer_id, Reward.cost, Reward.id))
    async with context.db() as session:
        rows = (await session.execute(stmt)).all()
    groups: dict[int, list[Reward]] = defaultdict(list)
    for customer_id, reward in rows:
        groups[customer_id].append(reward)
    return [groups.get(k, []) for k in keys]
