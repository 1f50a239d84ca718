"""Core mutations, one module per part of the domain. Each takes one ``input`` and returns
a payload with the object and ``userErrors``; a business error rolls the transaction back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError as DomainUserError
from tenure.schema.relay import InvalidId, decode_id
from tenure.schema.types.common import UserError

T = TypeVar("T")


async def in_transaction(
    info: Info, work: Callable[[ServiceContext], Awaitable[T]]
) -> tuple[T | None, list[UserError]]:
    """Run ``work`` in the mutation's transaction; a business error becomes ``userErrors``
    and nothing is written."""
    try:
        async with info.context.transaction() as ctx:
            return await work(ctx), []
    except DomainUserError as error:
        # Fields are named from the mutation's one ``input``, or else from its arguments.
        argument = "input" if info.get_argument_definition("input") is not None else None
        return None, [UserError.of(error, argument)]


def parse_id(value: Any, field: str, kind: str | None = None) -> int:
    """The primary key an id in a mutation's input names: the global id of a ``kind`` (the
    GraphQL type name; any type when ``None``) or a plain decimal id. Anything else,
    including the global id of another type, is an ``invalid_id`` user error."""
    try:
        return decode_id(value, kind)
    except InvalidId as error:
        raise DomainUserError(str(error), field, "invalid_id") from None
