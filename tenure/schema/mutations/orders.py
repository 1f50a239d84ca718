"""recordOrder, recordOrders, cancelOrder, refundOrder, logInteraction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError as DomainUserError
from tenure.core.services import interactions as interaction_service
from tenure.core.services import orders as service
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, allow
from tenure.schema.types.common import JSON, USER_ERRORS, Long, UserError
from tenure.schema.types.core import Interaction, Order, OrderStatus


def _order_error(index: int, error: DomainUserError) -> UserError:
    """An order's refusal, its field named from the mutation's input (``orders[3].lines``)."""
    field = f"orders[{index}].{error.field}" if error.field else f"orders[{index}]"
    return UserError(field=field, message=error.message, code=error.code)


def _order_data(input: RecordOrderInput) -> service.OrderData:
    return service.OrderData(
        customer_id=parse_id(input.customer_id, "customerId", "Customer"),
        channel=input.channel,
        external_id=input.external_id,
        currency=input.currency,
        amount=input.amount,
        lines=[service.LineData(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price,
                                name=line.name, category=line.category) for line in input.lines],
        placed_at=input.placed_at,
        status=str(input.status.value),
    )


@strawberry.input(description="One line of an order.")
class OrderLineInput:
    sku: str = strawberry.field(description="The product's stock-keeping unit, at most 100 characters.")
    quantity: int = strawberry.field(description="How many were bought, from 1 to 100000.")
    unit_price: Long = strawberry.field(description="The price of one, in minor units of the order's currency.")
    name: str = strawberry.field(default="", description="The product's name, at most 200 characters.")
    category: str | None = strawberry.field(
        default=None, description="The product's category, at most 100 characters; null for none.")


@strawberry.input(description="A purchase. The same channel and externalId again records nothing new.")
class RecordOrderInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer who placed it.")
    channel: str = strawberry.field(
        description="Where it was placed, such as `shop` or `pos` (at most 50 characters, stored in lower case).")
    external_id: str = strawberry.field(description="The order's id in that channel, at most 200 characters.")
    currency: str = strawberry.field(description="The ISO 4217 code of the currency it was paid in, such as USD.")
    amount: Long | None = strawberry.field(default=None, description="Minor units; the lines' sum when left out.")
    lines: list[OrderLineInput] = strawberry.field(
        default_factory=list, description="What was bought, at most 500 lines; may be left out when amount is given.")
    placed_at: datetime | None = strawberry.field(
        default=None, description="When it was placed, with a time zone, not in the future; now when left out.")
    status: OrderStatus = strawberry.field(
        default=OrderStatus.PAID,
        description="PLACED or PAID, PAID unless given; a new order is never cancelled or refunded.")


@strawberry.type(description="The result of cancelOrder or refundOrder.")
class OrderPayload:
    order: Order | None = strawberry.field(description="The order after the change; null when it was refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of recordOrder.")
class RecordOrderPayload:
    order: Order | None = strawberry.field(
        description="The order recorded (or recorded before); null when it was refused.")
    created: bool = strawberry.field(description="False when this order had been recorded before.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Orders from a channel or POS system, recorded together; each once per channel "
                             "and externalId.")
class RecordOrdersInput:
    orders: list[RecordOrderInput] = strawberry.field(
        description="At most the page-size cap (TENURE_MAX_PAGE_SIZE) orders.")


@strawberry.type(description="What became of one order of a recordOrders batch.")
class RecordOrdersResult:
    index: int = strawberry.field(description="The order's position in the input, from 0.")
    order: Order | None = strawberry.field(
        description="The order recorded (or recorded before); null when this one was refused.")
    created: bool = strawberry.field(description="False when this order had been recorded before.")
    user_errors: list[UserError] = strawberry.field(description="Why this order was refused; the others still land.")


@strawberry.type(description="The result of recordOrders.")
class RecordOrdersPayload:
    results: list[RecordOrdersResult] = strawberry.field(description="One per input order, in the same order.")
    user_errors: list[UserError] = strawberry.field(description="Why the whole batch was refused (too many orders).")


@strawberry.input(description="The order to cancel.")
class CancelOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order's id; an order with refunds cannot be cancelled.")


@strawberry.input(description="A refund of all or part of an order.")
class RefundOrderInput:
    order_id: strawberry.ID = strawberry.field(description="The order's id; a cancelled order cannot be refunded.")
    amount: Long | None = strawberry.field(
        default=None,
        description="How much, in minor units of the order's currency, at most what is left; everything left when "
                    "left out.")
    idempotency_key: str | None = strawberry.field(default=None, description="The same key twice refunds once.")


@strawberry.input(description="Something that happened between the business and a customer.")
class LogInteractionInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer it happened with.")
    kind: str = strawberry.field(
        description="What happened: visit, login, call, email_opened, ticket_opened, complaint ... (at most 50 "
                    "characters, stored in lower case).")
    channel: str = strawberry.field(
        description="Where it happened, such as `web`, `phone` or `store` (at most 50 characters, stored in lower "
                    "case).")
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When it happened, with a time zone, not in the future; now when left out.")
    summary: str = strawberry.field(default="", description="One line on what happened, at most 500 characters.")
    payload: JSON | None = strawberry.field(
        default=None, description="Details to keep, as a JSON object of limited size; null for none.")
    external_id: str | None = strawberry.field(default=None, description="Logged once per channel and externalId.")


@strawberry.type(description="The result of logInteraction.")
class InteractionPayload:
    interaction: Interaction | None = strawberry.field(
        description="The interaction logged (or logged before); null when it was refused.")
    created: bool = strawberry.field(
        description="False when an interaction with this channel and externalId had been logged before.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type
class OrderMutations:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")],
                         description="Record a purchase; safe to send twice (once per channel and externalId).")
    async def record_order(self, info: Info, input: Annotated[RecordOrderInput, strawberry.argument(
            description="The order.")]) -> RecordOrderPayload:
        result, errors = await in_transaction(info, lambda ctx: service.record_order(ctx, _order_data(input)))
        order, created = result if result else (None, False)
        return RecordOrderPayload(order=order, created=created, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")],
                         description="Record many orders in one transaction, set-based: each gets its own result, "
                                     "and a refused order does not stop the others.")
    async def record_orders(self, info: Info, input: Annotated[RecordOrdersInput, strawberry.argument(
            description="The orders.")]) -> RecordOrdersPayload:
        cap = info.context.runtime.settings.max_page_size
        if len(input.orders) > cap:
            return RecordOrdersPayload(results=[], user_errors=[UserError(
                field="orders", message=f"at most {cap} orders at once (TENURE_MAX_PAGE_SIZE), got {len(input.orders)}",
                code="too_many")])
        given: list[service.OrderData | DomainUserError] = []
        for item in input.orders:
            try:
                given.append(_order_data(item))
            except DomainUserError as error:
                given.append(error)

        async def work(ctx: ServiceContext) -> list[service.Outcome]:
            valid = [g for g in given if isinstance(g, service.OrderData)]
            outcomes = iter(await service.record_orders(ctx, valid))
            return [service.Outcome(error=g) if isinstance(g, DomainUserError) else next(outcomes) for g in given]

        outcomes, errors = await in_transaction(info, work)
        return RecordOrdersPayload(results=[
            RecordOrdersResult(index=n, order=o.order, created=o.created,  # type: ignore[arg-type]
                               user_errors=[_order_error(n, o.error)] if o.error else [])
            for n, o in enumerate(outcomes or [])], user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")],
                         description="Call off an order: it then counts for nothing in the customer's figures.")
    async def cancel_order(self, info: Info, input: Annotated[CancelOrderInput, strawberry.argument(
            description="The order to cancel.")]) -> OrderPayload:
        order, errors = await in_transaction(
            info, lambda ctx: service.cancel_order(ctx, parse_id(input.order_id, "orderId", "Order")))
        return OrderPayload(order=order, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")],
                         description="Refund all or part of a paid order.")
    async def refund_order(self, info: Info, input: Annotated[RefundOrderInput, strawberry.argument(
            description="The order, the amount and an idempotency key.")]) -> OrderPayload:
        order, errors = await in_transaction(
            info, lambda ctx: service.refund_order(ctx, parse_id(input.order_id, "orderId", "Order"), input.amount,
                                                   input.idempotency_key))
        return OrderPayload(order=order, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="interactions:write")],
                         description="Log something that happened with a customer: a visit, a call, a complaint.")
    async def log_interaction(self, info: Info, input: Annotated[LogInteractionInput, strawberry.argument(
            description="The interaction.")]) -> InteractionPayload:
        result, errors = await in_transaction(info, lambda ctx: interaction_service.log_interaction(
            ctx, parse_id(input.customer_id, "customerId", "Customer"), input.kind, input.channel, input.occurred_at,
            input.summary, input.payload, input.external_id))  # type: ignore[arg-type]
        interaction, created = result if result else (None, False)
        return InteractionPayload(interaction=interaction, created=created, user_errors=errors)  # type: ignore[arg-type]
