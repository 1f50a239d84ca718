"""The ledger's primitives. Every change locks the customer's account row first (SELECT
... FOR UPDATE on PostgreSQL; SQLite write transactions are serialised already), writes an
append-only entry, draws spends from the oldest lots, and moves the account's totals by
exactly the entry's points, so ``balance`` always equals the sum of the posted entries and
``pending`` the sum of the pending ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, bindparam, func, insert, inspect, select, text, update
from sqlalchemy.orm.attributes import set_committed_value

from tenure.core import bulk
from tenure.core.context import ServiceContext
from tenure.core.db import UTCDateTime, insert_ignoring_conflicts
from tenure.core.errors import UserError
from tenure.core.reads import Read, Write, attach, built, set_loaded
from tenure.plugins.loyalty.models import Account, Draw, Entry, EntryKind
from tenure.plugins.loyalty.notify import reward_thresholds
from tenure.plugins.loyalty.settings import loyalty_settings

#: The table itself: history's entries go as one executemany, without the ORM's bulk machinery.
_ENTRIES: Any = Entry.__table__


async def locked_account(ctx: ServiceContext, customer_id: int) -> Account | None:
    """The customer's account locked for this transaction, or ``None`` if they have none
    (an account proves its customer exists: no read of the customer is needed)."""
    found = attach(ctx.session, await _LOCK_ACCOUNTS.all(ctx.session, [customer_id]))
    if not found:
        return None
    account: Account = found[0]
    account.updated_at = ctx.now()
    _hold(ctx, [account])
    return account


def _hold(ctx: ServiceContext, accounts: Sequence[Account]) -> None:
    """Keep the accounts locked in this transaction referenced for as long as it runs: the
    session's identity map holds its objects weakly, and the answer (the balance after a
    redemption) would otherwise read the account again."""
    held = ctx.session.info.setdefault("loyalty.locked_accounts", {})
    for account in accounts:
        held[account.customer_id] = account


def held_account(ctx: ServiceContext, customer_id: int) -> Account | None:
    """The customer's account as this transaction locked it, if it did (no statement)."""
    held: dict[int, Account] = ctx.session.info.get("loyalty.locked_accounts", {})
    return held.get(customer_id)


async def lock_account(ctx: ServiceContext, customer_id: int) -> Account:
    """The customer's account, created if missing, locked for this transaction."""
    account = await locked_account(ctx, customer_id)
    if account is None:
        await ctx.session.execute(
            insert_ignoring_conflicts(ctx.dialect, Account.__table__).values(
                customer_id=customer_id, balance=0, pending=0, lifetime_earned=0, shortfall=0,
                updated_at=ctx.now())
        )
        account = await locked_account(ctx, customer_id)
    assert account is not None
    return account


def new_entry(ctx: ServiceContext, customer_id: int, kind: str, points: int, *, source: str, reason: str = "",
              order_id: int | None = None, reward_id: int | None = None, key: str | None = None,
              qualifying: int = 0, detail: dict[str, Any] | None = None) -> Entry:
    """A new entry, built as a plain instance outside the session (the ORM's constructor
    costs tens of microseconds an entry, an import makes one per order)."""
    values = {"customer_id": customer_id, "kind": kind, "points": points, "qualifying": qualifying,
              "pending": False, "remaining": 0, "shortfall": 0, "reason": reason[:300], "source": source,
              "order_id": order_id, "reward_id": reward_id, "idempotency_key": key, "detail": detail or {},
              "created_at": ctx.now(), "available_at": None, "expires_at": None, "reminded_at": None}
    entry: Entry = built(Entry, values)
    return entry


async def credit(ctx: ServiceContext, account: Account, entry: Entry, *,
                 pending_until: datetime | None = None) -> Entry:
    """Add a lot of ``entry.points`` (> 0): pending until ``pending_until`` if that is later."""
    await credit_many(ctx, [(account.customer_id, entry, pending_until)], accounts={account.customer_id: account})
    return entry


async def credit_many(ctx: ServiceContext, credits: Sequence[tuple[int, Entry, datetime | None]], *,
                      accounts: dict[int, Account] | None = None,
                      earned_at: dict[int, datetime] | None = None) -> None:
    """Add lots of ``entry.points`` (> 0) to their customers' accounts, each pending until
    its ``pending_until`` if that is later: the entries in one statement, the accounts in
    another. Without ``accounts`` (locked by the caller), that statement also locks the
    accounts, creating the missing ones (:func:`_move_totals`). History being loaded
    (``ctx.history``) expires each lot from when it was earned (``earned_at`` of its
    customer) rather than from now, and tells nobody that a reward came within reach."""
    if not credits:
        return
    now = ctx.now()
    expiry_days = loyalty_settings(ctx).expiry_days
    moves: dict[int, list[int]] = {}  # by customer: what the balance, pending and lifetime figures gain
    for customer_id, entry, pending_until in credits:
        since = earned_at[customer_id] if ctx.history and earned_at and customer_id in earned_at else now
        pending = pending_until is not None and pending_until > now
        values = {"pending": pending, "remaining": entry.points, "available_at": pending_until if pending else now,
                  "expires_at": since + timedelta(days=expiry_days) if expiry_days else None}
        if ctx.history:
            entry.__dict__.update(values)  # written by COPY below, never flushed
        else:
            for name, value in values.items():
                setattr(entry, name, value)
        move = moves.setdefault(customer_id, [0, 0, 0])
        move[1 if pending else 0] += entry.points
        if entry.kind == EntryKind.EARN:
            move[2] += entry.points
    if accounts is None:
        accounts = await _move_totals(ctx, moves)
        before = {customer_id: accounts[customer_id].balance - move[0] for customer_id, move in moves.items()}
    else:
        before = {customer_id: account.balance for customer_id, account in accounts.items()}
        for customer_id, (balance, pending_points, lifetime) in moves.items():
            account = accounts[customer_id]
            account.balance += balance
            account.pending += pending_points
            account.lifetime_earned += lifetime
        await _write_totals(ctx, [accounts[customer_id] for customer_id in moves])
    if ctx.history:
        # Nobody reads these entries back as objects (no reward is announced for the past):
        # COPY on PostgreSQL, one executemany elsewhere, without the unit of work.
        await bulk.insert_rows(ctx.session, _ENTRIES, [e.__dict__ for _, e, _ in credits], _ENTRY_COLUMNS)
    else:
        await _insert_entries(ctx, [entry for _, entry, _ in credits])
    posted = {customer_id: entry for customer_id, entry, _ in credits if not entry.pending}
    for customer_id, entry in posted.items():
        account = accounts[customer_id]
        if account.shortfall:
            await settle_shortfall(ctx, await lock_account(ctx, customer_id))
        if not ctx.history:
            await reward_thresholds(ctx, account, before[customer_id], entry.id)


class _Totals(NamedTuple):
    """An account's figures as :func:`_move_totals` returned them, where no instance is needed."""

    customer_id: int
    balance: int
    pending: int
    lifetime_earned: int
    shortfall: int


async def _move_totals(ctx: ServiceContext, moves: dict[int, list[int]]) -> dict[int, Any]:
    """Move each customer's account by ``[balance, pending, lifetime]`` in one statement,
    creating the accounts that are missing; the accounts' new figures.

    The statement is an upsert: it locks the accounts (in customer order) as it writes
    them, where a locking read, an insert of the missing and an update took three. Outside
    an import the accounts join the session as written (the answer reads the balance from
    them); an import only keeps an account the session already holds in step."""
    ids = sorted(moves)
    now = ctx.now()
    if ctx.dialect == "postgresql":
        params: dict[str, Any] = {"c": ids, "b": [moves[i][0] for i in ids], "p": [moves[i][1] for i in ids],
                                  "l": [moves[i][2] for i in ids]}
    else:
        params = {"rows": json.dumps([[i, *moves[i]] for i in ids])}
    rows = await _MOVE_TOTALS[ctx.dialect == "postgresql"].all(ctx.session, now=now, **params)
    if not ctx.history:
        found = {a.customer_id: a for a in attach(ctx.session, [built(Account, {
            "customer_id": int(c), "balance": int(b), "pending": int(p), "lifetime_earned": int(lt),
            "shortfall": int(sf), "updated_at": now}) for c, b, p, lt, sf in rows])}
        _hold(ctx, list(found.values()))
        return found
    identity_map = ctx.session.sync_session.identity_map
    totals: dict[int, Any] = {}
    for c, b, p, lt, sf in rows:
        totals[int(c)] = figures = _Totals(int(c), int(b), int(p), int(lt), int(sf))
        held = identity_map.get(_ACCOUNT_MAPPER.identity_key_from_primary_key([figures.customer_id]))
        if held is not None:
            set_loaded(held, {**figures._asdict(), "updated_at": now})
    return totals


async def _write_totals(ctx: ServiceContext, accounts: Sequence[Account]) -> None:
    """The accounts' new totals in one executemany (the rows are locked), set in the
    session as written, so that no flush writes them again."""
    now = ctx.now()
    await bulk.update_rows(ctx.session, _ACCOUNTS, [
        {"c": a.customer_id, "balance": a.balance, "pending": a.pending, "lifetime_earned": a.lifetime_earned,
         "updated_at": now} for a in accounts], each=_SET_TOTALS, where="t.customer_id = v.c",
        types={"c": _ACCOUNTS.c.customer_id.type})
    for account in accounts:
        set_loaded(account, {"balance": account.balance, "pending": account.pending,
                             "lifetime_earned": account.lifetime_earned, "updated_at": now})


async def _insert_entries(ctx: ServiceContext, entries: Sequence[Entry]) -> None:
    """Write new entries through the table (a compiled statement for one), outside the
    session's unit of work; each gets its id and joins the session as written, so a later
    change to one (a reversal's shortfall) is flushed as usual."""
    rows = [{c: e.__dict__.get(c) for c in _ENTRY_COLUMNS} for e in entries]
    if len(rows) == 1:
        ids = [int(await _INSERT_ENTRY.one(ctx.session, **rows[0]))]
    else:
        ids = await bulk.insert_returning_ids(ctx.session, _ENTRIES, rows)
    for entry, entry_id in zip(entries, ids, strict=True):
        set_committed_value(entry, "id", entry_id)
    attach(ctx.session, entries)


_ACCOUNTS: Any = Account.__table__
_LOCK_ACCOUNTS = Read(lambda keys: select(Account).where(keys(Account.customer_id))
                      .order_by(Account.customer_id).with_for_update())


def _moving_totals(dialect: str) -> Write:
    """The upsert of :func:`_move_totals`: the moves come as arrays on PostgreSQL, as one JSON
    array of ``[customer, balance, pending, lifetime]`` on SQLite, so that the statement's
    text is the same whatever the batch's size (compiled and prepared once)."""
    if dialect == "postgresql":
        moves = ("SELECT * FROM unnest(CAST(:c AS BIGINT[]), CAST(:b AS BIGINT[]), CAST(:p AS BIGINT[]), "
                 "CAST(:l AS BIGINT[]))")
        now = "CAST(:now AS TIMESTAMP WITH TIME ZONE)"
    else:
        moves = ("SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
                 "json_extract(value, '$[3]') FROM json_each(:rows)")
        now = ":now"
    sql = f"""WITH v (c, b, p, l) AS ({moves})
INSERT INTO loyalty_accounts (customer_id, balance, pending, lifetime_earned, shortfall, updated_at)
SELECT c, b, p, l, 0, {now} FROM v WHERE true ORDER BY c
ON CONFLICT (customer_id) DO UPDATE SET balance = loyalty_accounts.balance + excluded.balance,
  pending = loyalty_accounts.pending + excluded.pending,
  lifetime_earned = loyalty_accounts.lifetime_earned + excluded.lifetime_earned, updated_at = excluded.updated_at
RETURNING customer_id, balance, pending, lifetime_earned, shortfall"""
    return Write(lambda _keys: text(sql).bindparams(bindparam("now", type_=UTCDateTime())).columns(
        **{name: BigInteger() for name in _Totals._fields}))


#: By "is it PostgreSQL".
_MOVE_TOTALS = {True: _moving_totals("postgresql"), False: _moving_totals("sqlite")}
_ACCOUNT_MAPPER: Any = inspect(Account)
_SET_TOTALS = Write(lambda _keys: update(_ACCOUNTS).where(_ACCOUNTS.c.customer_id == bindparam("c")).values(
    {name: bindparam(name) for name in ("balance", "pending", "lifetime_earned", "updated_at")}))
_ENTRY_COLUMNS = [c.key for c in _ENTRIES.columns if c.key != "id"]
_INSERT_ENTRY = Write(lambda _keys: insert(_ENTRIES).values(
    {name: bindparam(name, type_=_ENTRIES.c[name].type) for name in _ENTRY_COLUMNS}).returning(_ENTRIES.c.id))
#: A customer's posted lots with points left, oldest first.
_OLDEST_LOTS = Read(lambda _keys: select(Entry).where(
    Entry.customer_id == bindparam("customer_id"), Entry.pending.is_(False), Entry.remaining > 0)
    .order_by(Entry.expires_at.asc().nulls_last(), Entry.id).limit(bindparam("limit")))
_SET_REMAINING = Write(lambda _keys: update(_ENTRIES).where(_ENTRIES.c.id == bindparam("lot"))
                       .values(remaining=bindparam("remaining")))
_DRAWS: Any = Draw.__table__
_INSERT_DRAW = Write(lambda _keys: insert(_DRAWS).values(
    entry_id=bindparam("entry_id"), lot_id=bindparam("lot_id"), points=bindparam("points")))


async def debit(ctx: ServiceContext, account: Account, entry: Entry, points: int,
                first_from: Sequence[Entry] = ()) -> Entry:
    """Take ``points`` of the posted balance: from ``first_from`` lots, then oldest first.

    The entry, the lots drawn, the account and the draws are written by compiled
    statements, each set in the session as written (the entry stays outside it)."""
    if points > account.balance:
        raise UserError(f"the balance is {account.balance} points, {points} asked", "points", "insufficient_points")
    session = ctx.session
    entry.points = -points
    left = points
    draws: dict[int, int] = {}
    drawn: dict[int, Entry] = {}
    for lot in first_from:
        if left and not lot.pending and lot.remaining > 0:
            take = min(left, lot.remaining)
            lot.remaining -= take
            draws[lot.id] = draws.get(lot.id, 0) + take
            drawn[lot.id] = lot
            left -= take
    if left and any(isinstance(o, Entry) for o in (*session.dirty, *session.new)):
        await session.flush()  # the lots read below must be as this transaction left them
    while left:
        lots = [lot for lot in attach(session, await _OLDEST_LOTS.all(
            session, customer_id=account.customer_id, limit=100 + len(draws))) if lot.id not in draws]
        if not lots:
            raise RuntimeError(f"customer {account.customer_id}: lots hold less than the balance")
        for lot in lots:
            take = min(left, lot.remaining)
            lot.remaining -= take
            draws[lot.id] = take
            drawn[lot.id] = lot
            left -= take
            if not left:
                break
    account.balance -= points
    await _insert_entries(ctx, [entry])
    await _SET_REMAINING.many(session, [{"lot": lot.id, "remaining": lot.remaining} for lot in drawn.values()])
    for lot in drawn.values():
        set_loaded(lot, {"remaining": lot.remaining})
    await _write_totals(ctx, [account])
    await _INSERT_DRAW.many(session, [{"entry_id": entry.id, "lot_id": lot_id, "points": n}
                                      for lot_id, n in draws.items()])
    return entry


async def settle_shortfall(ctx: ServiceContext, account: Account) -> None:
    """Points owed from refunded orders whose points were spent are taken from new points
    as soon as they can be spent: buying, earning, refunding and keeping the points fails."""
    take = min(account.shortfall, account.balance)
    if take <= 0:
        return
    entry = new_entry(ctx, account.customer_id, EntryKind.REVERSE, 0, source="order",
                      reason="settles points owed from refunded orders", detail={"settles": take})
    await debit(ctx, account, entry, take)
    account.shortfall -= take


async def reverse_order(ctx: ServiceContext, order_id: int, customer_id: int, ratio: tuple[int, int],
                        reason: str) -> list[Entry]:
    """Bring what the order's points reversals (plus what expired of its lots) add up to
    ``ceil(earned * ratio)``: from the order's pending lots, then its own posted lots, then
    the oldest others; what was spent already is recorded as the entry's (and the
    account's) shortfall."""
    of_order = select(Entry).where(Entry.order_id == order_id, Entry.kind == EntryKind.EARN).order_by(Entry.id)
    if not list(await ctx.session.scalars(of_order.limit(1))):
        return []
    account = await lock_account(ctx, customer_id)
    lots = list(await ctx.session.scalars(of_order.execution_options(populate_existing=True)))
    done = (await ctx.session.execute(
        select(func.coalesce(func.sum(-Entry.points + Entry.shortfall), 0),
               func.coalesce(func.sum(-Entry.qualifying), 0))
        .where(Entry.order_id == order_id, Entry.kind == EntryKind.REVERSE))).one()
    # Points of this order that expired were never the member's to keep or spend: they
    # count as taken back already, so a refund after expiry owes nothing for them.
    expired = await ctx.session.scalar(
        select(func.coalesce(func.sum(Draw.points), 0)).join(Entry, Entry.id == Draw.entry_id)
        .where(Entry.kind == EntryKind.EXPIRE, Draw.lot_id.in_([lot.id for lot in lots])))
    num, den = ratio
    earned = sum(lot.points for lot in lots)
    todo = -(-earned * num // den) - int(done[0]) - int(expired or 0)
    q_todo = -(-sum(lot.qualifying for lot in lots) * num // den) - int(done[1])
    written: list[Entry] = []
    for lot in lots:
        if todo <= 0:
            break
        if lot.pending and lot.remaining > 0:
            take = min(todo, lot.remaining)
            entry = new_entry(ctx, customer_id, EntryKind.REVERSE, -take, source="order", reason=reason,
                              order_id=order_id)
            entry.pending = True
            ctx.session.add(entry)
            await ctx.session.flush()
            ctx.session.add(Draw(entry_id=entry.id, lot_id=lot.id, points=take))
            lot.remaining -= take
            account.pending -= take
            todo -= take
            written.append(entry)
    if todo > 0:
        take = min(todo, account.balance)
        entry = new_entry(ctx, customer_id, EntryKind.REVERSE, 0, source="order", reason=reason, order_id=order_id)
        if take:
            await debit(ctx, account, entry, take, first_from=[lot for lot in lots if not lot.pending])
        else:
            ctx.session.add(entry)
        entry.shortfall = todo - take
        account.shortfall += todo - take
        written.append(entry)
    if written and q_todo > 0:
        written[0].qualifying = -q_todo
    await ctx.session.flush()
    return written


async def release(ctx: ServiceContext, customer_id: int, until: datetime) -> int:
    """Post the customer's pending lots whose return window closed; returns the points posted."""
    account = await lock_account(ctx, customer_id)
    lots = list(await ctx.session.scalars(
        select(Entry).where(Entry.customer_id == customer_id, Entry.pending.is_(True), Entry.points > 0,
                            Entry.available_at <= until).execution_options(populate_existing=True)))
    if not lots:
        return 0
    ids = [lot.id for lot in lots]
    posted = sum(lot.remaining for lot in lots)
    for lot in lots:
        lot.pending = False
    await ctx.session.execute(
        update(Entry).where(Entry.pending.is_(True), Entry.id.in_(select(Draw.entry_id).where(Draw.lot_id.in_(ids))))
        .values(pending=False).execution_options(synchronize_session=False))
    before = account.balance
    account.pending -= posted
    account.balance += posted
    await ctx.session.flush()
    await settle_shortfall(ctx, account)
    await reward_thresholds(ctx, account, before, ids[0])
    return posted


async def expire(ctx: ServiceContext, customer_id: int, until: datetime) -> Entry | None:
    """Expire what is left of the customer's lots whose time came, oldest first."""
    account = await lock_account(ctx, customer_id)
    lots = list(await ctx.session.scalars(
        select(Entry).where(Entry.customer_id == customer_id, Entry.pending.is_(False), Entry.remaining > 0,
                            Entry.expires_at <= until)
        .order_by(Entry.expires_at, Entry.id).execution_options(populate_existing=True)))
    total = sum(lot.remaining for lot in lots)
    if not total:
        return None
    entry = new_entry(ctx, customer_id, EntryKind.EXPIRE, 0, source="expiry",
                      reason=f"{total} points earned more than {loyalty_settings(ctx).expiry_days} days ago")
    return await debit(ctx, account, entry, total, first_from=lots)


async def merge_accounts(ctx: ServiceContext, survivor_id: int, merged_id: int) -> None:
    """Move the merged customer's ledger to the survivor and add up the totals."""
    first, second = sorted((survivor_id, merged_id))
    accounts = {first: await lock_account(ctx, first), second: await lock_account(ctx, second)}
    survivor, merged = accounts[survivor_id], accounts[merged_id]
    # The survivor may hold the same idempotency keys (a birthday bonus of the same year).
    await ctx.session.execute(
        update(Entry).where(Entry.customer_id == merged_id, Entry.idempotency_key.is_not(None))
        .values(idempotency_key=func.substr(f"merged{merged_id}:" + Entry.idempotency_key, 1, 250))
        .execution_options(synchronize_session=False))
    await ctx.session.execute(
        update(Entry).where(Entry.customer_id == merged_id).values(customer_id=survivor_id)
        .execution_options(synchronize_session=False))
    survivor.balance += merged.balance
    survivor.pending += merged.pending
    survivor.lifetime_earned += merged.lifetime_earned
    survivor.shortfall += merged.shortfall
    await ctx.session.delete(merged)
    await ctx.session.flush()
    await settle_shortfall(ctx, survivor)
