"""Types every part of the API shares: money, business errors, JSON."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from core.errors import UserError as DomainUserError

__all__ = ["JSON", "Money", "UserError", "user_errors"]


@strawberry.type(description="An amount of money: an integer of minor units (cents) and its ISO 4217 currency.")
class Money:
    amount: int = strawberry.field(description="Minor units: 1999 is 19.99 in a two-decimal currency.")
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
    from core.services.customers import UNSET

    return UNSET if value is strawberry.UNSET else value
