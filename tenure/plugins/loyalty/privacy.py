"""The loyalty plugin's answer to exportCustomer and eraseCustomer.

Export: the account, every ledger entry, the unspent lots, the draws (which lot paid for
which spend, expiry or reversal) and the redemptions with their reward. Erase: the reasons
staff typed by hand (adjustments, manual redemptions) may name the person and are blanked;
points, kinds, dates and the account stay, so the balance still equals its ledger.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.contributions import PersonalData
from tenure.core.privacy import export_rows
from tenure.plugins.loyalty.models import Account, Draw, Entry, EntryKind, Reward

entries = Entry.__table__


async def export(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    mine = entries.c.customer_id == customer_id
    account = await export_rows(session, select(Account.__table__).where(Account.customer_id == customer_id))
    return {
        "account": account[0] if account else None,
        "entries": await export_rows(session, select(entries).where(mine).order_by(entries.c.id)),
        "lots": await export_rows(session, select(
            entries.c.id, entries.c.points, entries.c.remaining, entries.c.created_at, entries.c.expires_at)
            .where(mine, entries.c.points > 0, entries.c.pending.is_(False), entries.c.remaining > 0)
            .order_by(entries.c.expires_at, entries.c.id)),
        "draws": await export_rows(session, select(Draw.__table__).join(entries, entries.c.id == Draw.entry_id)
                                   .where(mine).order_by(Draw.entry_id, Draw.lot_id)),
        "redemptions": await export_rows(session, select(
            entries.c.id, entries.c.points, entries.c.reward_id, Reward.name.label("reward"), entries.c.created_at)
            .outerjoin(Reward, Reward.id == entries.c.reward_id)
            .where(mine, entries.c.kind == EntryKind.REDEEM).order_by(entries.c.id)),
    }


async def erase(session: AsyncSession, customer_id: int) -> None:
    await session.execute(
        update(Entry).where(Entry.customer_id == customer_id, Entry.source == "manual").values(reason="")
        .execution_options(synchronize_session=False))


def personal_data() -> list[PersonalData]:
    return [PersonalData("loyalty", export, erase)]
