"""Every text input of the schema, given a NUL character, and a time input given year 1:
each answers an error naming the field (a userError where the payload has them), runs
nothing and writes nothing, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)

from tenure.schema.build import build_schema
from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import row_counts

PLAIN = {"String": "x", "ID": "1", "Int": 1, "Long": 1, "Float": 1.0, "Boolean": True, "JSON": {},
         "DateTime": "2026-01-01T00:00:00+00:00", "Date": "2026-01-01"}


def _unwrap(type_: Any) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_


def _minimal(type_: GraphQLInputType) -> Any:
    """A value of ``type_`` with its required fields filled, or None when it may be left out."""
    required = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if not required:
        return None
    if isinstance(inner, GraphQLList):
        return []
    if isinstance(inner, GraphQLInputObjectType):
        return {name: value for name, f in inner.fields.items()
                if f.default_value is Undefined and (value := _minimal(f.type)) is not None}
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    assert isinstance(inner, GraphQLScalarType)
    return PLAIN.get(inner.name, "x")


def _with(type_: GraphQLInputType, path: list[str], bad: Any) -> Any:
    """A minimal value of ``type_`` whose field at ``path`` holds ``bad``."""
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList):
        return [_with(inner.of_type, path, bad)]
    if not path:
        return bad
    assert isinstance(inner, GraphQLInputObjectType)
    value = _minimal(GraphQLNonNull(inner))
    value[path[0]] = _with(inner.fields[path[0]].type, path[1:], bad)
    return value


def _leaves(type_: Any, scalar: tuple[str, ...], path: list[str], seen: frozenset[str]) -> Iterator[list[str]]:
    inner = _unwrap(type_)
    if isinstance(inner, GraphQLScalarType) and inner.name in scalar:
        yield path
    elif isinstance(inner, GraphQLInputObjectType) and inner.name not in seen:
        for name, f in inner.fields.items():
            yield from _leaves(f.type, scalar, [*path, name], seen | {inner.name})


def _named(path: list[str]) -> str:
    """A userError's path as :func:`_shown` writes it: ``["emails", "0"]`` is ``emails[0]``."""
    out = ""
    for part in path:
        out = f"{out}[{part}]" if part.isdigit() else f"{out}.{part}" if out else part
    return out


def _shown(path: list[str], argument: str, type_: Any) -> str:
    """The field as the answer names it: paths inside ``input`` leave it out; list items
    carry their index."""
    out = "" if argument == "input" else argument
    inner = type_
    for part in ["", *path]:
        while isinstance(inner, GraphQLNonNull):
            inner = inner.of_type
        if part:
            out = f"{out}.{part}" if out else part
            inner = _unwrap(inner).fields[part].type
            while isinstance(inner, GraphQLNonNull):
                inner = inner.of_type
        if isinstance(inner, GraphQLList):
            out += "[0]"
            inner = inner.of_type
    return out


def _cases(tenure: TenureHarness) -> Iterator[tuple[str, str, str, dict[str, Any], str]]:
    schema = build_schema(tenure.plugins, tenure.settings)._schema
    for root in ("query", "mutation"):
        root_type = getattr(schema, f"{root}_type")
        for field_name, field in root_type.fields.items():
            returned = _unwrap(field.type)
            selection = "__typename"
            if isinstance(returned, GraphQLObjectType) and "userErrors" in returned.fields:
                selection = "__typename userErrors { field message code }"
            for scalar, bad in ((("String", "ID"), "a\x00b"), (("DateTime",), "0001-01-01T00:00:00+01:00")):
                for argument_name, argument in field.args.items():
                    for path in _leaves(argument.type, scalar, [], frozenset()):
                        values = {name: _minimal(a.type) for name, a in field.args.items()}
                        values[argument_name] = _with(argument.type, path, bad)
                        values = {k: v for k, v in values.items() if v is not None}
                        declared = ", ".join(f"${n}: {a.type}" for n, a in field.args.items()
                                             if n in values and isinstance(a, GraphQLArgument))
                        passed = ", ".join(f"{n}: ${n}" for n in values)
                        document = f"{root}({declared}) {{ {field_name}({passed}) {{ {selection} }} }}"
                        if not isinstance(returned, GraphQLObjectType | GraphQLInterfaceType):
                            document = f"{root}({declared}) {{ {field_name}({passed}) }}"
                        yield field_name, document, _shown(path, argument_name, argument.type), values, scalar[0]


async def test_every_text_and_time_input_refuses_what_no_service_may_see(tenure: TenureHarness) -> None:
    async with TenureHarness.start(tenure.settings.database_url, plugins=None, create_tables=False) as everything:
        customer = await everything.ok('mutation { createCustomer(input: {name: "Ann", emails: '
                                       '["ann@example.com"]}) { customer { id } } }')
        member = everything.member_token(pk_of(customer["createCustomer"]["customer"]["id"]))
        before = await row_counts(everything)
        answers = await _send_every_case(everything, [await everything.key(), member])
        after = await row_counts(everything)
    assert len(answers) > 150, len(answers)  # every plugin on: about 200 text and time inputs
    for shown, kind, refusal, case in answers:
        # A GraphQL error naming the argument, or a userError naming the field; nothing ran.
        assert refusal in (("BAD_USER_INPUT", shown), ("FORBIDDEN", None),
                           ("INVALID_TEXT" if kind != "DateTime" else "INVALID_TIME", shown)), case
    assert after == before


async def _send_every_case(tenure: TenureHarness,
                           keys: list[str]) -> list[tuple[str, str, tuple[str | None, str | None], Any]]:
    """Each case of :func:`_cases` sent with the first of ``keys`` that may call it (an admin
    key, then a member token): the field it should name, its kind, and the (code, field) the
    answer gave."""
    answers = []
    for field_name, document, shown, values, kind in _cases(tenure):
        answer: dict[str, Any] = {}
        for key in keys:
            answer = await tenure.gql(document, values, key=key)
            codes = [(e.get("extensions") or {}).get("code") for e in answer.get("errors") or []]
            if "FORBIDDEN" not in codes:
                break
        errors = answer.get("errors") or []
        payload = (answer.get("data") or {}).get(field_name)
        refusal: tuple[str | None, str | None] = (None, None)
        if errors:
            extensions = errors[0].get("extensions") or {}
            code = extensions.get("code")
            refusal = (code, extensions.get("field") if code != "FORBIDDEN" else None)
        elif isinstance(payload, dict) and payload.get("userErrors"):
            path = payload["userErrors"][0]["field"] or []
            # The path starts at the argument; the shown name leaves ``input`` out.
            refusal = (payload["userErrors"][0]["code"], _named(path[1:] if path[:1] == ["input"] else path))
        answers.append((shown, kind, refusal, (document, values, answer)))
    return answers
