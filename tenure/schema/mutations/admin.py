"""Staff users, API keys, member tokens and webhook subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import auth
from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.errors import NotFound
from tenure.core.errors import UserError as DomainUserError
from tenure.core.models import Customer, Role
from tenure.core.models import StaffUser as StaffRow
from tenure.core.services import webhooks
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import allow
from tenure.schema.types.common import USER_ERRORS, UserError
from tenure.schema.types.core import StaffUser
from tenure.schema.types.events import WebhookSubscription


@strawberry.input(description="A new member of staff.")
class CreateStaffUserInput:
    name: str = strawberry.field(description="The full name, at most 200 characters.")
    email: str = strawberry.field(description="The work email address; no other staff user may have it.")


@strawberry.type(description="The result of createStaffUser.")
class StaffUserPayload:
    staff_user: StaffUser | None = strawberry.field(description="The staff user created; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for, so it can be told apart from the others.")
    role: str = strawberry.field(description="What the key may do: `admin`, `staff` or `integration`.")
    staff_email: str | None = strawberry.field(default=None, description="The staff user a staff key acts as.")
    scopes: list[str] = strawberry.field(default_factory=list, description="Integration scopes; empty means all.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working, with a time zone; null for never.")


@strawberry.type(description="The key is shown here once and never again.")
class CreateApiKeyPayload:
    key: str | None = strawberry.field(
        description="The whole key, to send as `Authorization: Bearer <key>`; null when refused.")
    key_id: strawberry.ID | None = strawberry.field(description="The key's id, for revokeApiKey; null when refused.")
    prefix: str | None = strawberry.field(
        description="The key's first characters, which identify it in lists and logs; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of revokeApiKey.")
class RevokePayload:
    revoked: bool = strawberry.field(description="True when the key no longer works.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="The customer a member token is for.")
class IssueMemberTokenInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer's id.")


@strawberry.type(description="A short-lived token that lets a member app read and change this customer's own data.")
class MemberTokenPayload:
    token: str | None = strawberry.field(
        description="The token, for the member app to send as `Authorization: Bearer <token>`; null when refused.")
    expires_at: datetime | None = strawberry.field(
        description="When it stops working (TENURE_MEMBER_TOKEN_TTL_SECONDS after issue); null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="A new webhook subscription.")
class CreateWebhookSubscriptionInput:
    url: str = strawberry.field(description="Where deliveries are POSTed.")
    event_types: list[str] = strawberry.field(
        default_factory=list,
        description="The event types to deliver, or patterns such as `order.*`; empty for every event.")
    description: str = strawberry.field(default="", description="What the subscription is for.")


@strawberry.type(description="`secret` (whsec_<base64>) signs every delivery after the Standard Webhooks "
                             "specification (webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>); "
                             "shown once.")
class WebhookSubscriptionPayload:
    subscription: WebhookSubscription | None = strawberry.field(
        description="The subscription after the change; null when refused.")
    secret: str | None = strawberry.field(
        description="The signing secret, shown this once; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="The subscription whose secret to replace.")
class RotateWebhookSecretInput:
    subscription_id: strawberry.ID = strawberry.field(description="The subscription's id.")
    keep_previous_seconds: int | None = strawberry.field(
        default=None, description="How long the secret being replaced still signs deliveries, beside the new "
                                  "one (default TENURE_WEBHOOK_SECRET_OVERLAP_SECONDS; 0 ends it and every "
                                  "earlier one now, for a secret that leaked).")


@strawberry.type(description="The result of replayWebhookDelivery.")
class ReplayPayload:
    queued: bool = strawberry.field(description="True when the event is queued to be delivered again.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type
class AdminMutations:
    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)], description="Add a member of staff.")
    async def create_staff_user(self, info: Info, input: Annotated[CreateStaffUserInput, strawberry.argument(
            description="The staff user.")]) -> StaffUserPayload:
        async def work(ctx: ServiceContext) -> StaffRow:
            email = v.email(input.email, "email")
            if await ctx.session.scalar(select(StaffRow.id).where(StaffRow.email == email)) is not None:
                raise DomainUserError(f"{email} is already a staff user", "email", "taken")
            row = StaffRow(name=v.text(input.name, "name", max_length=200), email=email, active=True,
                           created_at=ctx.now())
            ctx.session.add(row)
            await ctx.session.flush()
            return row

        staff, errors = await in_transaction(info, work)
        return StaffUserPayload(staff_user=staff, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)],
                         description="Create an API key; the key itself is shown once, in the payload.")
    async def create_api_key(self, info: Info, input: Annotated[CreateApiKeyInput, strawberry.argument(
            description="The key's name, role, scopes and expiry.")]) -> CreateApiKeyPayload:
        async def work(ctx: ServiceContext) -> auth.CreatedKey:
            return await auth.create_api_key(ctx.session, name=input.name, role=input.role,
                                             staff_email=input.staff_email, scopes=input.scopes,
                                             expires_at=input.expires_at)

        created, errors = await in_transaction(info, work)
        if created is None:
            return CreateApiKeyPayload(key=None, key_id=None, prefix=None, user_errors=errors)
        return CreateApiKeyPayload(key=created.key, key_id=strawberry.ID(str(created.record.id)),
                                   prefix=created.record.prefix, user_errors=[])

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)],
                         description="Revoke an API key: it stops working at once.")
    async def revoke_api_key(self, info: Info, key_id: Annotated[strawberry.ID, strawberry.argument(
            description="The key's id (CreateApiKeyPayload.keyId).")]) -> RevokePayload:
        revoked, errors = await in_transaction(
            info, lambda ctx: auth.revoke_api_key(ctx.session, parse_id(key_id, "keyId")))
        return RevokePayload(revoked=bool(revoked), user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN, Role.INTEGRATION, scope="members:tokens")],
                         description="Issue a member token for a customer, for the app they sign in to.")
    async def issue_member_token(self, info: Info, input: Annotated[IssueMemberTokenInput, strawberry.argument(
            description="The customer.")]) -> MemberTokenPayload:
        async def work(ctx: ServiceContext) -> tuple[str, datetime]:
            customer_id = parse_id(input.customer_id, "customerId", "Customer")
            if await ctx.session.get(Customer, customer_id) is None:
                raise NotFound("customer", customer_id, "customerId")
            return auth.member_token(ctx.settings.signing_key, customer_id, ctx.settings.member_token_ttl_seconds)

        result, errors = await in_transaction(info, work)
        token, expires = result if result else (None, None)
        return MemberTokenPayload(token=token, expires_at=expires, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)],
                         description="Subscribe a URL to events; its signing secret is shown once, in the payload.")
    async def create_webhook_subscription(
        self, info: Info, input: Annotated[CreateWebhookSubscriptionInput, strawberry.argument(
            description="The URL and the events it wants.")],
    ) -> WebhookSubscriptionPayload:
        row, errors = await in_transaction(info, lambda ctx: webhooks.create_subscription(
            ctx, input.url, input.event_types, input.description))
        return WebhookSubscriptionPayload(subscription=row, secret=row.secret if row else None,  # type: ignore[arg-type]
                                          user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)], description=(
        "Give a subscription a new secret, shown once in `secret`. Until "
        "`subscription.previousSecretsExpireAt` deliveries carry a signature by each secret, so the "
        "receiver can switch at its own pace."))
    async def rotate_webhook_secret(self, info: Info, input: Annotated[RotateWebhookSecretInput, strawberry.argument(
            description="The subscription, and how long the old secret still signs.")]) -> WebhookSubscriptionPayload:
        row, errors = await in_transaction(info, lambda ctx: webhooks.rotate_secret(
            ctx, parse_id(input.subscription_id, "subscriptionId", "WebhookSubscription"), input.keep_previous_seconds))
        return WebhookSubscriptionPayload(subscription=row, secret=row.secret if row else None,  # type: ignore[arg-type]
                                          user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)], description="Send a delivery's event again.")
    async def replay_webhook_delivery(self, info: Info, delivery_id: Annotated[strawberry.ID, strawberry.argument(
            description="The delivery attempt's id (WebhookDelivery.id).")]) -> ReplayPayload:
        queued, errors = await in_transaction(
            info, lambda ctx: webhooks.replay(ctx, parse_id(delivery_id, "deliveryId", "WebhookDelivery")))
        return ReplayPayload(queued=bool(queued), user_errors=errors)
