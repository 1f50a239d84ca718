"""Types every part of the API shares: money, business errors, JSON."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON

from tenure.core.errors import UserError as DomainUserError

__all__ = ["JSON", "Long", "Money", "UserError", "user_errors"]

#: The largest whole number a JSON client (JavaScript) holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long must be a whole number, not {value!r}")
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"Long must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")
    return value


# GraphQL's Int is 32-bit: 21,474,836.47 in cents, less than one order in some currencies.
Long = NewType("Long", int)
#: Custom scalars, for ``StrawberryConfig(scalar_map=SCALARS)`` in the schema assembly.
SCALARS: dict[object, Any] = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=_parse_long,
        description="A whole number up to 2^53 - 1, exact in JSON: amounts of money in minor units.",
    ),
}


@strawberry.type(description="An amount of money: an integer of minor units (cents) and its ISO 4217 currency.")
class Money:
    amount: Long = strawberry.field(description="Minor units: 1999 is 19.99 in a two-decimal currency.")
    currency: str


@strawberry.type(description="A business rule refused the input; nothing was written.")
class UserError:
    field: str | None = strawberry.field(description="The input field at fault, when one is.")
    message: str
    code: str

    @classmethod
    def of(cls, error: DomainUserError) -> UserError:
        return cls(field=error.field, message=error.message, code=error.code)


def user_errors(error: DomainUserError) -> list[UserError]:
    return [UserError.of(error)]


def unset_if_none(value: Any) -> Any:
    """Map GraphQL's "not given" to the services' UNSET."""
    from tenure.core.services.customers import UNSET

    return UNSET if value is strawberry.UNSET else value
