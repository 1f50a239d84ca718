"""The core's root query fields."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import Select, func, select
from strawberry.types import Info

from tenure.core import models
from tenure.core.models import Role
from tenure.core.services.customers import CustomerFilter, duplicate_candidates_query, filter_customers
from tenure.schema import loaders
from tenure.schema.permissions import BACKOFFICE, EVERYONE, STAFF, allow
from tenure.schema.relay import (
    After,
    Before,
    Connection,
    First,
    InvalidId,
    Last,
    count_of,
    decode_id,
    paginate,
    to_global_id,
)
from tenure.schema.types.core import Customer, Order, StaffUser, Task, TaskStatus
from tenure.schema.types.events import Event, WebhookDelivery, WebhookSubscription


def to_int(value: Any, field: str, kind: str | None = None) -> int:
    """The primary key an id argument of a query names: a global id of the type ``kind``,
    or a plain decimal id."""
    try:
        return decode_id(value, kind)
    except InvalidId as error:
        raise GraphQLError(f"{field}: {error}", extensions={"code": "BAD_USER_INPUT", "field": field}) from None


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


@strawberry.enum(description="What a list of customers can be sorted by.")
class CustomerOrderField(Enum):
    CREATED_AT = strawberry.enum_value("created_at", description="When Tenure first recorded the customer.")
    NAME = strawberry.enum_value("name", description="The customer's name.")
    LAST_ORDER_AT = strawberry.enum_value(
        "last_order_at", description="The latest order; a customer who never ordered counts from createdAt.")
    TOTAL_SPENT = strawberry.enum_value("total_spent", description="Net revenue from the customer so far.")
    ORDER_COUNT = strawberry.enum_value("order_count", description="How many orders, not counting cancelled ones.")


@strawberry.enum(description="Which way a sort runs.")
class Direction(Enum):
    ASC = strawberry.enum_value("asc", description="Smallest, earliest or A first.")
    DESC = strawberry.enum_value("desc", description="Largest, latest or Z first.")


@strawberry.input(description="How to sort a list of customers; ties are broken by id in the same direction.")
class CustomerOrderBy:
    field: CustomerOrderField = strawberry.field(
        default=CustomerOrderField.CREATED_AT, description="What to sort by; createdAt unless given.")
    direction: Direction = strawberry.field(default=Direction.DESC, description="Which way; DESC unless given.")


@strawberry.input(description="Every condition given must hold.")
class CustomerFilterInput:
    search: str | None = strawberry.field(
        default=None, description="Part of the name, or a whole email, phone or identity value.")
    tags: list[str] | None = strawberry.field(default=None, description="Customers with any of these tags.")
    owner_id: strawberry.ID | None = strawberry.field(
        default=None, description="Customers whose account manager is this staff user.")
    source_channel: str | None = strawberry.field(
        default=None, description="Customers who came from this channel (exact match).")
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only these customers; an id that matches no one is left out.")


@strawberry.input(description="Which tasks to list: every condition given must hold.")
class TaskFilterInput:
    mine: bool = strawberry.field(default=False, description="Tasks assigned to the staff user of the calling key.")
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None, description="Tasks assigned to this staff user.")
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="Tasks about this customer.")
    status: TaskStatus | None = strawberry.field(default=None, description="Tasks with this status.")
    source: str | None = strawberry.field(
        default=None, description="Tasks raised by this source: `manual` or a plugin's name.")


@strawberry.type(description="Two customers that share an email or phone: likely the same person.")
class DuplicateCandidate:
    kind: str = strawberry.field(description="What they share: `email` or `phone`.")
    value: str = strawberry.field(description="The shared email address or phone number.")
    first: Customer = strawberry.field(description="The customer recorded first.")
    second: Customer = strawberry.field(description="The customer recorded later.")


@strawberry.type(description="A plugin this server runs.")
class PluginSummary:
    name: str = strawberry.field(description="The plugin's name, as in TENURE_PLUGINS (`core` for the core).")
    version: str = strawberry.field(description="The plugin's version.")
    summary: str = strawberry.field(description="One line on what the plugin does.")


@strawberry.type(description="What this server runs: a client shows the sections of the plugins that are on.")
class ServerInfo:
    version: str = strawberry.field(description="Tenure's version.")
    currency: str = strawberry.field(
        description="The business's currency (TENURE_CURRENCY): amounts without their own currency, such as "
                    "spend to the next tier, are minor units of it.")
    plugins: list[PluginSummary] = strawberry.field(description="The enabled plugins, `core` first.")


@strawberry.enum(name="Role", description="What a caller may do, by the kind of key or token it sends.")
class RoleName(Enum):
    ADMIN = strawberry.enum_value("admin", description="Everything, including keys, webhooks and the audit log.")
    STAFF = strawberry.enum_value("staff", description="The back office: customers, orders, tasks and reports.")
    INTEGRATION = strawberry.enum_value(
        "integration", description="Another system: reads and writes within the key's scopes, if it has any.")
    MEMBER = strawberry.enum_value("member", description="A customer signed in to a member app: their own data only.")


@strawberry.type(description="Who is calling.")
class Viewer:
    role: RoleName = strawberry.field(description="The caller's role.")
    name: str = strawberry.field(description="The API key's name, or the member's name for a member token.")
    staff_user: StaffUser | None = strawberry.field(
        description="The staff user the API key acts for; null for a key that acts for no one.")
    customer_id: strawberry.ID | None = strawberry.field(
        description="The global id of the customer a member token belongs to; null for every other caller.")


def customer_sort(order_by: CustomerOrderBy | None) -> list[tuple[Any, bool]]:
    order_by = order_by or CustomerOrderBy()
    column: Any = getattr(models.Customer, str(order_by.field.value))
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
    @strawberry.field(permission_classes=[allow(*EVERYONE)], description="Who is calling, as the server sees it.")
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        staff = None
        if principal.staff_user_id is not None:
            staff = await info.context.loader(loaders.staff_by_id).load(principal.staff_user_id)
        return Viewer(role=RoleName(principal.role.value), name=principal.name, staff_user=staff,
                      customer_id=to_global_id("Customer", principal.customer_id) if principal.customer_id else None)

    @strawberry.field(permission_classes=[allow(*EVERYONE)],
                      description="Tenure's version and the plugins this server runs; works with introspection off.")
    def server_info(self, info: Info) -> ServerInfo:
        from tenure.core import __version__

        plugins = info.context.plugins
        return ServerInfo(version=__version__, currency=info.context.settings.currency, plugins=[
            PluginSummary(name=name, version=plugins.info(name).version, summary=plugins.info(name).summary)
            for name in plugins.names()])

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")],
                      description="One customer; null when no customer has this id (or it was erased).")
    async def customer(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The customer's id.")]) -> Customer | None:
        return await info.context.loader(loaders.customers_by_id).load(to_int(id, "id", "Customer"))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")],
                      description="Customers, newest first unless `orderBy` says otherwise.")
    async def customers(
        self,
        info: Info,
        first: First = 20,
        after: After = None, last: Last = None, before: Before = None,
        filter: Annotated[CustomerFilterInput | None, strawberry.argument(
            description="Which customers; null for all of them.")] = None,
        order_by: Annotated[CustomerOrderBy | None, strawberry.argument(
            description="How to sort; null for newest first.")] = None,
    ) -> Connection[Customer]:
        criteria = None
        if filter is not None:
            criteria = CustomerFilter(
                search=filter.search, tags=filter.tags,
                owner_id=to_int(filter.owner_id, "filter.ownerId", "StaffUser") if filter.owner_id else None,
                source_channel=filter.source_channel,
                ids=[to_int(i, "filter.ids", "Customer") for i in filter.ids] if filter.ids is not None else None,
            )
        stmt = filter_customers(select(models.Customer), criteria)
        page = await paginate(runner(info), stmt, customer_sort(order_by), first=first, after=after, last=last,
                              before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))
        # Rows of the page answer `order { customer }` and the like without another query.
        by_id = info.context.loader(loaders.customers_by_id)
        for edge in page.edges:
            by_id.prime(edge.node.id, edge.node)
        return page

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Pairs of customers that share an email or phone.")
    async def duplicate_candidates(self, info: Info, first: Annotated[int, strawberry.argument(
            description="How many pairs at most, up to the page-size cap (TENURE_MAX_PAGE_SIZE).")] = 20,
    ) -> list[DuplicateCandidate]:
        from tenure.schema.relay import check_first

        first = check_first(first, info.context.settings.max_page_size)
        rows = await runner(info)(duplicate_candidates_query(first))
        load = info.context.loader(loaders.customers_by_id)
        out = []
        for kind, value, a, b in rows:
            first_c, second_c = await load.load_many([a, b])
            out.append(DuplicateCandidate(kind=kind, value=value, first=first_c, second=second_c))
        return out

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="orders:read")],
                      description="One order; null when no order has this id.")
    async def order(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The order's id in Tenure.")]) -> Order | None:
        return await info.context.loader(loaders.orders_by_id).load(to_int(id, "id", "Order"))

    @strawberry.field(permission_classes=[allow(*STAFF, Role.INTEGRATION)],
                      description="Tasks, newest first.")
    async def tasks(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None,
        filter: Annotated[TaskFilterInput | None, strawberry.argument(
            description="Which tasks; null for all of them.")] = None,
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
            stmt = stmt.where(models.Task.assignee_id == to_int(f.assignee_id, "filter.assigneeId", "StaffUser"))
        if f.customer_id is not None:
            stmt = stmt.where(models.Task.customer_id == to_int(f.customer_id, "filter.customerId", "Customer"))
        if f.status is not None:
            stmt = stmt.where(models.Task.status == f.status.value)
        if f.source is not None:
            stmt = stmt.where(models.Task.source == f.source)
        return await paginate(runner(info), stmt, [(models.Task.id, True)], first=first, after=after, last=last,
                              before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Staff users, in the order they were created, former ones included.")
    async def staff_users(self, info: Info, first: First = 50, after: After = None, last: Last = None,
                          before: Before = None) -> Connection[StaffUser]:
        stmt = select(models.StaffUser)
        return await paginate(runner(info), stmt, [(models.StaffUser.id, False)], first=first, after=after, last=last,
                              before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(
        permission_classes=[allow(Role.ADMIN, Role.INTEGRATION, scope="events:read")],
        description="The event log, oldest first: pass the last cursor you saw as `after` to catch up.",
    )
    async def events(
        self, info: Info, first: First = 50, after: After = None, last: Last = None, before: Before = None,
        types: Annotated[list[str] | None, strawberry.argument(
            description="Only events of these types, such as `customer.created`; null or empty for all.")] = None,
    ) -> Connection[Event]:
        stmt = select(models.Event)
        if types:
            stmt = stmt.where(models.Event.type.in_(types))
        return await paginate(runner(info), stmt, [(models.Event.id, False)], first=first, after=after, last=last,
                              before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(Role.ADMIN)],
                      description="Every webhook subscription, oldest first, paused ones included.")
    async def webhook_subscriptions(self, info: Info) -> list[WebhookSubscription]:
        rows = await runner(info)(select(models.WebhookSubscription).order_by(models.WebhookSubscription.id))
        return [r[0] for r in rows]

    @strawberry.field(permission_classes=[allow(Role.ADMIN)],
                      description="The delivery attempts of one webhook subscription, newest first.")
    async def webhook_deliveries(
        self, info: Info,
        subscription_id: Annotated[strawberry.ID, strawberry.argument(description="The subscription's id.")],
        first: First = 50, after: After = None, last: Last = None, before: Before = None,
    ) -> Connection[WebhookDelivery]:
        stmt = select(models.WebhookDelivery).where(
            models.WebhookDelivery.subscription_id == to_int(subscription_id, "subscriptionId", "WebhookSubscription"))
        return await paginate(runner(info), stmt, [(models.WebhookDelivery.id, True)], first=first, after=after,
                              last=last, before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))
