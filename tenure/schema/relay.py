"""Relay-style connections with keyset cursors: a page costs the same at row 1,000,000 as
at row 1, and ``totalCount`` is counted only when asked for."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from tenure.core.clock import as_utc

T = TypeVar("T")


@strawberry.type(description="Where a page stands in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="One item of a page and the cursor that points at it.")
class Edge(Generic[T]):
    node: T
    #: The values the cursor encodes; encoded only when a query asks for the cursor (a
    #: portal page of 100 customers with their latest orders holds 600 edges).
    key: strawberry.Private[Sequence[Any]]

    @strawberry.field(description="Where this item stands: pass it as `after` for the items that follow.")
    def cursor(self) -> str:
        return self.encoded()

    def encoded(self) -> str:
        return encode_cursor(self.key)


@strawberry.type(description="A page of a list: ask for `first` items `after` a cursor.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    count: strawberry.Private[Callable[[], Awaitable[int]] | None] = None

    @strawberry.field(description="How many items the whole list holds.")
    async def total_count(self) -> int:
        return await self.count() if self.count is not None else len(self.edges)

    @strawberry.field(description="The items of this page, without their cursors.")
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return {"d": value.isoformat()} if isinstance(value, date) else value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        return date.fromisoformat(value["d"]) if "d" in value else as_utc(datetime.fromisoformat(value["t"]))
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, KeyError):
        raise GraphQLError(
            f"the cursor {cursor[:40]!r} is not one this list gave out",
            extensions={"code": "BAD_USER_INPUT", "field": "after"},
        ) from None


def check_first(first: int, cap: int) -> int:
    if first < 0:
        raise GraphQLError("first must not be negative", extensions={"code": "BAD_USER_INPUT", "field": "first"})
    if first > cap:
        raise GraphQLError(
            f"first is {first}, over the page-size cap of {cap} (TENURE_MAX_PAGE_SIZE)",
            extensions={"code": "LIMIT_EXCEEDED", "limit": "page_size"},
        )
    return first


def _after(order: Sequence[tuple[Any, bool]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the given order (keyset condition)."""
    clauses = []
    for i, (column, descending) in enumerate(order):
        equal = [order[j][0] == values[j] for j in range(i)]
        beyond = column < values[i] if descending else column > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


async def paginate(
    run: Callable[[Select[Any]], Awaitable[Sequence[Any]]],
    stmt: Select[Any],
    order: Sequence[tuple[Any, bool]],
    *,
    first: int,
    after: str | None,
    cap: int,
    node: Callable[[Any], Any] = lambda row: row,
    count: Callable[[], Awaitable[int]] | None = None,
) -> Connection[Any]:
    """One page of ``stmt`` (a select of one ORM entity or row) in ``order``, which must
    end with a unique column. ``run`` executes a statement and returns the rows."""
    first = check_first(first, cap)
    keyed = stmt.add_columns(*[c.label(f"_k{i}") for i, (c, _) in enumerate(order)])
    if after:
        keyed = keyed.where(_after(order, decode_cursor(after, len(order))))
    keyed = keyed.order_by(*[c.desc() if d else c.asc() for c, d in order]).limit(first + 1)
    rows = list(await run(keyed))
    has_next = len(rows) > first
    rows = rows[:first]
    width = len(order)
    edges = [Edge(node=node(row[0] if len(row) == width + 1 else row[:-width]), key=row[-width:])
             for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=after is not None,
            start_cursor=edges[0].encoded() if edges else None,
            end_cursor=edges[-1].encoded() if edges else None,
        ),
        count=count,
    )


def count_of(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.order_by(None).subquery())
