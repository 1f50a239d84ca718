"""Batch loaders: each turns the keys that many resolvers asked for in one tick into one
SQL statement, so a page of 100 customers with their orders, tasks and owner costs the same
few statements as a page of 10."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select

from tenure.core.models import (
    Customer,
    CustomerContact,
    CustomerIdentity,
    CustomerTag,
    Interaction,
    Order,
    OrderLine,
    StaffUser,
    Task,
)
from tenure.core.reads import Read
from tenure.schema.context import Context


async def fetch(context: Context, read: Read, keys: Sequence[Any], **params: Any) -> list[Any]:
    """Run a compiled :class:`~tenure.core.reads.Read` on the request's read session."""
    async with context.read_route() as route:
        return await read.run(route, keys, **params)


def by_id(model: Any) -> Any:
    """A loader of ``model`` rows by primary key (``None`` where there is none)."""
    read = Read(lambda keys: select(model).where(keys(model.id)))

    async def load(context: Context, keys: Sequence[int]) -> list[Any]:
        found = {row.id: row for row in await fetch(context, read, keys)}
        return [found.get(k) for k in keys]

    load.__name__ = f"{model.__name__}_by_id"
    return load


customers_by_id = by_id(Customer)
staff_by_id = by_id(StaffUser)


orders_by_id = by_id(Order)


def grouped(model: Any, column: Any, label: str) -> Any:
    """A loader of every ``model`` row whose ``column`` equals the key."""

    read = Read(lambda keys: select(model).where(keys(column)).order_by(*model.__mapper__.primary_key))

    async def load(context: Context, keys: Sequence[int]) -> list[list[Any]]:
        groups: dict[int, list[Any]] = defaultdict(list)
        for row in await fetch(context, read, keys):
            groups[getattr(row, column.key)].append(row)
        return [groups.get(k, []) for k in keys]

    load.__name__ = label
    return load


contacts_by_customer = grouped(CustomerContact, CustomerContact.customer_id, "contacts_by_customer")
identities_by_customer = grouped(CustomerIdentity, CustomerIdentity.customer_id, "identities_by_customer")
tags_by_customer = grouped(CustomerTag, CustomerTag.customer_id, "tags_by_customer")
# Order lines are read only when a query asks for them (a page of orders often does not).
lines_by_order = grouped(OrderLine, OrderLine.order_id, "lines_by_order")


_MADE: dict[Hashable, Any] = {}


def _made(key: Hashable | None, make: Callable[[], Any]) -> Any:
    """One loader function per distinct statement, so its :class:`Read` is compiled once
    per process; ``key`` None means the statement cannot be named (made afresh)."""
    if key is None:
        return make()
    found = _MADE.get(key)
    if found is None:
        found = _MADE[key] = make()
    return found


def latest_per_customer(model: Any, time_column: ColumnElement[Any], limit: int, *, extra: Any = None,
                        name: Hashable | None = None) -> Any:
    """A loader of each customer's newest ``limit`` rows of ``model`` (one windowed query
    for every customer on the page), plus one row more to tell whether there are others.
    ``name`` names ``extra`` (the condition's meaning, such as ``("status", "open")``), so
    the loader is made once."""
    key = ("latest", model, time_column.key, limit, name) if extra is None or name is not None else None
    return _made(key, lambda: _latest_per_customer(model, time_column, limit, extra))


def _latest_per_customer(model: Any, time_column: ColumnElement[Any], limit: int, extra: Any) -> Any:

    def build(keys: Any) -> Any:
        rank = func.row_number().over(
            partition_by=model.customer_id, order_by=(time_column.desc(), model.id.desc())
        ).label("rank")
        inner = select(model.id, rank).where(keys(model.customer_id))
        if extra is not None:
            inner = inner.where(extra)
        ranked = inner.subquery()
        return (
            select(model)
            .join(ranked, ranked.c.id == model.id)
            .where(ranked.c.rank <= limit + 1)
            .order_by(model.customer_id, time_column.desc(), model.id.desc())
        )

    read = Read(build)

    async def load(context: Context, keys: Sequence[int]) -> list[list[Any]]:
        groups: dict[int, list[Any]] = defaultdict(list)
        for row in await fetch(context, read, keys):
            groups[row.customer_id].append(row)
        return [groups.get(k, []) for k in keys]

    return load


def count_per_customer(model: Any, *, extra: Any = None, name: Hashable | None = None) -> Any:
    """A loader of how many ``model`` rows each customer has (``name`` as for
    :func:`latest_per_customer`)."""
    key = ("count", model, name) if extra is None or name is not None else None
    return _made(key, lambda: _count_per_customer(model, extra))


def _count_per_customer(model: Any, extra: Any) -> Any:
    def build(keys: Any) -> Any:
        stmt = select(model.customer_id, func.count()).where(keys(model.customer_id))
        if extra is not None:
            stmt = stmt.where(extra)
        return stmt.group_by(model.customer_id)

    read = Read(build)

    async def load(context: Context, keys: Sequence[int]) -> list[int]:
        counts: dict[int, int] = {k: n for k, n in await fetch(context, read, keys)}
        return [int(counts.get(k, 0)) for k in keys]

    return load


count_interactions = count_per_customer(Interaction)
count_open_tasks = count_per_customer(Task, extra=Task.status == "open")
count_tasks = count_per_customer(Task)


_BY_ID: dict[Any, Any] = {}


def by_id_cached(model: Any) -> Any:
    """The one ``by_id`` loader function of ``model`` (so requests share its loader key)."""
    if model not in _BY_ID:
        _BY_ID[model] = by_id(model)
    return _BY_ID[model]
