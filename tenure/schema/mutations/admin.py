"""Staff users, API keys, member tokens and webhook subscriptions."""

from __future__ import annotations

from datetime import datetime

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
from tenure.schema.types.common import UserError
from tenure.schema.types.core import StaffUser
from tenure.schema.types.events import WebhookSubscription


@strawberry.input
class CreateStaffUserInput:
    name: str
    email: str


@strawberry.type
class StaffUserPayload:
    staff_user: StaffUser | None
    user_errors: list[UserError]


@strawberry.input
class CreateApiKeyInput:
    name: str
    role: str = strawberry.field(description="admin, staff or integration")
    staff_email: str | None = strawberry.field(default=None, description="The staff user a staff key acts as.")
    scopes: list[str] = strawberry.field(default_factory=list, description="Integration scopes; empty means all.")
    expires_at: datetime | None = None


@strawberry.type(description="The key is shown here once and never again.")
class CreateApiKeyPayload:
    key: str | None
    key_id: strawberry.ID | None
    prefix: str | None
    user_errors: list[UserError]


@strawberry.type
class RevokePayload:
    revoked: bool
    user_errors: list[UserError]


@strawberry.input
class IssueMemberTokenInput:
    customer_id: strawberry.ID


@strawberry.type(description="A short-lived token that lets a member app read and change this customer's own data.")
class MemberTokenPayload:
    token: str | None
    expires_at: datetime | None
    user_errors: list[UserError]


@strawberry.input
class CreateWebhookSubscriptionInput:
    url: str
    event_types: list[str] = strawberry.field(default_factory=list)
    description: str = ""


@strawberry.type(description="`secret` (whsec_<base64>) signs every delivery after the Standard Webhooks "
                             "specification (webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>); "
                             "shown once.")
class WebhookSubscriptionPayload:
    subscription: WebhookSubscription | None
    secret: str | None
    user_errors: list[UserError]


@strawberry.input
class RotateWebhookSecretInput:
    subscription_id: strawberry.ID
    keep_previous_seconds: int | None = strawberry.field(
        default=None, description="How long the secret being replaced still signs deliveries, beside the new "
                                  "one (default TENURE_WEBHOOK_SECRET_OVERLAP_SECONDS; 0 ends it and every "
                                  "earlier one now, for a secret that leaked).")


@strawberry.type
class ReplayPayload:
    queued: bool
    user_errors: list[UserError]


@strawberry.type
class AdminMutations:
    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)])
    async def create_staff_user(self, info: Info, input: CreateStaffUserInput) -> StaffUserPayload:
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

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)])
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def work(ctx: ServiceContext) -> auth.CreatedKey:
            return await auth.create_api_key(ctx.session, name=input.name, role=input.role,
                                             staff_email=input.staff_email, scopes=input.scopes,
                                             expires_at=input.expires_at)

        created, errors = await in_transaction(info, work)
        if created is None:
            return CreateApiKeyPayload(key=None, key_id=None, prefix=None, user_errors=errors)
        return CreateApiKeyPayload(key=created.key, key_id=strawberry.ID(str(created.record.id)),
                                   prefix=created.record.prefix, user_errors=[])

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)])
    async def revoke_api_key(self, info: Info, key_id: strawberry.ID) -> RevokePayload:
        revoked, errors = await in_transaction(
            info, lambda ctx: auth.revoke_api_key(ctx.session, parse_id(key_id, "keyId")))
        return RevokePayload(revoked=bool(revoked), user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN, Role.INTEGRATION, scope="members:tokens")])
    async def issue_member_token(self, info: Info, input: IssueMemberTokenInput) -> MemberTokenPayload:
        async def work(ctx: ServiceContext) -> tuple[str, datetime]:
            customer_id = parse_id(input.customer_id, "customerId")
            if await ctx.session.get(Customer, customer_id) is None:
                raise NotFound("customer", customer_id, "customerId")
            return auth.member_token(ctx.settings.signing_key, customer_id, ctx.settings.member_token_ttl_seconds)

        result, errors = await in_transaction(info, work)
        token, expires = result if result else (None, None)
        return MemberTokenPayload(token=token, expires_at=expires, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)])
    async def create_webhook_subscription(
        self, info: Info, input: CreateWebhookSubscriptionInput
    ) -> WebhookSubscriptionPayload:
        row, errors = await in_transaction(info, lambda ctx: webhooks.create_subscription(
            ctx, input.url, input.event_types, input.description))
        return WebhookSubscriptionPayload(subscription=row, secret=row.secret if row else None,  # type: ignore[arg-type]
                                          user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)], description=(
        "Give a subscription a new secret, shown once in `secret`. Until "
        "`subscription.previousSecretsExpireAt` deliveries carry a signature by each secret, so the "
        "receiver can switch at its own pace."))
    async def rotate_webhook_secret(self, info: Info, input: RotateWebhookSecretInput) -> WebhookSubscriptionPayload:
        row, errors = await in_transaction(info, lambda ctx: webhooks.rotate_secret(
            ctx, parse_id(input.subscription_id, "subscriptionId"), input.keep_previous_seconds))
        return WebhookSubscriptionPayload(subscription=row, secret=row.secret if row else None,  # type: ignore[arg-type]
                                          user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)], description="Send a delivery's event again.")
    async def replay_webhook_delivery(self, info: Info, delivery_id: strawberry.ID) -> ReplayPayload:
        queued, errors = await in_transaction(
            info, lambda ctx: webhooks.replay(ctx, parse_id(delivery_id, "deliveryId")))
        return ReplayPayload(queued=bool(queued), user_errors=errors)
