"""Types every part of the API shares: money, business errors, JSON."""

from __future__ import annotations

import re
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.utils.str_converters import to_camel_case

from tenure.core.errors import UserError as DomainUserError
from tenure.schema.types.errors import ErrorCode, error_code

__all__ = ["JSON", "USER_ERRORS", "Long", "Money", "UserError", "user_errors"]

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
    currency: str = strawberry.field(description="The ISO 4217 code of the currency, such as USD or EUR.")


@strawberry.type(description="A business rule refused the input; nothing was written.")
class UserError:
    message: str = strawberry.field(description="What is wrong, in English, fit to show next to the field.")
    #: The field at fault as the services name it (``lines[2].quantity``), and the argument
    #: it lies under (``input`` for every mutation that takes one).
    field: strawberry.Private[str | None] = None
    code: strawberry.Private[str] = "invalid"
    argument: strawberry.Private[str | None] = "input"

    @strawberry.field(name="field", description="Where the fault lies, as a path from the mutation's argument "
                                                "to the field: `[\"input\", \"lines\", \"2\", \"quantity\"]`; null "
                                                "when no one field is at fault.")
    def path(self) -> list[str] | None:
        return error_path(self.argument, self.field)

    @strawberry.field(name="code", description="Why the input was refused, for a client to branch on.")
    def error_code(self) -> ErrorCode:
        return error_code(self.code)

    @classmethod
    def of(cls, error: DomainUserError, argument: str | None = "input") -> UserError:
        return cls(field=error.field, message=error.message, code=error.code, argument=argument)


def error_path(argument: str | None, field: str | None) -> list[str] | None:
    """``lines[2].quantity`` under ``input`` as ``["input", "lines", "2", "quantity"]``,
    each name as the schema spells it."""
    if not field:
        return None
    names = [to_camel_case(part) for part in re.findall(r"[^.\[\]]+", field)]
    if argument is not None and names[0] != argument:
        names.insert(0, argument)
    return names


#: The description of every payload's ``userErrors`` field.
USER_ERRORS = "Why the input was refused, one entry per problem; empty when the mutation succeeded."


def user_errors(error: DomainUserError) -> list[UserError]:
    return [UserError.of(error)]


def unset_if_none(value: Any) -> Any:
    """Map GraphQL's "not given" to the services' UNSET."""
    from tenure.core.services.customers import UNSET

    return UNSET if value is strawberry.UNSET else value
