"""Messages and templates over GraphQL: ``messages(filter)`` (status, attempts, last
error), ``templates``, ``createTemplate``, ``updateTemplate``, ``retryMessage``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import models
from tenure.core.context import ServiceContext
from tenure.core.messages import retry_message, templates
from tenure.schema import loaders
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.queries import counter, runner, to_int
from tenure.schema.relay import Connection, paginate
from tenure.schema.types.common import JSON, UserError
from tenure.schema.types.core import Customer


@strawberry.enum(description="Where a message stands.")
class MessageStatus(Enum):
    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@strawberry.type(description="A message to a customer or their owner over one channel.")
class Message:
    id: strawberry.ID
    recipient: str = strawberry.field(description="customer or owner")
    channel: str
    template: str
    locale: str
    to_address: str | None
    subject: str
    body: str
    message_id: str = strawberry.field(description="The Message-ID sent with it, the same on every try.")
    skip_reason: str | None = strawberry.field(description="Why a skipped message was not sent.")
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None

    @strawberry.field
    def status(self: models.Message) -> MessageStatus:
        return MessageStatus(self.status)

    @strawberry.field
    def data(self: models.Message) -> JSON:
        return self.data  # type: ignore[return-value]

    @strawberry.field
    async def customer(self: models.Message, info: Info) -> Customer | None:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="The text of a message in one locale; placeholders are {name} in braces.")
class MessageTemplate:
    id: strawberry.ID | None = strawberry.field(description="None for a built-in text not edited yet.")
    key: str
    locale: str
    subject: str
    body: str
    built_in: bool = strawberry.field(description="True for a plugin's default text.")
    placeholders: list[str]
    updated_at: datetime | None


def _template(row: models.MessageTemplate) -> MessageTemplate:
    return MessageTemplate(id=strawberry.ID(str(row.id)), key=row.key, locale=row.locale, subject=row.subject,
                           body=row.body, built_in=False, placeholders=_names(row.subject, row.body),
                           updated_at=row.updated_at)


def _names(subject: str, body: str) -> list[str]:
    return list(dict.fromkeys(templates.placeholders(subject, "subject") + templates.placeholders(body, "body")))


@strawberry.input(description="Every condition given must hold.")
class MessageFilter:
    customer_id: strawberry.ID | None = None
    status: MessageStatus | None = None
    channel: str | None = None
    template: str | None = None
    dedupe_key: str | None = None


@strawberry.input
class CreateTemplateInput:
    key: str = strawberry.field(description="e.g. nps.invitation, renewals.reminder")
    locale: str = strawberry.field(description="e.g. en, de, pt-br")
    subject: str
    body: str


@strawberry.input
class UpdateTemplateInput:
    id: strawberry.ID
    subject: str | None = None
    body: str | None = None


@strawberry.input
class RetryMessageInput:
    id: strawberry.ID


@strawberry.type
class TemplatePayload:
    template: MessageTemplate | None
    user_errors: list[UserError]


@strawberry.type
class MessagePayload:
    message: Message | None
    user_errors: list[UserError]


@strawberry.type
class MessageQuery:
    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="messages:read")], description="Newest first.")
    async def messages(
        self, info: Info, first: int = 20, after: str | None = None, filter: MessageFilter | None = None
    ) -> Connection[Message]:
        stmt = select(models.Message)
        f = filter or MessageFilter()
        if f.customer_id is not None:
            stmt = stmt.where(models.Message.customer_id == to_int(f.customer_id, "filter.customerId"))
        if f.status is not None:
            stmt = stmt.where(models.Message.status == f.status.value)
        if f.channel is not None:
            stmt = stmt.where(models.Message.channel == f.channel)
        if f.template is not None:
            stmt = stmt.where(models.Message.template == f.template)
        if f.dedupe_key is not None:
            stmt = stmt.where(models.Message.dedupe_key == f.dedupe_key)
        order: list[tuple[Any, bool]] = [(models.Message.id, True)]
        return await paginate(runner(info), stmt, order, first=first, after=after,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Edited templates, and the built-in texts not edited yet.")
    async def templates(self, info: Info, key: str | None = None) -> list[MessageTemplate]:
        stmt = select(models.MessageTemplate).order_by(models.MessageTemplate.key, models.MessageTemplate.locale)
        if key is not None:
            stmt = stmt.where(models.MessageTemplate.key == key)
        edited = [_template(row[0]) for row in await runner(info)(stmt)]
        seen = {(t.key, t.locale) for t in edited}
        built_in = [
            MessageTemplate(id=None, key=d.key, locale=d.locale, subject=d.subject, body=d.body, built_in=True,
                            placeholders=_names(d.subject, d.body), updated_at=None)
            for (k, loc), d in sorted(templates.defaults(info.context.plugins).items())
            if (k, loc) not in seen and (key is None or k == key)
        ]
        return sorted(edited + built_in, key=lambda t: (t.key, t.locale))


@strawberry.type
class MessageMutations:
    @strawberry.mutation(permission_classes=[allow(*STAFF)],
                         description="Override a built-in text, or add a locale, for one template key.")
    async def create_template(self, info: Info, input: CreateTemplateInput) -> TemplatePayload:
        row, errors = await in_transaction(info, lambda ctx: templates.create_template(
            ctx, key=input.key, locale=input.locale, subject=input.subject, body=input.body))
        return TemplatePayload(template=_template(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def update_template(self, info: Info, input: UpdateTemplateInput) -> TemplatePayload:
        async def work(ctx: ServiceContext) -> models.MessageTemplate:
            return await templates.update_template(ctx, parse_id(input.id, "id"), subject=input.subject,
                                                   body=input.body)

        row, errors = await in_transaction(info, work)
        return TemplatePayload(template=_template(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Try a failed message again.")
    async def retry_message(self, info: Info, input: RetryMessageInput) -> MessagePayload:
        row, errors = await in_transaction(info, lambda ctx: retry_message(ctx, parse_id(input.id, "id")))
        return MessagePayload(message=row, user_errors=errors)  # type: ignore[arg-type]
