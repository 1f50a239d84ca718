"""The core's record types: customers, their orders, interactions and tasks, and staff.

Resolvers receive ORM rows as ``self`` and read related rows through the request's
dataloaders (:mod:`tenure.schema.loaders`), never one query per row.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, cast

import strawberry
from sqlalchemy import literal, select, union_all
from strawberry.types import Info

from tenure.core import models
from tenure.schema import loaders
from tenure.schema.relay import Connection, Edge, PageInfo, paginate
from tenure.schema.types.common import JSON, Long, Money


@strawberry.enum(description="Where an order stands.")
class OrderStatus(Enum):
    PLACED = "placed"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


@strawberry.enum
class TaskStatus(Enum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


@strawberry.type(description="A member of staff: a customer's owner, a task's assignee.")
class StaffUser:
    id: strawberry.ID
    name: str
    email: str
    active: bool


@strawberry.type(description="How another system knows the customer (kind is e.g. 'pos', 'shop').")
class Identity:
    kind: str
    value: str


@strawberry.type(description="What the customer agreed to be contacted by.")
class Consent:
    email: bool
    sms: bool
    push: bool


@strawberry.type(description="One line of an order.")
class OrderLine:
    sku: str
    name: str
    category: str | None
    quantity: int
    unit_price: Long = strawberry.field(description="Minor units.")
    amount: Long = strawberry.field(description="Minor units: quantity x unitPrice.")


@strawberry.type(description="A purchase, recorded once per channel and external id.")
class Order:
    id: strawberry.ID
    channel: str
    external_id: str
    currency: str
    placed_at: datetime
    created_at: datetime
    # A plain attribute: the row holds the enum's value ("paid"), which the enum type
    # serialises itself, so 500 orders on a page cost no resolver call each.
    status: OrderStatus

    @strawberry.field(description="What was charged.")
    def amount(self: models.Order) -> Money:
        return Money(amount=Long(self.amount), currency=self.currency)

    @strawberry.field(description="What has been refunded so far.")
    def refunded(self: models.Order) -> Money:
        return Money(amount=Long(self.refunded_amount), currency=self.currency)

    @strawberry.field(description="What the customer kept paying: amount less refunds (0 if cancelled).")
    def net(self: models.Order) -> Money:
        return Money(amount=Long(self.net_amount), currency=self.currency)

    @strawberry.field
    async def lines(self: models.Order, info: Info) -> list[OrderLine]:
        return await info.context.loader(loaders.lines_by_order).load(self.id)

    @strawberry.field
    async def customer(self: models.Order, info: Info) -> Customer:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="Something that happened between the business and the customer.")
class Interaction:
    id: strawberry.ID
    kind: str
    channel: str
    occurred_at: datetime
    summary: str
    external_id: str | None

    @strawberry.field
    def payload(self: models.Interaction) -> JSON:
        return cast(JSON, self.payload)

    @strawberry.field
    async def customer(self: models.Interaction, info: Info) -> Customer:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="Follow-up work for a person, raised by hand or by a plugin.")
class Task:
    id: strawberry.ID
    title: str
    reason: str
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    source: str = strawberry.field(description="What raised it: 'manual' or a plugin's name.")
    source_key: str | None = strawberry.field(description="The cause within the source; one open task per cause.")
    status: TaskStatus  # the row's value, serialised by the enum type (as Order.status)

    @strawberry.field
    async def assignee(self: models.Task, info: Info) -> StaffUser | None:
        if self.assignee_id is None:
            return None
        return await info.context.loader(loaders.staff_by_id).load(self.assignee_id)

    @strawberry.field
    async def customer(self: models.Task, info: Info) -> Customer | None:
        if self.customer_id is None:
            return None
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="A plugin's entry on a customer's timeline (points earned, tier changed ...).")
class TimelineEvent:
    id: strawberry.ID
    type: str
    source: str
    summary: str
    occurred_at: datetime

    @strawberry.field
    def data(self: models.Event) -> JSON:
        return cast(JSON, self.data)


@strawberry.type(description="One moment of a customer's history; exactly one of order, interaction, event is set.")
class TimelineEntry:
    at: datetime
    kind: str = strawberry.field(description="order, interaction or event")
    summary: str
    order: Order | None = None
    interaction: Interaction | None = None
    event: TimelineEvent | None = None


NESTED_DEFAULT = 10


def consent_of(customer: models.Customer) -> Consent:
    """The customer's consent flags (shared by ``Customer`` and ``Member``)."""
    return Consent(email=customer.consent_email, sms=customer.consent_sms, push=customer.consent_push)


async def emails_of(customer: models.Customer, info: Info) -> list[str]:
    """The customer's email addresses, through the request's contacts loader."""
    contacts = await info.context.loader(loaders.contacts_by_customer).load(customer.id)
    return [c.value for c in contacts if c.kind == "email"]


@strawberry.type(description="A person or company the business wants to keep.")
class Customer:
    id: strawberry.ID
    name: str
    source_channel: str | None
    birthday: date | None
    locale: str | None
    created_at: datetime
    updated_at: datetime
    first_order_at: datetime | None
    last_order_at: datetime | None
    order_count: int = strawberry.field(description="Orders not cancelled.")
    last_interaction_at: datetime | None

    @strawberry.field(description="Net revenue from this customer so far (historic CLV).")
    def total_spent(self: models.Customer, info: Info) -> Money:
        return Money(amount=Long(self.total_spent), currency=info.context.settings.currency)

    @strawberry.field
    def consent(self: models.Customer) -> Consent:
        return consent_of(self)

    @strawberry.field
    async def emails(self: models.Customer, info: Info) -> list[str]:
        return await emails_of(self, info)

    @strawberry.field
    async def phones(self: models.Customer, info: Info) -> list[str]:
        contacts = await info.context.loader(loaders.contacts_by_customer).load(self.id)
        return [c.value for c in contacts if c.kind == "phone"]

    @strawberry.field
    async def identities(self: models.Customer, info: Info) -> list[Identity]:
        rows = await info.context.loader(loaders.identities_by_customer).load(self.id)
        return [Identity(kind=r.kind, value=r.value) for r in rows]

    @strawberry.field
    async def tags(self: models.Customer, info: Info) -> list[str]:
        return [t.tag for t in await info.context.loader(loaders.tags_by_customer).load(self.id)]

    @strawberry.field(description="The account manager.")
    async def owner(self: models.Customer, info: Info) -> StaffUser | None:
        if self.owner_id is None:
            return None
        return await info.context.loader(loaders.staff_by_id).load(self.owner_id)

    @strawberry.field(description="Newest first.")
    async def orders(
        self: models.Customer, info: Info, first: int = NESTED_DEFAULT, after: str | None = None
    ) -> Connection[Order]:
        return await _latest(info, models.Order, models.Order.placed_at, self.id, first,
                             lambda o: o.placed_at, after=after)

    @strawberry.field(description="Newest first.")
    async def interactions(
        self: models.Customer, info: Info, first: int = NESTED_DEFAULT, after: str | None = None
    ) -> Connection[Interaction]:
        return await _latest(info, models.Interaction, models.Interaction.occurred_at, self.id, first,
                             lambda i: i.occurred_at, after=after)

    @strawberry.field(description="Newest first; open ones when status is OPEN.")
    async def tasks(
        self: models.Customer, info: Info, first: int = NESTED_DEFAULT, status: TaskStatus | None = None,
        after: str | None = None,
    ) -> Connection[Task]:
        extra = models.Task.status == status.value if status else None
        return await _latest(info, models.Task, models.Task.created_at, self.id, first,
                             lambda t: t.created_at, extra=extra, key=("tasks", status), after=after)

    @strawberry.field(description="Interactions, orders and plugin events, newest first.")
    async def timeline(
        self: models.Customer, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[TimelineEntry]:
        return await _timeline(info, self.id, first, after)


async def _latest(info: Info, model: Any, column: Any, customer_id: int, first: int,
                  at: object, *, extra: object = None, key: object = None, after: str | None = None) -> Connection:
    """The newest ``first`` rows of one customer. The first page is batched across the
    customers of a list; a later page (``after`` a cursor) is one keyset query of its own."""
    from tenure.schema.relay import check_first

    context = info.context
    first = check_first(first, context.settings.max_page_size)
    counter = context.loader(loaders.count_per_customer(model, extra=extra, name=key), key=(key or model, "count"))
    if after is not None:
        stmt = select(model).where(model.customer_id == customer_id)
        if extra is not None:
            stmt = stmt.where(extra)  # type: ignore[arg-type]

        async def run(query: Any) -> list[Any]:
            async with context.db() as session:
                return list((await session.execute(query)).all())

        return await paginate(run, stmt, [(column, True), (model.id, True)], first=first, after=after,
                              cap=context.settings.max_page_size, count=lambda: counter.load(customer_id))
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


async def _timeline(info: Info, customer_id: int, first: int, after: str | None) -> Connection[TimelineEntry]:
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
                          first=first, after=after, cap=context.settings.max_page_size,
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
