"""What a member (a customer signed in to a mobile app with a member token) sees of
themselves. A separate type from ``Customer``: staff-only fields (owner, tasks, churn risk)
are not reachable from here. Plugins add member-facing fields with ``extends={"Member": ...}``;
their resolvers receive the member's :class:`tenure.core.models.Customer` row as ``self``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from tenure.core import models
from tenure.core.context import ServiceContext
from tenure.core.models import Role
from tenure.core.services import customers, member_emails
from tenure.schema import loaders
from tenure.schema.mutations import in_transaction
from tenure.schema.mutations.customers import ConsentInput, CustomerInput, to_data
from tenure.schema.permissions import EVERYONE, TenurePermission, allow, member_id
from tenure.schema.relay import id_of
from tenure.schema.types.common import USER_ERRORS, UserError
from tenure.schema.types.core import Consent, consent_of, emails_of


@strawberry.type(description="The signed-in member's own profile.")
class Member:
    id: strawberry.ID = id_of("Customer", "id", required=True,
                              description="The global id of the member's customer record.")
    name: str = strawberry.field(description="The member's name.")
    birthday: date | None = strawberry.field(description="The date of birth; null when not given.")
    locale: str | None = strawberry.field(
        description="The language for messages, as a BCP 47 tag such as `en` or `de-CH`; null for the default.")

    @strawberry.field(description="What the member agreed to be contacted by.")
    def consent(self: models.Customer) -> Consent:
        return consent_of(self)

    @strawberry.field(description="The member's confirmed email addresses.")
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
    name: str | None = strawberry.field(default=strawberry.UNSET, description="The new name; null keeps the name.")
    emails: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="The whole list of addresses wanted; a new one waits for confirmation "
                    "(see MePayload.pendingEmails).")
    phones: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="The whole list of phone numbers; it replaces the current one.")
    birthday: date | None = strawberry.field(
        default=strawberry.UNSET, description="The date of birth; null clears it.")
    locale: str | None = strawberry.field(
        default=strawberry.UNSET, description="A BCP 47 language tag such as `en`; null returns to the default.")
    consent: ConsentInput | None = strawberry.field(
        default=strawberry.UNSET, description="Changes to what the member may be contacted by.")


@strawberry.type(description="The result of updateMe.")
class MePayload:
    me: Member | None = strawberry.field(description="The profile after the change; null when it was refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)
    pending_emails: list[str] = strawberry.field(
        default_factory=list,
        description="New addresses held until the member confirms them: each was sent a link (see "
                    "verifyMemberEmail); they are not on the profile yet.")


@strawberry.input(description="The token of the link sent to a member's new e-mail address.")
class VerifyMemberEmailInput:
    token: str = strawberry.field(description="The token, exactly as the link carries it.")


@strawberry.type(description="The result of verifyMemberEmail.")
class VerifyMemberEmailPayload:
    email: str | None = strawberry.field(
        description="The address now on the member's profile; null when it was refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


class AllowEmailTokenHolders(TenurePermission):
    """Every role, and callers with no credentials at all (the page the link opens): the
    signed token in the input is what admits them. Credentials that are sent must be valid."""

    roles = EVERYONE

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        if context.principal is None:
            if context.auth_error:
                raise GraphQLError(context.auth_error, extensions={"code": "UNAUTHENTICATED"})
            return True
        return super().has_permission(source, info, **kwargs)


@strawberry.type
class MemberMutations:
    @strawberry.mutation(permission_classes=[allow(Role.MEMBER)],
                         description="The member changes their own profile and consent (member tokens only).")
    async def update_me(self, info: Info, input: Annotated[UpdateMeInput, strawberry.argument(
            description="The fields to change.")]) -> MePayload:
        customer_id = member_id(info)
        given = CustomerInput(name=input.name, phones=input.phones, birthday=input.birthday,
                              locale=input.locale, consent=input.consent)
        if input.name is None:
            given.name = strawberry.UNSET  # a member cannot blank their name; leaving it out keeps it
        pending: list[str] = []

        async def work(ctx: ServiceContext) -> models.Customer:
            data = to_data(given)
            if input.emails is not strawberry.UNSET:
                # An address new to the record waits for its owner's confirmation: a member
                # cannot take over another customer's address by typing it.
                wanted = member_emails.clean_emails(input.emails)
                data.emails, held = await member_emails.hold_new_emails(ctx, customer_id, wanted)
                pending.extend(held)
            return await customers.update_customer(ctx, customer_id, data)

        me, errors = await in_transaction(info, work)
        return MePayload(me=me, user_errors=errors, pending_emails=pending if me is not None else [])  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[AllowEmailTokenHolders],
                         description="Confirm a member's new e-mail address with the token of the link sent to it "
                                     "(no other credentials are needed). The address joins the profile unless "
                                     "another customer's record holds it by then.")
    async def verify_member_email(self, info: Info, input: Annotated[VerifyMemberEmailInput, strawberry.argument(
            description="The token from the link.")]) -> VerifyMemberEmailPayload:
        principal = info.context.principal
        caller = principal.customer_id if principal is not None and principal.role == Role.MEMBER else None

        async def work(ctx: ServiceContext) -> str:
            _, address = await member_emails.verify_email(ctx, input.token, caller)
            return address

        email, errors = await in_transaction(info, work)
        return VerifyMemberEmailPayload(email=email, user_errors=errors)
