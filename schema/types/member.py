"""What a member (a customer signed in to a mobile app with a member token) sees of
themselves. A separate type from ``Customer``: staff-only fields (owner, tasks, churn risk)
are not reachable from here. Plugins add member-facing fields with ``extends={"Member": ...}``;
their resolvers receive the member's :class:`core.models.Customer` row as ``self``."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from core import models
from schema import loaders
from schema.permissions import EVERYONE, allow, member_id
from schema.types.core import Consent


@strawberry.type(description="The signed-in member's own profile.")
class Member:
    id: strawberry.ID
    name: str
    birthday: date | None
    locale: str | None

    @strawberry.field
    def consent(self: models.Customer) -> Consent:
        return Consent(email=self.consent_email, sms=self.consent_sms, push=self.consent_push)

    @strawberry.field
    async def emails(self: models.Customer, info: Info) -> list[str]:
        contacts = await info.context.loader(loaders.contacts_by_customer).load(self.id)
        return [c.value for c in contacts if c.kind == "email"]


@strawberry.type
class MemberQuery:
    @strawberry.field(permission_classes=[allow(*EVERYONE)], description="The member calling (member tokens only).")
    async def me(self, info: Info) -> Member:
        customer = await info.context.loader(loaders.customers_by_id).load(member_id(info))
        if customer is None:
            from graphql import GraphQLError

            raise GraphQLError("this member no longer exists", extensions={"code": "NOT_FOUND"})
        return customer
