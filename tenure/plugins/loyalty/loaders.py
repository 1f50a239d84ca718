"""Batch loaders for the loyalty fields: one statement per kind of read for a whole page
of customers (or the one member), however long their ledgers are."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from tenure.core import clock
from tenure.core.db import UTCDateTime
from tenure.core.reads import Read
from tenure.plugins.loyalty.models import Account, Draw, Entry, Reward
from tenure.plugins.loyalty.settings import loyalty_settings
from tenure.schema.context import Context
from tenure.schema.loaders import fetch


def _accounts(keys: Any) -> Any:
    since = bindparam("since", type_=UTCDateTime())
    window = (select(func.coalesce(func.sum(Entry.qualifying), 0))
              .where(Entry.customer_id == Account.customer_id, Entry.created_at >= since).scalar_subquery())
    return select(Account, window).where(keys(Account.customer_id))


_ACCOUNTS = Read(_accounts)


async def accounts(context: Context, keys: Sequence[int]) -> list[Account | None]:
    """Each account comes with its qualifying points (a subquery), which prime the
    :func:`qualifying` loader: a points summary costs one statement less."""
    since = clock.now() - timedelta(days=loyalty_settings(context.settings).qualifying_window_days)
    rows = await fetch(context, _ACCOUNTS, keys, since=since)
    found = {account.customer_id: account for account, _ in rows}
    context.loader(qualifying).prime_many({account.customer_id: max(0, int(points or 0)) for account, points in rows})
    return [found.get(k) for k in keys]


_EXPIRING = Read(lambda keys: (
    select(Entry.customer_id, Entry.expires_at, Entry.remaining)
    .where(keys(Entry.customer_id), Entry.pending.is_(False), Entry.remaining > 0,
           Entry.expires_at > bindparam("now", type_=UTCDateTime()),
           Entry.expires_at <= bindparam("horizon", type_=UTCDateTime()))
    .order_by(Entry.customer_id, Entry.expires_at)))


async def expiring(context: Context, keys: Sequence[int]) -> list[list[tuple[int, object]]]:
    """Per customer, (points, at) of unspent lots expiring within the reminder window, by day."""
    now = clock.now()
    horizon = now + timedelta(days=loyalty_settings(context.settings).reminder_days)
    rows = await fetch(context, _EXPIRING, keys, now=now, horizon=horizon)
    groups: dict[int, dict[object, int]] = defaultdict(dict)
    for customer_id, at, remaining in rows:
        assert at is not None
        day = clock.as_utc(at).replace(hour=0, minute=0, second=0, microsecond=0)
        groups[customer_id][day] = groups[customer_id].get(day, 0) + remaining
    return [[(points, day) for day, points in groups.get(k, {}).items()] for k in keys]


_QUALIFYING = Read(lambda keys: (
    select(Entry.customer_id, func.sum(Entry.qualifying))
    .where(keys(Entry.customer_id), Entry.created_at >= bindparam("since", type_=UTCDateTime()))
    .group_by(Entry.customer_id)))


async def qualifying(context: Context, keys: Sequence[int]) -> list[int]:
    since = clock.now() - timedelta(days=loyalty_settings(context.settings).qualifying_window_days)
    found = dict(await fetch(context, _QUALIFYING, keys, since=since))
    return [max(0, int(found.get(k) or 0)) for k in keys]


_DRAWS = Read(lambda keys: select(Draw).where(keys(Draw.entry_id)).order_by(Draw.lot_id))


async def draws(context: Context, keys: Sequence[int]) -> list[list[Draw]]:
    groups: dict[int, list[Draw]] = defaultdict(list)
    for row in await fetch(context, _DRAWS, keys):
        groups[row.entry_id].append(row)
    return [groups.get(k, []) for k in keys]


_AFFORDABLE = Read(lambda keys: (
    select(Account.customer_id, Reward)
    .join(Reward, and_(Reward.active.is_(True), Reward.cost <= Account.balance,
                       (Reward.stock.is_(None)) | (Reward.stock > 0)))
    .where(keys(Account.customer_id)).order_by(Account.customer_id, Reward.cost, Reward.id)))


async def affordable_rewards(context: Context, keys: Sequence[int]) -> list[list[Reward]]:
    """Active rewards in stock that each customer's balance pays for (one joined statement)."""
    rows = await fetch(context, _AFFORDABLE, keys)
    groups: dict[int, list[Reward]] = defaultdict(list)
    for customer_id, reward in rows:
        groups[customer_id].append(reward)
    return [groups.get(k, []) for k in keys]
