"""Orders: recording (once per channel and external id, one at a time or in batches),
cancelling and refunding, and keeping the customer's order figures current in the same
transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, case, insert, or_, select, update
from sqlalchemy.orm import selectinload

from tenure.core import bulk, idempotency
from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.db import UTCDateTime, insert_ignoring_conflicts
from tenure.core.errors import Conflict, NotFound, UserError
from tenure.core.events import OrderCancelled, OrderRecorded, OrderRefunded
from tenure.core.models import Customer, Order, OrderLine, OrderStatus
from tenure.core.reads import Read, Write, attach, built, set_loaded
from tenure.core.services import order_months
from tenure.core.services.customers import refresh_order_figures

T = TypeVar("T")


@dataclass
class LineData:
    sku: str
    quantity: int
    unit_price: int
    name: str = ""
    category: str | None = None


@dataclass
class OrderData:
    customer_id: int
    channel: str
    external_id: str
    currency: str
    amount: int | None = None
    lines: list[LineData] = field(default_factory=list)
    placed_at: datetime | None = None
    status: str = OrderStatus.PAID


def _clean_lines(lines: list[LineData]) -> list[OrderLine]:
    if len(lines) > 500:
        raise UserError("at most 500 lines per order", "lines", "too_many")
    out = []
    for n, line in enumerate(lines):
        try:
            if line.quantity < 1 or line.quantity > 100_000:
                raise UserError("quantity must be between 1 and 100000", "quantity", "invalid_quantity")
            price = v.amount(line.unit_price, "unitPrice")
            out.append(built(OrderLine, {
                "sku": v.text(line.sku, "sku", max_length=100),
                "name": v.text(line.name, "name", max_length=200, required=False),
                "category": v.text(line.category, "category", max_length=100, required=False) or None,
                "quantity": line.quantity, "unit_price": price, "amount": price * line.quantity,
            }))
        except UserError as error:  # the line's place named only when it is wrong (an import checks millions)
            error.field = f"lines[{n}].{error.field}"
            raise
    return out


@dataclass
class _Clean:
    """An order that passed every check on its own, ready to be written."""

    n: int
    customer_id: int
    channel: str
    external_id: str
    currency: str
    amount: int
    status: str
    placed_at: datetime
    lines: list[OrderLine]


@dataclass
class Outcome:
    """What became of one order of a batch: the order (new, or recorded before) or the
    business error that refused it."""

    order: Order | None = None
    created: bool = False
    error: UserError | None = None


def _clean(ctx: ServiceContext, n: int, data: OrderData) -> _Clean:
    channel = v.text(data.channel, "channel", max_length=50).lower()
    external_id = v.text(data.external_id, "externalId", max_length=200)
    currency = v.currency(data.currency, ctx.settings.currency)
    lines = _clean_lines(data.lines)
    if data.amount is None and not lines:
        raise UserError("give the amount or the lines", "amount", "required")
    amount = v.amount(data.amount if data.amount is not None else sum(line.amount for line in lines), "amount")
    if data.status not in (OrderStatus.PLACED, OrderStatus.PAID):
        raise UserError("a new order is placed or paid", "status", "invalid_status")
    placed_at = v.aware(data.placed_at, "placedAt") if data.placed_at else ctx.now()
    if placed_at > ctx.now():
        raise UserError("must not be in the future", "placedAt", "invalid_time")
    return _Clean(n, data.customer_id, channel, external_id, currency, amount, data.status, placed_at, lines)


async def record_order(ctx: ServiceContext, data: OrderData) -> tuple[Order, bool]:
    """Record an order once. The same channel and external id again returns the order
    already recorded (``False``), or refuses if the amount or customer differ."""
    (outcome,) = await record_orders(ctx, [data])
    if outcome.error is not None:
        raise outcome.error
    assert outcome.order is not None
    return outcome.order, outcome.created


async def record_orders(ctx: ServiceContext, batch: Sequence[OrderData]) -> list[Outcome]:
    """Record a batch of orders set-based, each once (by channel and external id), with an
    outcome per order in the order given: a refused order does not stop the others.

    The orders are written in rounds that hold at most one order per customer, in the
    order given; each round takes a few statements whatever its size, and its
    ``OrderRecorded`` events reach the plugins as one batch. A customer's second order in
    the batch is so written after the plugins answered the first, exactly as if the orders
    had come one by one.
    """
    outcomes = [Outcome() for _ in batch]
    clean: list[_Clean] = []
    for n, data in enumerate(batch):
        try:
            clean.append(_clean(ctx, n, data))
        except UserError as error:
            outcomes[n].error = error
    if not clean:
        return outcomes
    session = ctx.session
    # Customers' row locks come first, in id order: the same order sent twice at once then
    # queues here, and the second sees the first's order below instead of colliding with it.
    customer_ids = sorted({c.customer_id for c in clean})
    customers: dict[int, Customer] = {}
    for part in _chunks(customer_ids):
        customers.update((c.id, c) for c in attach(session, await _LOCK_CUSTOMERS.all(session, part)))
    known = await _recorded_already(ctx, [(c.channel, c.external_id) for c in clean])
    new: list[_Clean] = []
    first: dict[tuple[str, str], _Clean] = {}  # the batch's own first occurrence of each order
    repeats: list[tuple[_Clean, _Clean]] = []
    for c in clean:
        key = (c.channel, c.external_id)
        existing = known.get(key)
        earlier = first.get(key)
        reference: Order | _Clean | None = existing if existing is not None else earlier
        if reference is not None:
            if reference.customer_id != c.customer_id or reference.amount != c.amount:
                outcomes[c.n].error = Conflict(
                    f"order {c.external_id!r} from {c.channel} was already recorded with another "
                    "customer or amount", "externalId")
            elif existing is not None:
                outcomes[c.n].order = existing
            elif earlier is not None:
                repeats.append((c, earlier))
            continue
        if c.customer_id not in customers:
            outcomes[c.n].error = NotFound("customer", c.customer_id, "customerId")
            continue
        first[key] = c
        new.append(c)
    for round_ in in_rounds(new, lambda c: c.customer_id):
        try:
            if len(round_) == 1:
                # No savepoint: the order's insert skips a clash on its external id, which is
                # the one way another writer can get in the way of a round of one.
                orders = await _write_round(ctx, round_, customers)
            else:
                async with session.begin_nested():
                    orders = await _write_round(ctx, round_, customers)
        except _ROUND_CLASHES:
            # An order of the round was recorded at this moment by another writer: the
            # round goes again one by one, each order then finding that one.
            for c in round_:
                if len(round_) == 1:
                    outcomes[c.n].error = Conflict(
                        f"order {c.external_id!r} from {c.channel} was already recorded with another customer",
                        "externalId")
                else:
                    (outcomes[c.n],) = await record_orders(ctx, [batch[c.n]])
            continue
        for c, order in zip(round_, orders, strict=True):
            outcomes[c.n].order, outcomes[c.n].created = order, True
        await ctx.emit(*(OrderRecorded(order) for order in orders))
    for repeat, earlier in repeats:
        outcomes[repeat.n].order = outcomes[earlier.n].order
        outcomes[repeat.n].error = outcomes[earlier.n].error
    return outcomes


def in_rounds(items: Sequence[T], customer_of: Callable[[T], int]) -> list[list[T]]:
    """``items`` split into rounds of at most one item per customer, each customer's items
    in the order given: what happens to a customer's first order then lands before their
    second is written, as if the orders had come one by one."""
    rounds: list[list[T]] = []
    seen: dict[int, int] = {}
    for item in items:
        k = seen[customer_of(item)] = seen.get(customer_of(item), -1) + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(item)
    return rounds


async def _recorded_already(ctx: ServiceContext, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Order]:
    """The orders already recorded under ``keys``, read by channel so that the unique
    index on (channel, external id) finds them (SQLite scans the table for a row-value IN)."""
    by_channel: dict[str, set[str]] = {}
    for channel, external_id in keys:
        by_channel.setdefault(channel, set()).add(external_id)
    found: dict[tuple[str, str], Order] = {}
    for channel, external_ids in by_channel.items():
        for part in _chunks(sorted(external_ids)):
            orders: list[Order] = await _RECORDED.all(ctx.session, part, channel=channel)
            if not orders:
                continue
            lines_of: dict[int, list[OrderLine]] = {order.id: [] for order in orders}
            for line in await _LINES_OF.all(ctx.session, list(lines_of)):
                lines_of[line.order_id].append(line)
            for order in orders:
                order.__dict__["lines"] = lines_of[order.id]
                found[(order.channel, order.external_id)] = order
    return found


async def _write_round(ctx: ServiceContext, round_: list[_Clean], customers: dict[int, Customer]) -> list[Order]:
    """Insert one round's orders and lines (a statement each), keep the order months, and
    move the customers' figures on (one statement).

    The rows go through the tables, not the ORM's bulk insert: the orders come back as ids
    and the instances are built here as loaded, outside the session (as the compiled reads
    build theirs), at a fraction of the ORM's per-row cost. A later change to an order in
    the transaction reads it afresh (:func:`_load`)."""
    session, now = ctx.session, ctx.now()
    order_rows = [{"customer_id": c.customer_id, "channel": c.channel, "external_id": c.external_id,
                   "currency": c.currency, "amount": c.amount, "refunded_amount": 0, "status": c.status,
                   "placed_at": c.placed_at, "created_at": now, "updated_at": now} for c in round_]
    order_ids = await _written(session, _ORDERS, _INSERT_ORDER[ctx.dialect == "postgresql"], order_rows)
    line_rows: list[dict[str, Any]] = [
        {"order_id": order_id, "sku": line.sku, "name": line.name, "category": line.category,
         "quantity": line.quantity, "unit_price": line.unit_price, "amount": line.amount}
        for order_id, c in zip(order_ids, round_, strict=True) for line in c.lines]
    line_ids = await _written(session, _LINES, _INSERT_LINE, line_rows)
    orders = [built(Order, {"id": order_id, **row})
              for order_id, row in zip(order_ids, order_rows, strict=True)]
    lines_of: dict[int, list[OrderLine]] = {order.id: [] for order in orders}
    for line_id, row in zip(line_ids, line_rows, strict=True):
        lines_of[int(row["order_id"])].append(built(OrderLine, {"id": line_id, **row}))
    for order in orders:
        order.__dict__["lines"] = lines_of[order.id]
    if len(orders) == 1:
        await order_months.keep(ctx, customers[orders[0].customer_id], orders[0])
    else:
        await order_months.record_round(ctx, orders)
    moved = []
    for order in orders:
        customer = customers[order.customer_id]
        first, last = customer.first_order_at, customer.last_order_at
        moved.append({"c": customer.id, "amount": order.amount, "placed": order.placed_at})
        set_loaded(customer, {
            "order_count": customer.order_count + 1, "total_spent": customer.total_spent + order.amount,
            "first_order_at": order.placed_at if first is None or order.placed_at < first else first,
            "last_order_at": order.placed_at if last is None or order.placed_at > last else last})
    # The same change in the database, one executemany: what the session holds (set above
    # without history, so no flush writes it again) and the rows agree.
    await bulk.update_rows(session, _CUSTOMERS, moved, each=_MOVE_FIGURES, where="t.id = v.c", set_=_MOVE_SET,
                           types=_MOVE_TYPES)
    return orders


async def _written(session: Any, table: Any, one: Write, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table``; their ids, in order. One row is a compiled
    INSERT ... RETURNING on the driver; more go through :func:`bulk.insert_returning_ids`."""
    if not rows:
        return []
    if len(rows) == 1:
        written = await one.all(session, **rows[0])
        if not written:
            raise _AlreadyRecorded
        return [int(written[0])]
    return await bulk.insert_returning_ids(session, table, rows)


#: The tables themselves: a round's rows go as one executemany of the driver.
_ORDERS: Any = Order.__table__
_LINES: Any = OrderLine.__table__


class _AlreadyRecorded(Exception):
    """Another writer recorded the round's one order (its channel and external id) just now."""


def _insert_order(dialect: str) -> Write:
    return Write(lambda _keys: insert_ignoring_conflicts(dialect, _ORDERS).values(
        {c.key: bindparam(c.key) for c in _ORDERS.columns if c.key != "id"}).returning(_ORDERS.c.id))


#: What a round meets when another writer records one of its orders at the same moment.
_ROUND_CLASHES: tuple[type[Exception], ...] = (_AlreadyRecorded, *bulk.INTEGRITY_ERRORS)
#: One order, by "is it PostgreSQL": no id back when its external id was taken meanwhile.
_INSERT_ORDER = {True: _insert_order("postgresql"), False: _insert_order("sqlite")}
_INSERT_LINE = Write(lambda _keys: insert(_LINES).values(
    {c.key: bindparam(c.key) for c in _LINES.columns if c.key != "id"}).returning(_LINES.c.id))
_CUSTOMERS: Any = Customer.__table__
#: The customers of a batch, locked in id order (SQLite renders no FOR UPDATE: its write
#: transactions are serialised already). FOR NO KEY UPDATE: an order changes a customer's
#: figures, never its id, so a row that only refers to the customer (a task a churn job
#: opens) need not wait for the order; with FOR UPDATE it did, and a job holding the
#: customer's churn rows deadlocked with the order waiting for them.
_LOCK_CUSTOMERS = Read(lambda keys: select(Customer).where(keys(Customer.id)).order_by(Customer.id)
                       .with_for_update(key_share=True))
#: Orders already recorded under one channel's external ids, and their lines.
_RECORDED = Read(lambda keys: select(Order).where(Order.channel == bindparam("channel"), keys(Order.external_id)))
_LINES_OF = Read(lambda keys: select(OrderLine).where(keys(OrderLine.order_id)).order_by(OrderLine.id))
#: The same change for a whole round, on PostgreSQL (:func:`bulk.update_rows`).
_MOVE_SET = {
    "order_count": "t.order_count + 1", "total_spent": "t.total_spent + v.amount",
    "first_order_at": "CASE WHEN t.first_order_at IS NULL OR t.first_order_at > v.placed "
                      "THEN v.placed ELSE t.first_order_at END",
    "last_order_at": "CASE WHEN t.last_order_at IS NULL OR t.last_order_at < v.placed "
                     "THEN v.placed ELSE t.last_order_at END"}
_MOVE_TYPES = {"c": _CUSTOMERS.c.id.type, "amount": _CUSTOMERS.c.total_spent.type, "placed": UTCDateTime()}
_MOVE_FIGURES = Write(lambda _keys: (
    update(_CUSTOMERS).where(_CUSTOMERS.c.id == bindparam("c"))
    .values(order_count=_CUSTOMERS.c.order_count + 1,
            total_spent=_CUSTOMERS.c.total_spent + bindparam("amount"),
            first_order_at=case((or_(_CUSTOMERS.c.first_order_at.is_(None),
                                     _CUSTOMERS.c.first_order_at > bindparam("placed", type_=UTCDateTime())),
                                 bindparam("placed", type_=UTCDateTime())), else_=_CUSTOMERS.c.first_order_at),
            last_order_at=case((or_(_CUSTOMERS.c.last_order_at.is_(None),
                                    _CUSTOMERS.c.last_order_at < bindparam("placed", type_=UTCDateTime())),
                                bindparam("placed", type_=UTCDateTime())), else_=_CUSTOMERS.c.last_order_at))))


def _chunks(values: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [values[n:n + size] for n in range(0, len(values), size)]


async def _load(ctx: ServiceContext, order_id: int) -> Order:
    order = await ctx.session.get(
        Order, order_id, options=[selectinload(Order.lines)],
        with_for_update=ctx.dialect == "postgresql", populate_existing=True,
    )
    if order is None:
        raise NotFound("order", order_id, "orderId")
    return order


async def cancel_order(ctx: ServiceContext, order_id: int) -> Order:
    order = await _load(ctx, order_id)
    if order.status == OrderStatus.CANCELLED:
        return order
    if order.refunded_amount:
        raise UserError("an order with refunds cannot be cancelled; refund the rest", "orderId", "invalid_status")
    order.status = OrderStatus.CANCELLED
    order.updated_at = ctx.now()
    customer = await ctx.session.get(Customer, order.customer_id)
    assert customer is not None
    await ctx.session.flush()
    await refresh_order_figures(ctx, customer)
    await order_months.keep(ctx, customer, order)
    await ctx.emit(OrderCancelled(order))
    return order


async def refund_order(
    ctx: ServiceContext, order_id: int, amount: int | None, idempotency_key: str | None
) -> Order:
    """Refund ``amount`` minor units (all that is left when ``None``). With an idempotency
    key, the same refund sent twice is made once."""
    if idempotency_key is None:
        return await _refund(ctx, order_id, amount)
    key = v.key(idempotency_key, "idempotencyKey")
    assert key is not None

    async def perform() -> dict[str, Any]:
        order = await _refund(ctx, order_id, amount)
        return {"orderId": order.id}

    await idempotency.once(ctx, "refundOrder", key, {"orderId": order_id, "amount": amount}, perform)
    return await _load(ctx, order_id)


async def _refund(ctx: ServiceContext, order_id: int, amount: int | None) -> Order:
    order = await _load(ctx, order_id)
    if order.status == OrderStatus.CANCELLED:
        raise UserError("a cancelled order cannot be refunded", "orderId", "invalid_status")
    left = order.amount - order.refunded_amount
    if left == 0:
        raise UserError("this order is refunded in full already", "orderId", "already_refunded")
    amount = left if amount is None else v.amount(amount, "amount", positive=True)
    if amount > left:
        raise UserError(f"at most {left} is left to refund", "amount", "too_much")
    order.refunded_amount += amount
    order.status = OrderStatus.REFUNDED if order.refunded_amount == order.amount else OrderStatus.PARTIALLY_REFUNDED
    order.updated_at = ctx.now()
    customer = await ctx.session.get(Customer, order.customer_id)
    assert customer is not None
    customer.total_spent -= amount
    await ctx.session.flush()
    await order_months.keep(ctx, customer, order, refunded=amount)
    await ctx.emit(OrderRefunded(order, amount))
    return order
