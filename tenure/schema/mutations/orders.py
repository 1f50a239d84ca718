"""recordOrder, recordOrders, cancelOrder, refundOrder, logInteraction."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError as DomainUserError
from tenure.core.services import interactions as interaction_service
from tenure.core.services import orders as service
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, allow
from tenure.schema.types.common import JSON, Long, UserError
from tenure.schema.types.core import Interaction, Order, OrderStatus


def _order_data(input: RecordOrderInput) -> service.OrderData:
    return service.OrderData(
        customer_id=parse_id(input.customer_id, "customerId"),
        channel=input.channel,
        external_id=input.external_id,
        currency=input.currency,
        amount=input.amount,
        lines=[service.LineData(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price,
                                name=line.name, category=line.category) for line in input.lines],
        placed_at=input.placed_at,
        status=input.status.value,
    )


@strawberry.input
class OrderLineInput:
    sku: str
    quantity: int
    unit_price: Long = strawberry.field(description="Minor units.")
    name: str = ""
    category: str | None = None


@strawberry.input(description="A purchase. The same channel and externalId again records nothing new.")
class RecordOrderInput:
    customer_id: strawberry.ID
    channel: str
    external_id: str
    currency: str
    amount: Long | None = strawberry.field(default=None, description="Minor units; the lines' sum when left out.")
    lines: list[OrderLineInput] = strawberry.field(default_factory=list)
    placed_at: datetime | None = None
    status: OrderStatus = OrderStatus.PAID


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError]


@strawberry.type
class RecordOrderPayload:
    order: Order | None
    created: bool = strawberry.field(description="False when this order had been recorded before.")
    user_errors: list[UserError]


@strawberry.input(description="Orders from a channel or POS system, recorded together; each once per channel "
                             "and externalId.")
class RecordOrdersInput:
    orders: list[RecordOrderInput] = strawberry.field(
        description="At most the page-size cap (TENURE_MAX_PAGE_SIZE) orders.")


@strawberry.type(description="What became of one order of a recordOrders batch.")
class RecordOrdersResult:
    index: int = strawberry.field(description="The order's position in the input, from 0.")
    order: Order | None
    created: bool = strawberry.field(description="False when this order had been recorded before.")
    user_errors: list[UserError] = strawberry.field(description="Why this order was refused; the others still land.")


@strawberry.type
class RecordOrdersPayload:
    results: list[RecordOrdersResult] = strawberry.field(description="One per input order, in the same order.")
    user_errors: list[UserError] = strawberry.field(description="Why the whole batch was refused (too many orders).")


@strawberry.input
class CancelOrderInput:
    order_id: strawberry.ID


@strawberry.input
class RefundOrderInput:
    order_id: strawberry.ID
    amount: Long | None = strawberry.field(default=None, description="Minor units; everything left when left out.")
    idempotency_key: str | None = strawberry.field(default=None, description="The same key twice refunds once.")


@strawberry.input
class LogInteractionInput:
    customer_id: strawberry.ID
    kind: str = strawberry.field(description="visit, login, call, email_opened, ticket_opened, complaint ...")
    channel: str
    occurred_at: datetime | None = None
    summary: str = ""
    payload: JSON | None = None
    external_id: str | None = strawberry.field(default=None, description="Logged once per channel and externalId.")


@strawberry.type
class InteractionPayload:
    interaction: Interaction | None
    created: bool
    user_errors: list[UserError]


@strawberry.type
class OrderMutations:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")])
    async def record_order(self, info: Info, input: RecordOrderInput) -> RecordOrderPayload:
        result, errors = await in_transaction(info, lambda ctx: service.record_order(ctx, _order_data(input)))
        order, created = result if result else (None, False)
        return RecordOrderPayload(order=order, created=created, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")],
                         description="Record many orders in one transaction, set-based: each gets its own result, "
                                     "and a refused order does not stop the others.")
    async def record_orders(self, info: Info, input: RecordOrdersInput) -> RecordOrdersPayload:
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
                               user_errors=[UserError.of(o.error)] if o.error else [])
            for n, o in enumerate(outcomes or [])], user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")])
    async def cancel_order(self, info: Info, input: CancelOrderInput) -> OrderPayload:
        order, errors = await in_transaction(
            info, lambda ctx: service.cancel_order(ctx, parse_id(input.order_id, "orderId")))
        return OrderPayload(order=order, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="orders:write")])
    async def refund_order(self, info: Info, input: RefundOrderInput) -> OrderPayload:
        order, errors = await in_transaction(
            info, lambda ctx: service.refund_order(ctx, parse_id(input.order_id, "orderId"), input.amount,
                                                   input.idempotency_key))
        return OrderPayload(order=order, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="interactions:write")])
    async def log_interaction(self, info: Info, input: LogInteractionInput) -> InteractionPayload:
        result, errors = await in_transaction(info, lambda ctx: interaction_service.log_interaction(
            ctx, parse_id(input.customer_id, "customerId"), input.kind, input.channel, input.occurred_at,
            input.summary, input.payload, input.external_id))  # type: ignore[arg-type]
        interaction, created = result if result else (None, False)
        return InteractionPayload(interaction=interaction, created=created, user_errors=errors)  # type: ignore[arg-type]
