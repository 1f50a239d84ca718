"""Business errors. A service raises :class:`UserError` for input it refuses; the GraphQL
layer turns it into a ``userErrors`` entry (``field``, ``message``, ``code``) and the
transaction is rolled back, so nothing is written."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UserError(Exception):
    message: str
    field: str | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class NotFound(UserError):
    def __init__(self, what: str, ident: object, field: str | None = "id") -> None:
        super().__init__(f"no {what} with id {ident}", field, "not_found")


class Conflict(UserError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field, "conflict")
