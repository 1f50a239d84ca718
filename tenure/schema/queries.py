"""The core's root query fields."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import Select, func, select
from strawberry.types import Info

from tenure.core import models
from tenure.core.models import Role
from tenure.core.services.customers import CustomerFilter, duplicate_candidates_query, filter_customers
from tenure.schema import loaders
from tenure.schema.permissions import BACKOFFICE, EVERYONE, STAFF, allow
from tenure.schema.relay import Connection, count_of, paginate
from tenure.schema.types.core import Customer, Order, StaffUser, Task, TaskStatus
from tenure.schema.types.events import Event, WebhookDelivery, WebhookSubscription


def to_int(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if not 0 < number < 2**63:  # ids are positive 64-bit integers; anything else matches no row
        raise GraphQLError(f"{field}: {value!r} is not an id", extensions={"code": "BAD_USER_INPUT", "field": field})
    return number


def runner(info: Info) -> Any:
    async def run(stmt: Select[Any]) -> list[Any]:
        async with info.context.db() as session:
            return list((await session.execute(stmt)).all())

    return run


def counter(info: Info, stmt: Select[Any]) -> Any:
    async def count() -> int:
        async with info.context.db() as session:
            return int(await session.scalar(count_of(stmt)) or 0)

    return count


@strawberry.enum
class CustomerOrderField(Enum):
    CREATED_AT = "created_at"
    NAME = "name"
    LAST_ORDER_AT = "last_order_at"
    TOTAL_SPENT = "total_spent"
    ORDER_COUNT = "order_count"


@strawberry.enum
class Direction(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input
class CustomerOrderBy:
    field: CustomerOrderField = CustomerOrderField.CREATED_AT
    direction: Direction = Direction.DESC


@strawberry.input(description="Every condition given must hold.")
class CustomerFilterInput:
    search: str | None = strawberry.field(
        default=None, description="Part of the name, or a whole email, phone or identity value.")
    tags: list[str] | None = strawberry.field(default=None, description="Customers with any of these tags.")
    owner_id: strawberry.ID | None = None
    source_channel: str | None = None
    ids: list[strawberry.ID] | None = None


@strawberry.input
class TaskFilterInput:
    mine: bool = strawberry.field(default=False, description="Tasks assigned to the staff user of the calling key.")
    assignee_id: strawberry.ID | None = None
    customer_id: strawberry.ID | None = None
    status: TaskStatus | None = None
    source: str | None = None


@strawberry.type(description="Two customers that share an email or phone: likely the same person.")
class DuplicateCandidate:
    kind: str
    value: str
    first: Customer
    second: Customer


@strawberry.type(description="A plugin this server runs.")
class PluginSummary:
    name: str = strawberry.field(description="The plugin's name, as in TENURE_PLUGINS (`core` for the core).")
    version: str
    summary: str = strawberry.field(description="One line on what the plugin does.")


@strawberry.type(description="What this server runs: a client shows the sections of the plugins that are on.")
class ServerInfo:
    version: str = strawberry.field(description="Tenure's version.")
    currency: str = strawberry.field(
        description="The business's currency (TENURE_CURRENCY): amounts without their own currency, such as "
                    "spend to the next tier, are minor units of it.")
    plugins: list[PluginSummary] = strawberry.field(description="The enabled plugins, `core` first.")


@strawberry.type(description="Who is calling.")
class Viewer:
    role: str
    name: str
    staff_user: StaffUser | None
    customer_id: strawberry.ID | None


def customer_sort(order_by: CustomerOrderBy | None) -> list[tuple[Any, bool]]:
    order_by = order_by or CustomerOrderBy()
    column: Any = getattr(models.Customer, order_by.field.value)
    if order_by.field == CustomerOrderField.LAST_ORDER_AT:
        # Keyset cursors cannot step over NULLs: customers who never ordered sort as the
        # moment they were created.
        column = func.coalesce(models.Customer.last_order_at, models.Customer.created_at)
    desc = order_by.direction == Direction.DESC
    if order_by.field == CustomerOrderField.CREATED_AT:
        return [(models.Customer.id, desc)]
    return [(column, desc), (models.Customer.id, desc)]


@strawberry.type
class CoreQuery:
    @strawberry.field(permission_classes=[allow(*EVERYONE)])
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        staff = None
        if principal.staff_user_id is not None:
            staff = await info.context.loader(loaders.staff_by_id).load(principal.staff_user_id)
        return Viewer(role=principal.role.value, name=principal.name, staff_user=staff,
                      customer_id=strawberry.ID(str(principal.customer_id)) if principal.customer_id else None)

    @strawberry.field(permission_classes=[allow(*EVERYONE)],
                      description="Tenure's version and the plugins this server runs; works with introspection off.")
    def server_info(self, info: Info) -> ServerInfo:
        from tenure.core import __version__

        plugins = info.context.plugins
        return ServerInfo(version=__version__, currency=info.context.settings.currency, plugins=[
            PluginSummary(name=name, version=plugins.info(name).version, summary=plugins.info(name).summary)
            for name in plugins.names()])

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")])
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        return await info.context.loader(loaders.customers_by_id).load(to_int(id, "id"))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")])
    async def customers(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        filter: CustomerFilterInput | None = None,
        order_by: CustomerOrderBy | None = None,
    ) -> Connection[Customer]:
        criteria = None
        if filter is not None:
            criteria = CustomerFilter(
                search=filter.search, tags=filter.tags,
                owner_id=to_int(filter.owner_id, "filter.ownerId") if filter.owner_id else None,
                source_channel=filter.source_channel,
                ids=[to_int(i, "filter.ids") for i in filter.ids] if filter.ids is not None else None,
            )
        stmt = filter_customers(select(models.Customer), criteria)
        page = await paginate(runner(info), stmt, customer_sort(order_by), first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))
        # Rows of the page answer `order { customer }` and the like without another query.
        by_id = info.context.loader(loaders.customers_by_id)
        for edge in page.edges:
            by_id.prime(edge.node.id, edge.node)
        return page

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Pairs of customers that share an email or phone.")
    async def duplicate_candidates(self, info: Info, first: int = 20) -> list[DuplicateCandidate]:
        from tenure.schema.relay import check_first

        first = check_first(first, info.context.settings.max_page_size)
        rows = await runner(info)(duplicate_candidates_query(first))
        load = info.context.loader(loaders.customers_by_id)
        out = []
        for kind, value, a, b in rows:
            first_c, second_c = await load.load_many([a, b])
            out.append(DuplicateCandidate(kind=kind, value=value, first=first_c, second=second_c))
        return out

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="orders:read")])
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return await info.context.loader(loaders.orders_by_id).load(to_int(id, "id"))

    @strawberry.field(permission_classes=[allow(*STAFF, Role.INTEGRATION)], description="Newest first.")
    async def tasks(
        self, info: Info, first: int = 20, after: str | None = None, filter: TaskFilterInput | None = None
    ) -> Connection[Task]:
        stmt = select(models.Task)
        f = filter or TaskFilterInput()
        if f.mine:
            staff_id = info.context.principal.staff_user_id
            if staff_id is None:
                raise GraphQLError("mine: this key acts for no staff user (create it with --staff-email)",
                                   extensions={"code": "BAD_USER_INPUT", "field": "filter.mine"})
            stmt = stmt.where(models.Task.assignee_id == staff_id)
        if f.assignee_id is not None:
            stmt = stmt.where(models.Task.assignee_id == to_int(f.assignee_id, "filter.assigneeId"))
        if f.customer_id is not None:
            stmt = stmt.where(models.Task.customer_id == to_int(f.customer_id, "filter.customerId"))
        if f.status is not None:
            stmt = stmt.where(models.Task.status == f.status.value)
        if f.source is not None:
            stmt = stmt.where(models.Task.source == f.source)
        return await paginate(runner(info), stmt, [(models.Task.id, True)], first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(*STAFF)])
    async def staff_users(self, info: Info, first: int = 50, after: str | None = None) -> Connection[StaffUser]:
        stmt = select(models.StaffUser)
        return await paginate(runner(info), stmt, [(models.StaffUser.id, False)], first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(
        permission_classes=[allow(Role.ADMIN, Role.INTEGRATION, scope="events:read")],
        description="The event log, oldest first: pass the last cursor you saw as `after` to catch up.",
    )
    async def events(
        self, info: Info, first: int = 50, after: str | None = None, types: list[str] | None = None
    ) -> Connection[Event]:
        stmt = select(models.Event)
        if types:
            stmt = stmt.where(models.Event.type.in_(types))
        return await paginate(runner(info), stmt, [(models.Event.id, False)], first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(Role.ADMIN)])
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        rows = await runner(info)(select(models.WebhookSubscription).order_by(models.WebhookSubscription.id))
        return [r[0] for r in rows]

    @strawberry.field(permission_classes=[allow(Role.ADMIN)], description="Newest first.")
    async def webhook_deliveries(
        self, info: Info, subscription_id: strawberry.ID, first: int = 50, after: str | None = None
    ) -> Connection[WebhookDelivery]:
        stmt = select(models.WebhookDelivery).where(
            models.WebhookDelivery.subscription_id == to_int(subscription_id, "subscriptionId"))
        return await paginate(runner(info), stmt, [(models.WebhookDelivery.id, True)], first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))
