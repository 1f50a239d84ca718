"""Who may call what. Every root field declares its rule with ``allow(...)``; the schema
assembly refuses a root field without one, so a rule cannot be forgotten."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from tenure.core.models import Role

STAFF = (Role.ADMIN, Role.STAFF)
BACKOFFICE = (Role.ADMIN, Role.STAFF, Role.INTEGRATION)
EVERYONE = (Role.ADMIN, Role.STAFF, Role.INTEGRATION, Role.MEMBER)


class TenurePermission(BasePermission):
    """Base of every rule; the assembly step checks root fields carry one."""

    roles: tuple[Role, ...] = ()
    scope: str | None = None
    message = "not allowed"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        principal = context.principal
        if principal is None:
            raise GraphQLError(
                context.auth_error or "authentication required: send 'Authorization: Bearer <key>'",
                extensions={"code": "UNAUTHENTICATED"},
            )
        if principal.role not in self.roles:
            raise GraphQLError(
                f"the {principal.role.value} role may not use {info.path.typename}.{info.field_name}",
                extensions={"code": "FORBIDDEN"},
            )
        scoped = principal.role == Role.INTEGRATION and principal.scopes
        if self.scope and scoped and self.scope not in principal.scopes:
            raise GraphQLError(
                f"this integration key lacks the scope {self.scope!r}",
                extensions={"code": "FORBIDDEN"},
            )
        return True


def allow(*roles: Role, scope: str | None = None) -> type[TenurePermission]:
    """A permission class admitting ``roles``; integration keys with scopes also need
    ``scope`` among them."""
    name = "Allow" + "".join(r.value.title() for r in roles)
    return type(name, (TenurePermission,), {"roles": tuple(roles), "scope": scope})


def member_id(info: Info) -> int:
    """The customer id of the member calling; refuses any other caller."""
    principal = info.context.principal
    if principal is None or principal.role != Role.MEMBER or principal.customer_id is None:
        raise GraphQLError("only a member token can do this", extensions={"code": "FORBIDDEN"})
    return int(principal.customer_id)
