"""Batch loaders: each turns the keys that many resolvers asked for in one tick into one
SQL statement, so a page of 100 customers with their orders, tasks and owner costs the same
few statements as a page of 10."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select

from core.models import (
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
from schema.context import Context


async def _scalars(context: Context, stmt: Any) -> list[Any]:
    async with context.db() as session:
        return list(await session.scalars(stmt))


def by_id(model: Any) -> Any:
    """A loader of ``model`` rows by primary key (``None`` where there is none)."""

    async def load(context: Context, keys: Sequence[int]) -> list[Any]:
        rows = await _scalars(context, select(model).where(model.id.in_(keys)))
        found = {row.id: row for row in rows}
        return [found.get(k) for k in keys]

    load.__name__ = f"{model.__name__}_by_id"
    return load


customers_by_id = by_id(Customer)
staff_by_id = by_id(StaffUser)


async def orders_by_id(context: Context, keys: Sequence[int]) -> list[Order | None]:
    rows = await _scalars(context, select(Order).where(Order.id.in_(keys)))
    found = {row.id: row for row in rows}
    return [found.get(k) for k in keys]


def grouped(model: Any, column: Any, label: str) -> Any:
    """A loader of every ``model`` row whose ``column`` equals the key."""

    async def load(context: Context, keys: Sequence[int]) -> list[list[Any]]:
        rows = await _scalars(context, select(model).where(column.in_(keys)).order_by(*model.__mapper__.primary_key))
        groups: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            groups[getattr(row, column.key)].append(row)
        return [groups.get(k, []) for k in keys]

    load.__name__ = label
    return load


contacts_by_customer = grouped(CustomerContact, CustomerContact.customer_id, "contacts_by_customer")
identities_by_customer = grouped(CustomerIdentity, CustomerIdentity.customer_id, "identities_by_customer")
tags_by_customer = grouped(CustomerTag, CustomerTag.customer_id, "tags_by_customer")
# Order lines are read only when a query asks for them (a page of orders often does not).
lines_by_order = grouped(OrderLine, OrderLine.order_id, "lines_by_order")


def latest_per_customer(model: Any, time_column: ColumnElement[Any], limit: int, *, extra: Any = None) -> Any:
    """A loader of each customer's newest ``limit`` rows of ``model`` (one windowed query
    for every customer on the page), plus one row more to tell whether there are others."""

    async def load(context: Context, keys: Sequence[int]) -> list[list[Any]]:
        rank = func.row_number().over(
            partition_by=model.customer_id, order_by=(time_column.desc(), model.id.desc())
        ).label("rank")
        inner = select(model.id, rank).where(model.customer_id.in_(keys))
        if extra is not None:
            inner = inner.where(extra)
        ranked = inner.subquery()
        stmt = (
            select(model)
            .join(ranked, ranked.c.id == model.id)
            .where(ranked.c.rank <= limit + 1)
            .order_by(model.customer_id, time_column.desc(), model.id.desc())
        )
        groups: dict[int, list[Any]] = defaultdict(list)
        for row in await _scalars(context, stmt):
            groups[row.customer_id].append(row)
        return [groups.get(k, []) for k in keys]

    return load


def count_per_customer(model: Any, *, extra: Any = None) -> Any:
    async def load(context: Context, keys: Sequence[int]) -> list[int]:
        stmt = select(model.customer_id, func.count()).where(model.customer_id.in_(keys))
        if extra is not None:
            stmt = stmt.where(extra)
        async with context.db() as session:
            counts: dict[int, int] = {k: n for k, n in await session.execute(stmt.group_by(model.customer_id))}
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
