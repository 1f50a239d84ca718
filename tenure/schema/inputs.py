"""Input no service should ever see: text holding a NUL character (PostgreSQL refuses it
in any text column, and no client means one) and times outside the years a record can
have (year 1 overflows as soon as it is moved to another time zone).

`InputGuard` checks every argument of every field that takes any before the resolver runs.
A mutation whose payload carries ``userErrors`` answers one naming the field, like any
business error; any other field answers a ``BAD_USER_INPUT`` error naming it. Either way
nothing runs and nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from enum import Enum
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.base import StrawberryList, StrawberryOptional, get_object_definition
from strawberry.types.field import StrawberryField

from tenure.schema.types.common import UserError

EARLIEST_YEAR, LATEST_YEAR = 1000, 9998


@dataclasses.dataclass(frozen=True)
class Refusal:
    field: str
    message: str
    code: str
    #: The argument ``field`` lies under: ``input``, or ``None`` when ``field`` is an argument.
    argument: str | None = None


def _name(python_name: str) -> str:
    head, *rest = python_name.split("_")
    return head + "".join(part.title() for part in rest)


def find_refusal(value: Any, path: str) -> Refusal | None:
    """The first value under ``path`` that no service may receive, depth first."""
    if isinstance(value, str):
        if "\x00" in value:
            return Refusal(path, "must not contain a NUL character (\\u0000)", "invalid_text")
        return None
    if isinstance(value, datetime | date):
        if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            return Refusal(path, f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}", "invalid_time")
        return None
    if isinstance(value, bool | int | float | Enum) or value is None:
        return None
    if isinstance(value, list | tuple):
        for n, item in enumerate(value):
            found = find_refusal(item, f"{path}[{n}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_refusal(key, path) or find_refusal(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            found = find_refusal(getattr(value, f.name), f"{path}.{_name(f.name)}" if path else _name(f.name))
            if found:
                return found
    return None


def _empty(type_: Any) -> Any:
    """What a payload field holds when nothing ran: null where the schema allows it."""
    if isinstance(type_, StrawberryOptional):
        return None
    if isinstance(type_, StrawberryList):
        return []
    return {bool: False, int: 0, str: ""}.get(type_)


class InputGuard(FieldExtension):
    """Refuses NUL characters and out-of-range times in a field's arguments."""

    def apply(self, field: StrawberryField) -> None:
        self.payload: Callable[[Refusal], Any] | None = None
        definition = get_object_definition(field.type)
        if definition is not None and any(f.python_name == "user_errors" for f in definition.fields):
            cls = definition.origin

            def payload(refusal: Refusal) -> Any:
                values = {f.python_name: _empty(f.type) for f in definition.fields}
                values["user_errors"] = [UserError(field=refusal.field, message=refusal.message, code=refusal.code,
                                                   argument=refusal.argument)]
                return cls(**values)

            self.payload = payload

    def _refusal(self, kwargs: dict[str, Any]) -> Refusal | None:
        for name, value in kwargs.items():
            # Paths inside the one ``input`` argument read as the services name fields.
            found = find_refusal(value, "") if name == "input" else find_refusal(value, _name(name))
            if found:
                return dataclasses.replace(found, argument="input" if name == "input" else None)
        return None

    def _refuse(self, refusal: Refusal) -> Any:
        if self.payload is not None:
            return self.payload(refusal)
        raise GraphQLError(f"{refusal.field}: {refusal.message}",
                           extensions={"code": "BAD_USER_INPUT", "field": refusal.field})

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        refusal = self._refusal(kwargs)
        return self._refuse(refusal) if refusal else next_(source, info, **kwargs)

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info,
                            **kwargs: Any) -> Any:
        refusal = self._refusal(kwargs)
        if refusal:
            return self._refuse(refusal)
        return await next_(source, info, **kwargs)


def guard_fields(fields: list[StrawberryField]) -> None:
    """Attach :class:`InputGuard` to every field that takes arguments, once per field
    (the field objects are shared by every schema a process builds)."""
    for field in fields:
        if field.arguments and not any(isinstance(e, InputGuard) for e in field.extensions):
            field.extensions.append(InputGuard())
