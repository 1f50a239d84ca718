"""``node(id:)`` and ``nodes(ids:)``: any object with a global id, read through the same rule
as its type's own query, so the root fields open no door that the rest of the schema keeps
shut. A member reads only what is theirs; a type a plugin left out of this schema is no
node here."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from tenure.core.models import Role
from tenure.schema import loaders
from tenure.schema.permissions import EVERYONE, allow
from tenure.schema.relay import Node, NodeKind, from_global_id

#: How many ids one ``nodes`` call takes, as a page of a list.
MAX_NODES = 100


def node_kinds(schema: Any) -> dict[str, NodeKind]:
    """Every ``Node`` type of a built schema, by name, with how to read it."""
    kinds: dict[str, NodeKind] = {}
    for name, concrete in schema.schema_converter.type_map.items():
        kind = getattr(getattr(concrete.definition, "origin", None), "__tenure_node__", None)
        if isinstance(kind, NodeKind):
            kinds[name] = kind
    return kinds


def _parse(value: str, kinds: dict[str, NodeKind], field: str) -> tuple[str, int] | None:
    found = from_global_id(str(value))
    if found is None:
        raise GraphQLError(f"{field}: {str(value)[:60]!r} is not a global id",
                           extensions={"code": "BAD_USER_INPUT", "field": field})
    return found if found[0] in kinds else None


async def read_nodes(info: Info, ids: list[strawberry.ID], field: str) -> list[Any | None]:
    """The objects ``ids`` name, in order; ``None`` for one that does not exist or that the
    caller, a member, does not own. A caller whose role may not read a type gets the same
    error as from that type's own query."""
    kinds: dict[str, NodeKind] = info.schema.node_kinds  # type: ignore[attr-defined]
    wanted = [_parse(value, kinds, field) for value in ids]
    by_type: dict[str, list[int]] = {}
    for item in wanted:
        if item is not None:
            by_type.setdefault(item[0], []).append(item[1])
    found: dict[tuple[str, int], Any] = {}
    principal = info.context.principal
    for type_name, pks in by_type.items():
        kind = kinds[type_name]
        kind.readers().has_permission(None, info)  # raises the type's own refusal
        rows = await info.context.loader(loaders.by_id_cached(kind.model)).load_many(pks)
        for pk, row in zip(pks, rows, strict=True):
            if row is None:
                continue
            if principal.role == Role.MEMBER and (kind.owner is None or kind.owner(row) != principal.customer_id):
                continue
            found[type_name, pk] = row
    return [found.get(item) if item is not None else None for item in wanted]


@strawberry.type
class NodeQuery:
    @strawberry.field(permission_classes=[allow(*EVERYONE)],
                      description="The object a global id names, if it exists and the caller may read it.")
    async def node(self, info: Info,
                   id: Annotated[strawberry.ID, strawberry.argument(
                       description="A global id, as any `id` field gives it.")]) -> Node | None:
        return (await read_nodes(info, [id], "id"))[0]

    @strawberry.field(permission_classes=[allow(*EVERYONE)],
                      description=f"The objects global ids name, in the same order; null for one that does not "
                                  f"exist or the caller may not read. At most {MAX_NODES} ids.")
    async def nodes(self, info: Info,
                    ids: Annotated[list[strawberry.ID], strawberry.argument(
                        description="Global ids, of any types.")]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise GraphQLError(f"ids: at most {MAX_NODES} at once, got {len(ids)}",
                               extensions={"code": "LIMIT_EXCEEDED", "limit": "page_size"})
        return await read_nodes(info, ids, "ids")
