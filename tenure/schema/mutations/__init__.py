"""Core mutations, one module per part of the domain. Each takes one ``input`` and returns
a payload with the object and ``userErrors``; a business error rolls the transaction back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError as DomainUserError
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
        return None, [UserError.of(error)]


def parse_id(value: Any, field: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DomainUserError(f"{value!r} is not an id", field, "invalid_id") from None
    if number < 1 or number > 2**63 - 1:
        raise DomainUserError(f"{value!r} is not an id", field, "invalid_id")
    return number
