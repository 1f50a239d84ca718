"""What a member (a customer signed in to a mobile app with a member token) sees of
themselves. A separate type from ``Customer``: staff-only fields (owner, tasks, churn risk)
are not reachable from here. Plugins add member-facing fields with ``extends={"Member": ...}``;
their resolvers receive the member's :class:`core.models.Customer` row as ``self``."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from core import models
from core.context import ServiceContext
from core.models import Role
from core.services import customers
from schema import loaders
from schema.mutations import in_transaction
from schema.mutations.customers import ConsentInput, CustomerInput, to_data
from schema.permissions import EVERYONE, allow, member_id
from schema.types.common import UserError
from schema.types.core import Consent, consent_of, emails_of


@strawberry.type(description="The signed-in member's own profile.")
class Member:
    id: strawberry.ID
    name: str
    birthday: date | None
    locale: str | None

    @strawberry.field
    def consent(self: models.Customer) -> Consent:
        return consent_of(self)

    @strawberry.field
    async def emails(self: models.Customer, info: Info) -> list[str]:
        return await emails_of(self, info)


@strawberry.type
class MemberQuery:
    @strawberry.field(permission_classes=[allow(*EVERYONE)], description="The member calling (member tokens only).")
    async def me(self, info: Info) -> Member:
        customer = await info.context.loader(loaders.customers_by_id).load(member_id(info))
        if customer is None:
            from graphql import GraphQLError

            raise GraphQLError("this member no longer exists", extensions={"code": "NOT_FOUND"})
        return customer


@strawberry.input(description="What a member may change of their own profile; a field left out stays as it is.")
class UpdateMeInput:
    name: str | None = strawberry.UNSET
    emails: list[str] | None = strawberry.UNSET
    phones: list[str] | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    consent: ConsentInput | None = strawberry.UNSET


@strawberry.type
class MePayload:
    me: Member | None
    user_errors: list[UserError]


@strawberry.type
class MemberMutations:
    @strawberry.mutation(permission_classes=[allow(Role.MEMBER)],
                         description="The member changes their own profile and consent (member tokens only).")
    async def update_me(self, info: Info, input: UpdateMeInput) -> MePayload:
        customer_id = member_id(info)
        given = CustomerInput(name=input.name, emails=input.emails, phones=input.phones, birthday=input.birthday,
                              locale=input.locale, consent=input.consent)
        if input.name is None:
            given.name = strawberry.UNSET  # a member cannot blank their name; leaving it out keeps it

        async def work(ctx: ServiceContext) -> models.Customer:
            return await customers.update_customer(ctx, customer_id, to_data(given))

        me, errors = await in_transaction(info, work)
        return MePayload(me=me, user_errors=errors)  # type: ignore[arg-type]
