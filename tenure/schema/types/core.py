"""The core's record types: customers, their orders, interactions and tasks, and staff.

Resolvers receive ORM rows as ``self`` and read related rows through the request's
dataloaders (:mod:`tenure.schema.loaders`), never one query per row.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from sqlalchemy import literal, select, union_all
from strawberry.types import Info

from tenure.core import models
from tenure.core.models import Role
from tenure.schema import loaders
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.relay import (
    After,
    Before,
    Connection,
    Edge,
    First,
    Last,
    Node,
    PageInfo,
    Window,
    id_of,
    node,
    paginate,
)
from tenure.schema.types.common import JSON, Long, Money


@strawberry.enum(description="Where an order stands.")
class OrderStatus(Enum):
    PLACED = strawberry.enum_value("placed", description="Recorded, not yet paid.")
    PAID = strawberry.enum_value("paid", description="Paid in full.")
    CANCELLED = strawberry.enum_value("cancelled", description="Called off: it counts for nothing (net 0).")
    REFUNDED = strawberry.enum_value("refunded", description="Paid, then refunded in full.")
    PARTIALLY_REFUNDED = strawberry.enum_value(
        "partially_refunded", description="Paid, then refunded in part: `refunded` says how much.")


@strawberry.enum(description="Where a task stands.")
class TaskStatus(Enum):
    OPEN = strawberry.enum_value("open", description="Still to do.")
    DONE = strawberry.enum_value("done", description="Completed: `completedAt` says when.")
    CANCELLED = strawberry.enum_value("cancelled", description="Dropped without being done.")


@strawberry.type(description="A member of staff: a customer's owner, a task's assignee.")
@node(models.StaffUser, allow(*STAFF))
class StaffUser(Node):
    name: str = strawberry.field(description="The full name, as shown to colleagues.")
    email: str = strawberry.field(description="The work email address; unique among staff users.")
    active: bool = strawberry.field(description="False once the staff user has left: kept for history, not assignable.")


@strawberry.type(description="How another system knows the customer (kind is e.g. 'pos', 'shop').")
class Identity:
    kind: str = strawberry.field(description="The other system, such as `pos` or `shop`.")
    value: str = strawberry.field(description="The customer's id or number in that system.")


@strawberry.type(description="What the customer agreed to be contacted by.")
class Consent:
    email: bool = strawberry.field(description="May be sent email.")
    sms: bool = strawberry.field(description="May be sent text messages.")
    push: bool = strawberry.field(description="May be sent push notifications.")


@strawberry.type(description="One line of an order.")
class OrderLine:
    sku: str = strawberry.field(description="The product's stock-keeping unit.")
    name: str = strawberry.field(description="The product's name as sold; empty when the channel gave none.")
    category: str | None = strawberry.field(description="The product's category; null when the channel gave none.")
    quantity: int = strawberry.field(description="How many were bought.")
    unit_price: Long = strawberry.field(description="The price of one, in minor units of the order's currency.")
    amount: Long = strawberry.field(description="Minor units: quantity x unitPrice.")


@strawberry.type(description="A purchase, recorded once per channel and external id.")
@node(models.Order, allow(*BACKOFFICE, scope="orders:read"))
class Order(Node):
    channel: str = strawberry.field(description="Where it was placed, such as `shop` or `pos`.")
    external_id: str = strawberry.field(description="The order's id in that channel; unique per channel.")
    currency: str = strawberry.field(description="The ISO 4217 code of the currency it was paid in.")
    placed_at: datetime = strawberry.field(description="When the customer placed it.")
    created_at: datetime = strawberry.field(description="When Tenure recorded it.")
    # A plain attribute: the row holds the enum's value ("paid"), which the enum type
    # serialises itself, so 500 orders on a page cost no resolver call each.
    status: OrderStatus = strawberry.field(description="Where the order stands.")

    @strawberry.field(description="What was charged.")
    def amount(self: models.Order) -> Money:
        return Money(amount=Long(self.amount), currency=self.currency)

    @strawberry.field(description="What has been refunded so far.")
    def refunded(self: models.Order) -> Money:
        return Money(amount=Long(self.refunded_amount), currency=self.currency)

    @strawberry.field(description="What the customer kept paying: amount less refunds (0 if cancelled).")
    def net(self: models.Order) -> Money:
        return Money(amount=Long(self.net_amount), currency=self.currency)

    @strawberry.field(description="What was bought, in the order the channel listed it.")
    async def lines(self: models.Order, info: Info) -> list[OrderLine]:
        return await info.context.loader(loaders.lines_by_order).load(self.id)

    @strawberry.field(description="Who placed it.")
    async def customer(self: models.Order, info: Info) -> Customer:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="Something that happened between the business and the customer.")
@node(models.Interaction, allow(*BACKOFFICE, scope="customers:read"))
class Interaction(Node):
    kind: str = strawberry.field(description="What happened, such as `visit`, `call`, `email_opened` or `complaint`.")
    channel: str = strawberry.field(description="Where it happened, such as `phone`, `web` or `store`.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    summary: str = strawberry.field(description="One line on what happened; empty when none was given.")
    external_id: str | None = strawberry.field(
        description="Its id in the channel, unique per channel (logging it again changes nothing); null when none.")

    @strawberry.field(description="The details the channel sent, as a JSON object (empty when none).")
    def payload(self: models.Interaction) -> JSON:
        return cast(JSON, self.payload)

    @strawberry.field(description="The customer it happened with.")
    async def customer(self: models.Interaction, info: Info) -> Customer:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="Follow-up work for a person, raised by hand or by a plugin.")
@node(models.Task, allow(*STAFF, Role.INTEGRATION))
class Task(Node):
    title: str = strawberry.field(description="What to do, in a line.")
    reason: str = strawberry.field(description="Why it needs doing; empty when none was given.")
    due_at: datetime | None = strawberry.field(description="When it should be done by; null for no deadline.")
    created_at: datetime = strawberry.field(description="When it was raised.")
    completed_at: datetime | None = strawberry.field(description="When it was done; null while open or if cancelled.")
    source: str = strawberry.field(description="What raised it: 'manual' or a plugin's name.")
    source_key: str | None = strawberry.field(description="The cause within the source; one open task per cause.")
    # The row's value, serialised by the enum type (as Order.status).
    status: TaskStatus = strawberry.field(description="Where the task stands.")

    @strawberry.field(description="Who is to do it; null while unassigned.")
    async def assignee(self: models.Task, info: Info) -> StaffUser | None:
        if self.assignee_id is None:
            return None
        return await info.context.loader(loaders.staff_by_id).load(self.assignee_id)

    @strawberry.field(description="The customer it concerns; null for a task about no one customer.")
    async def customer(self: models.Task, info: Info) -> Customer | None:
        if self.customer_id is None:
            return None
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="A plugin's entry on a customer's timeline (points earned, tier changed ...).")
class TimelineEvent:
    id: strawberry.ID = id_of("Event", "id", required=True,
                              description="The global id of the event (an `Event` in the event log).")
    type: str = strawberry.field(description="The event type, dotted, such as `loyalty.points_earned`.")
    source: str = strawberry.field(description="The plugin that recorded it (`core` for the core).")
    summary: str = strawberry.field(description="One line for the timeline.")
    occurred_at: datetime = strawberry.field(description="When it happened.")

    @strawberry.field(description="The event's details as a JSON object; their shape depends on `type`.")
    def data(self: models.Event) -> JSON:
        return cast(JSON, self.data)


@strawberry.type(description="One moment of a customer's history; exactly one of order, interaction, event is set.")
class TimelineEntry:
    at: datetime = strawberry.field(description="When it happened: the order's placedAt, the interaction's occurredAt.")
    kind: str = strawberry.field(description="Which of the three it is: `order`, `interaction` or `event`.")
    summary: str = strawberry.field(description="One line for the timeline.")
    order: Order | None = strawberry.field(default=None, description="The order, when kind is `order`; else null.")
    interaction: Interaction | None = strawberry.field(
        default=None, description="The interaction, when kind is `interaction`; else null.")
    event: TimelineEvent | None = strawberry.field(
        default=None, description="The plugin's event, when kind is `event`; else null.")


NESTED_DEFAULT = 10


def consent_of(customer: models.Customer) -> Consent:
    """The customer's consent flags (shared by ``Customer`` and ``Member``)."""
    return Consent(email=customer.consent_email, sms=customer.consent_sms, push=customer.consent_push)


async def emails_of(customer: models.Customer, info: Info) -> list[str]:
    """The customer's email addresses, through the request's contacts loader."""
    contacts = await info.context.loader(loaders.contacts_by_customer).load(customer.id)
    return [c.value for c in contacts if c.kind == "email"]


@strawberry.type(description="A person or company the business wants to keep.")
@node(models.Customer, allow(*BACKOFFICE, scope="customers:read"))
class Customer(Node):
    name: str = strawberry.field(description="The person's or company's name.")
    source_channel: str | None = strawberry.field(
        description="Where the customer came from, such as `shop` or `referral`; null when unknown.")
    birthday: date | None = strawberry.field(description="The date of birth; null when unknown.")
    locale: str | None = strawberry.field(
        description="The language for messages, as a BCP 47 tag such as `en` or `de-CH`; null for the default.")
    created_at: datetime = strawberry.field(description="When Tenure first recorded the customer.")
    updated_at: datetime = strawberry.field(description="When the customer's fields last changed.")
    first_order_at: datetime | None = strawberry.field(description="When the first order was placed; null before any.")
    last_order_at: datetime | None = strawberry.field(description="When the latest order was placed; null before any.")
    order_count: int = strawberry.field(description="Orders not cancelled.")
    last_interaction_at: datetime | None = strawberry.field(
        description="When the latest interaction happened; null before any.")

    @strawberry.field(description="Net revenue from this customer so far (historic CLV).")
    def total_spent(self: models.Customer, info: Info) -> Money:
        return Money(amount=Long(self.total_spent), currency=info.context.settings.currency)

    @strawberry.field(description="What the customer agreed to be contacted by.")
    def consent(self: models.Customer) -> Consent:
        return consent_of(self)

    @strawberry.field(description="The customer's email addresses, the first one given first.")
    async def emails(self: models.Customer, info: Info) -> list[str]:
        return await emails_of(self, info)

    @strawberry.field(description="The customer's phone numbers, the first one given first.")
    async def phones(self: models.Customer, info: Info) -> list[str]:
        contacts = await info.context.loader(loaders.contacts_by_customer).load(self.id)
        return [c.value for c in contacts if c.kind == "phone"]

    @strawberry.field(description="How other systems (till, shop) know the customer.")
    async def identities(self: models.Customer, info: Info) -> list[Identity]:
        rows = await info.context.loader(loaders.identities_by_customer).load(self.id)
        return [Identity(kind=r.kind, value=r.value) for r in rows]

    @strawberry.field(description="Free labels staff and integrations put on the customer.")
    async def tags(self: models.Customer, info: Info) -> list[str]:
        return [t.tag for t in await info.context.loader(loaders.tags_by_customer).load(self.id)]

    @strawberry.field(description="The account manager.")
    async def owner(self: models.Customer, info: Info) -> StaffUser | None:
        if self.owner_id is None:
            return None
        return await info.context.loader(loaders.staff_by_id).load(self.owner_id)

    @strawberry.field(description="Newest first.")
    async def orders(
        self: models.Customer, info: Info, first: First = NESTED_DEFAULT, after: After = None,
        last: Last = None, before: Before = None,
    ) -> Connection[Order]:
        return await _latest(info, models.Order, models.Order.placed_at, self.id,
                             Window(first, after, last, before), lambda o: o.placed_at)

    @strawberry.field(description="Newest first.")
    async def interactions(
        self: models.Customer, info: Info, first: First = NESTED_DEFAULT, after: After = None,
        last: Last = None, before: Before = None,
    ) -> Connection[Interaction]:
        return await _latest(info, models.Interaction, models.Interaction.occurred_at, self.id,
                             Window(first, after, last, before), lambda i: i.occurred_at)

    @strawberry.field(description="Newest first; open ones when status is OPEN.")
    async def tasks(
        self: models.Customer, info: Info, first: First = NESTED_DEFAULT,
        status: Annotated[TaskStatus | None, strawberry.argument(
            description="Only tasks with this status; null for every task.")] = None,
        after: After = None, last: Last = None, before: Before = None,
    ) -> Connection[Task]:
        extra = models.Task.status == status.value if status else None
        return await _latest(info, models.Task, models.Task.created_at, self.id,
                             Window(first, after, last, before), lambda t: t.created_at, extra=extra,
                             key=("tasks", status))

    @strawberry.field(description="Interactions, orders and plugin events, newest first.")
    async def timeline(
        self: models.Customer, info: Info, first: First = 20, after: After = None,
        last: Last = None, before: Before = None,
    ) -> Connection[TimelineEntry]:
        return await _timeline(info, self.id, Window(first, after, last, before))


async def _latest(info: Info, model: Any, column: Any, customer_id: int, window: Window,
                  at: object, *, extra: object = None, key: object = None) -> Connection:
    """The newest rows of one customer. The first page is batched across the customers of
    a list; any other page (after or before a cursor, or the last items) is one keyset query
    of its own."""
    from tenure.schema.relay import check_first

    context = info.context
    first = check_first(window.first, context.settings.max_page_size)
    counter = context.loader(loaders.count_per_customer(model, extra=extra, name=key), key=(key or model, "count"))
    if not window.plain:
        stmt = select(model).where(model.customer_id == customer_id)
        if extra is not None:
            stmt = stmt.where(extra)  # type: ignore[arg-type]

        async def run(query: Any) -> list[Any]:
            async with context.db() as session:
                return list((await session.execute(query)).all())

        return await paginate(run, stmt, [(column, True), (model.id, True)], first=first, after=window.after,
                              last=window.last, before=window.before, cap=context.settings.max_page_size,
                              count=lambda: counter.load(customer_id))
    load = context.loader(loaders.latest_per_customer(model, column, first, extra=extra, name=key),
                          key=(key or model, "latest", first))
    rows = await load.load(customer_id)
    edges = [Edge(node=r, key=[at(r), r.id]) for r in rows[:first]]  # type: ignore[operator]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(rows) > first, has_previous_page=False,
                           start_cursor=edges[0].encoded() if edges else None,
                           end_cursor=edges[-1].encoded() if edges else None),
        count=lambda: counter.load(customer_id),
    )


async def _timeline(info: Info, customer_id: int, window: Window) -> Connection[TimelineEntry]:
    context = info.context
    parts = union_all(
        select(literal("interaction").label("kind"), models.Interaction.id.label("ref"),
               models.Interaction.occurred_at.label("at")).where(models.Interaction.customer_id == customer_id),
        select(literal("order").label("kind"), models.Order.id.label("ref"),
               models.Order.placed_at.label("at")).where(models.Order.customer_id == customer_id),
        select(literal("event").label("kind"), models.Event.id.label("ref"),
               models.Event.occurred_at.label("at")).where(
            models.Event.customer_id == customer_id, models.Event.on_timeline.is_(True)),
    ).subquery()

    async def run(stmt: object) -> list[object]:
        async with context.db() as session:
            return list((await session.execute(stmt)).all())

    from sqlalchemy import type_coerce

    from tenure.core.db import UTCDateTime

    at = type_coerce(parts.c.at, UTCDateTime())
    order = [(at, True), (parts.c.kind, True), (parts.c.ref, True)]
    page = await paginate(run, select(parts.c.kind, parts.c.ref), order,
                          first=window.first, after=window.after, last=window.last, before=window.before,
                          cap=context.settings.max_page_size,
                          node=lambda row: (row[0], row[1]))
    refs = [edge.node for edge in page.edges]
    ids = {kind: [ref for k, ref in refs if k == kind] for kind in ("order", "interaction", "event")}
    found: dict[tuple[str, int], Any] = {}
    for order in await context.loader(loaders.orders_by_id).load_many(ids["order"]):
        if order is not None:
            found["order", order.id] = order
    for row in await context.loader(loaders.by_id_cached(models.Interaction)).load_many(ids["interaction"]):
        if row is not None:
            found["interaction", row.id] = row
    for row in await context.loader(loaders.by_id_cached(models.Event)).load_many(ids["event"]):
        if row is not None:
            found["event", row.id] = row
    edges = []
    for edge in page.edges:
        kind, ref = edge.node
        row = found[kind, ref]
        if kind == "order":
            entry = TimelineEntry(at=row.placed_at, kind=kind, summary=f"Order {row.external_id} ({row.status})",
                                  order=row)
        elif kind == "interaction":
            entry = TimelineEntry(at=row.occurred_at, kind=kind, summary=row.summary or row.kind, interaction=row)
        else:
            entry = TimelineEntry(at=row.occurred_at, kind=kind, summary=row.summary, event=row)
        edges.append(Edge(node=entry, key=edge.key))

    async def count() -> int:
        from sqlalchemy import func

        async with context.db() as session:
            return int(await session.scalar(select(func.count()).select_from(parts)) or 0)

    return Connection(edges=edges, page_info=page.page_info, count=count)
