"""recordOrder, cancelOrder, refundOrder, logInteraction."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from core.context import ServiceContext
from core.services import interactions as interaction_service
from core.services import orders as service
from schema.mutations import in_transaction, parse_id
from schema.permissions import BACKOFFICE, allow
from schema.types.common import JSON, Long, UserError
from schema.types.core import Interaction, Order, OrderStatus


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
        async def work(ctx: ServiceContext) -> tuple[object, bool]:
            data = service.OrderData(
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
            return await service.record_order(ctx, data)

        result, errors = await in_transaction(info, work)
        order, created = result if result else (None, False)
        return RecordOrderPayload(order=order, created=created, user_errors=errors)  # type: ignore[arg-type]

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
