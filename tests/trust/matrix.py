"""Building blocks of the permission matrix: the callers, and a minimal valid request for
any root field of the live schema (arguments generated from their GraphQL types)."""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
)

#: An id no row has: a call that gets through writes nothing.
NO_SUCH_ID = "999999"

SCALARS: dict[str, Any] = {
    "ID": NO_SUCH_ID,
    "String": "x",
    "Int": 1,
    "Long": 1,
    "Float": 1.0,
    "Boolean": False,
    "DateTime": "2026-01-01T00:00:00+00:00",
    "Date": "2026-01-01",
    "JSON": {},
}


def sample(type_: GraphQLInputType) -> Any:
    """A value of ``type_`` with every required part filled and nothing optional."""
    if isinstance(type_, GraphQLNonNull):
        return sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return []
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {name: sample(f.type) for name, f in type_.fields.items() if _required(f)}
    if isinstance(type_, GraphQLScalarType):
        return SCALARS.get(type_.name, "x")
    raise TypeError(f"no sample for {type_}")


def _required(field: Any) -> bool:
    from graphql.pyutils import Undefined

    return isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined


def request_for(root: str, name: str, field: GraphQLField) -> tuple[str, dict[str, Any]]:
    """``(document, variables)`` calling ``name`` with its required arguments only."""
    from graphql.pyutils import Undefined

    required = {a: arg for a, arg in field.args.items()
                if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined}
    declared = "".join(f"${a}: {arg.type}, " for a, arg in required.items()).rstrip(", ")
    passed = ", ".join(f"{a}: ${a}" for a in required)
    selection = "" if isinstance(get_named_type(field.type), GraphQLScalarType | GraphQLEnumType) else " { __typename }"
    operation = "query" if root == "Query" else "mutation"
    header = f"{operation}({declared})" if declared else operation
    call = f"{name}({passed})" if passed else name
    return f"{header} {{ {call}{selection} }}", {a: sample(arg.type) for a, arg in required.items()}


def root_fields(schema: GraphQLSchema) -> dict[str, GraphQLField]:
    fields: dict[str, GraphQLField] = {}
    for root in ("Query", "Mutation"):
        type_ = schema.get_type(root)
        if isinstance(type_, GraphQLObjectType):
            fields.update({f"{root}.{n}": f for n, f in type_.fields.items()})
    return fields


def reachable_types(schema: GraphQLSchema, start: str) -> set[str]:
    """Names of every object type reachable from ``start`` through its fields."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        type_ = schema.get_type(name)
        if isinstance(type_, GraphQLObjectType):
            todo += [get_named_type(f.type).name for f in type_.fields.values()]
    return seen
