"""Relay: global ids, the ``Node`` interface and connections with keyset cursors.

A global id is base64 of ``TypeName:pk`` (as Relay's reference server makes them): opaque to
clients, and one string names any object of any type. A page costs the same at row
1,000,000 as at row 1, in either direction, and ``totalCount`` is counted only when asked
for."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from strawberry.permission import BasePermission
from strawberry.types import Info

from tenure.core.clock import as_utc

T = TypeVar("T")
C = TypeVar("C", bound=type)


def to_global_id(type_name: str, pk: object) -> strawberry.ID:
    """The global id of the ``type_name`` object whose primary key is ``pk``."""
    return strawberry.ID(base64.b64encode(f"{type_name}:{pk}".encode()).decode())


def from_global_id(value: str) -> tuple[str, int] | None:
    """The type name and primary key a global id holds, or ``None`` if it is not one."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    type_name, _, pk = raw.partition(":")
    if not type_name.isidentifier() or not pk.isdigit():
        return None
    return type_name, int(pk)


class InvalidId(ValueError):
    """A value given as an id is none, or names an object of another type."""


def decode_id(value: object, expected: str | None = None) -> int:
    """The primary key an id argument names: a global id of type ``expected`` (any type when
    ``None``) or, as before global ids, a plain decimal primary key."""
    text = str(value)
    found = from_global_id(text) if not text.isdigit() else None
    if found is not None:
        type_name, number = found
        if expected is not None and type_name != expected:
            raise InvalidId(f"{text!r} is an id of type {type_name}, not {expected}")
    else:
        try:
            number = int(text)
        except ValueError:
            raise InvalidId(f"{text[:60]!r} is not an id") from None
    if not 0 < number < 2**63:  # ids are positive 64-bit integers; anything else matches no row
        raise InvalidId(f"{text[:60]!r} is not an id")
    return number


@dataclass(frozen=True)
class NodeKind:
    """How ``node(id:)`` reads one type: its rows, who may read them (the rule of the type's
    own query), and for types a member may read, whose they are."""

    model: type
    readers: type[BasePermission]
    owner: Callable[[Any], int | None] | None = None


def node(model: type, readers: type[BasePermission], *, owner: Callable[[Any], int | None] | None = None
         ) -> Callable[[C], C]:
    """Marks a ``Node`` type whose objects are ``model`` rows, readable by ``readers``;
    ``owner`` gives the customer a row belongs to where members may read the type (a member
    reads only their own). Put it under ``@strawberry.type``::

        @strawberry.type(description="...")
        @node(models.Reward, allow(*EVERYONE))
        class Reward(Node):
            ...
    """

    def mark(cls: C) -> C:
        def is_type_of(obj: Any, info: Any) -> bool:
            return isinstance(obj, model | cls)

        cls.is_type_of = staticmethod(is_type_of)  # type: ignore[attr-defined]
        cls.__tenure_node__ = NodeKind(model=model, readers=readers, owner=owner)  # type: ignore[attr-defined]
        return cls

    return mark


@strawberry.interface(description="An object with a global id: `node(id:)` reads it again, whatever its type.")
class Node:
    @strawberry.field(description="The global id: opaque, unique across every type; pass it wherever an id of "
                                  "this type is asked for.")
    def id(self, info: Info) -> strawberry.ID:
        # ``self`` is the type's row (see ``node``), whose ``id`` is its primary key.
        return to_global_id(info.path.typename or "", self.id)


def id_of(type_name: str, attribute: str, *, description: str | None = None,
          deprecation_reason: str | None = None, required: bool = False) -> Any:
    """A field holding the global id of the ``type_name`` whose primary key is the row's
    ``attribute`` (a foreign key, usually kept beside a link to the object)."""

    def resolve(root: Any) -> strawberry.ID | None:
        value = getattr(root, attribute)
        return None if value is None else to_global_id(type_name, value)

    return strawberry.field(resolver=resolve, description=description, deprecation_reason=deprecation_reason,
                            graphql_type=strawberry.ID if required else strawberry.ID | None)


#: The paging arguments every connection takes, described once.
First = Annotated[int, strawberry.argument(
    description="How many items to return: from 0 up to the server's page-size cap (TENURE_MAX_PAGE_SIZE, 100 "
                "unless configured); more answers a LIMIT_EXCEEDED error.")]
After = Annotated[str | None, strawberry.argument(
    description="Start after the item this cursor points at (an `endCursor` or an edge's `cursor` from this "
                "same list); null starts at the beginning.")]
Last = Annotated[int | None, strawberry.argument(
    description="Return the last this many items (before `before`, or of the whole list) instead of the first: "
                "from 0 up to the page-size cap. Takes the place of `first` when given.")]
Before = Annotated[str | None, strawberry.argument(
    description="End before the item this cursor points at (a `startCursor` or an edge's `cursor` from this "
                "same list): with `last`, pages back towards the beginning.")]


@strawberry.type(description="Where a page stands in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether more items follow this page: ask again `after` endCursor.")
    has_previous_page: bool = strawberry.field(
        description="Whether items come before this page (true for any page asked for `after` a cursor).")
    start_cursor: str | None = strawberry.field(
        description="The cursor of the first item of the page; null when the page is empty.")
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last item of the page, to pass as `after` for the next page; "
                    "null when the page is empty.")


@strawberry.type(description="One item of a page and the cursor that points at it.")
class Edge(Generic[T]):
    node: T = strawberry.field(description="The item itself.")
    #: The values the cursor encodes; encoded only when a query asks for the cursor (a
    #: portal page of 100 customers with their latest orders holds 600 edges).
    key: strawberry.Private[Sequence[Any]]

    @strawberry.field(description="Where this item stands: pass it as `after` for the items that follow, or as "
                                  "`before` for those before it.")
    def cursor(self) -> str:
        return self.encoded()

    def encoded(self) -> str:
        return encode_cursor(self.key)


@strawberry.type(description="A page of a list: ask for `first` items `after` a cursor, or the `last` items "
                              "`before` one.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page with their cursors, in list order.")
    page_info: PageInfo = strawberry.field(description="Whether more items follow, and the cursors to ask for them.")
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


def decode_cursor(cursor: str, size: int, field: str = "after") -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, KeyError):
        raise GraphQLError(
            f"the cursor {cursor[:40]!r} is not one this list gave out",
            extensions={"code": "BAD_USER_INPUT", "field": field},
        ) from None


def check_first(first: int, cap: int, field: str = "first") -> int:
    if first < 0:
        raise GraphQLError(f"{field} must not be negative", extensions={"code": "BAD_USER_INPUT", "field": field})
    if first > cap:
        raise GraphQLError(
            f"{field} is {first}, over the page-size cap of {cap} (TENURE_MAX_PAGE_SIZE)",
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


@dataclass(frozen=True)
class Window:
    """Which page of a list a client asks for, as Relay's arguments say it: ``first`` items
    ``after`` a cursor, or the ``last`` items ``before`` one (``last`` wins when both
    sizes are given). Either cursor may bound either direction."""

    first: int = 20
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @property
    def backwards(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        return self.last if self.last is not None else self.first

    @property
    def plain(self) -> bool:
        """The first page, read forwards: what a list's batched loader answers."""
        return self.after is None and self.before is None and self.last is None


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
    last: int | None = None,
    before: str | None = None,
) -> Connection[Any]:
    """One page of ``stmt`` (a select of one ORM entity or row) in ``order``, which must
    end with a unique column. ``run`` executes a statement and returns the rows. With
    ``last``, the page is read in the reverse order from ``before`` (or the end) and turned
    round, so it costs the same as a forward page."""
    window = Window(first=first, after=after, last=last, before=before)
    size = check_first(window.size, cap, "last" if window.backwards else "first")
    width = len(order)
    keyed = stmt.add_columns(*[c.label(f"_k{i}") for i, (c, _) in enumerate(order)])
    if after:
        keyed = keyed.where(_after(order, decode_cursor(after, width)))
    if before:
        reverse = [(column, not descending) for column, descending in order]
        keyed = keyed.where(_after(reverse, decode_cursor(before, width, "before")))
    walk = [(column, descending != window.backwards) for column, descending in order]
    keyed = keyed.order_by(*[c.desc() if d else c.asc() for c, d in walk]).limit(size + 1)
    rows = list(await run(keyed))
    more = len(rows) > size
    rows = rows[:size]
    if window.backwards:
        rows.reverse()
    edges = [Edge(node=node(row[0] if len(row) == width + 1 else row[:-width]), key=row[-width:])
             for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=before is not None if window.backwards else more,
            has_previous_page=more if window.backwards else after is not None,
            start_cursor=edges[0].encoded() if edges else None,
            end_cursor=edges[-1].encoded() if edges else None,
        ),
        count=count,
    )


def count_of(stmt: Select[Any]) -> Select[Any]:
    return select(func.count()).select_from(stmt.order_by(None).subquery())
