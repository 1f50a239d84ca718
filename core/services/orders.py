"""Orders: recording (once per channel and external id), cancelling and refunding, and
keeping the customer's order figures current in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from core import idempotency
from core import validation as v
from core.context import ServiceContext
from core.errors import Conflict, NotFound, UserError
from core.events import OrderCancelled, OrderRecorded, OrderRefunded
from core.models import Customer, Order, OrderLine, OrderStatus
from core.services import order_months
from core.services.customers import refresh_order_figures


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
        where = f"lines[{n}]"
        if line.quantity < 1 or line.quantity > 100_000:
            raise UserError("quantity must be between 1 and 100000", f"{where}.quantity", "invalid_quantity")
        price = v.amount(line.unit_price, f"{where}.unitPrice")
        out.append(OrderLine(
            sku=v.text(line.sku, f"{where}.sku", max_length=100),
            name=v.text(line.name, f"{where}.name", max_length=200, required=False),
            category=v.text(line.category, f"{where}.category", max_length=100, required=False) or None,
            quantity=line.quantity, unit_price=price, amount=price * line.quantity,
        ))
    return out


async def record_order(ctx: ServiceContext, data: OrderData) -> tuple[Order, bool]:
    """Record an order once. The same channel and external id again returns the order
    already recorded (``False``), or refuses if the amount or customer differ."""
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
    # The customer's row lock comes first: the same order sent twice at once then queues
    # here, and the second sees the first's order below instead of colliding with it.
    customer = await ctx.session.get(Customer, data.customer_id, with_for_update=ctx.dialect == "postgresql")
    existing = await ctx.session.scalar(
        select(Order).where(Order.channel == channel, Order.external_id == external_id)
        .options(selectinload(Order.lines)).execution_options(populate_existing=True)
    )
    if existing is not None:
        if existing.customer_id != data.customer_id or existing.amount != amount:
            raise Conflict(
                f"order {external_id!r} from {channel} was already recorded with another "
                "customer or amount", "externalId",
            )
        return existing, False
    if customer is None:
        raise NotFound("customer", data.customer_id, "customerId")
    now = ctx.now()
    order = Order(customer_id=customer.id, channel=channel, external_id=external_id,
                  currency=currency, amount=amount, refunded_amount=0, status=data.status,
                  placed_at=placed_at, created_at=now, updated_at=now, lines=lines)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(order)
            await ctx.session.flush()
    except IntegrityError:
        # Recorded at this moment for another customer (whose lock we do not hold).
        raise Conflict(f"order {external_id!r} from {channel} was already recorded with another customer",
                       "externalId") from None
    await order_months.keep(ctx, customer, order)
    customer.order_count += 1
    customer.total_spent += amount
    if customer.first_order_at is None or placed_at < customer.first_order_at:
        customer.first_order_at = placed_at
    if customer.last_order_at is None or placed_at > customer.last_order_at:
        customer.last_order_at = placed_at
    await ctx.session.flush()
    await ctx.emit(OrderRecorded(order))
    return order, True


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
