"""Messages and templates over GraphQL: ``messages(filter)`` (status, attempts, last
error), ``templates``, ``createTemplate``, ``updateTemplate``, ``retryMessage``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

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
from tenure.schema.relay import After, Before, Connection, First, Last, Node, node, paginate, to_global_id
from tenure.schema.types.common import JSON, USER_ERRORS, UserError
from tenure.schema.types.core import Customer


@strawberry.enum(description="Where a message stands.")
class MessageStatus(Enum):
    PENDING = strawberry.enum_value("pending", description="Recorded, waiting to be sent.")
    RETRYING = strawberry.enum_value(
        "retrying", description="A try failed; another is due at nextAttemptAt.")
    SENT = strawberry.enum_value("sent", description="Handed to the channel: sentAt says when.")
    SKIPPED = strawberry.enum_value(
        "skipped", description="Not sent on purpose (no consent, no address ...): skipReason says why.")
    FAILED = strawberry.enum_value(
        "failed", description="Every try failed and no more are due: lastError says why; retryMessage tries again.")


@strawberry.type(description="A message to a customer or their owner over one channel.")
@node(models.Message, allow(*BACKOFFICE, scope="messages:read"))
class Message(Node):
    recipient: str = strawberry.field(
        description="Who it is for: `customer`, or `owner` for the customer's account manager.")
    channel: str = strawberry.field(description="How it is sent, such as `email` or `sms`.")
    template: str = strawberry.field(description="The key of the template it was written from, e.g. `nps.invitation`.")
    locale: str = strawberry.field(description="The language it was written in, such as `en` or `pt-br`.")
    to_address: str | None = strawberry.field(
        description="The email address or phone number it goes to; null when the recipient has none.")
    subject: str = strawberry.field(description="The subject line as sent; empty for channels without one.")
    body: str = strawberry.field(description="The text as sent, placeholders filled in.")
    message_id: str = strawberry.field(description="The Message-ID sent with it, the same on every try.")
    skip_reason: str | None = strawberry.field(description="Why a skipped message was not sent.")
    attempts: int = strawberry.field(description="How many times sending was tried.")
    last_error: str | None = strawberry.field(description="Why the latest try failed; null if none failed.")
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next try is due; null when none is (sent, skipped or failed for good).")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    sent_at: datetime | None = strawberry.field(description="When it was handed to the channel; null until then.")

    @strawberry.field(description="Where it stands.")
    def status(self: models.Message) -> MessageStatus:
        return MessageStatus(self.status)

    @strawberry.field(description="The values its placeholders were filled with, as a JSON object.")
    def data(self: models.Message) -> JSON:
        return self.data  # type: ignore[return-value]

    @strawberry.field(description="The customer it is about; null once the customer was erased.")
    async def customer(self: models.Message, info: Info) -> Customer | None:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="The text of a message in one locale; placeholders are {name} in braces.")
class MessageTemplate:
    id: strawberry.ID | None = strawberry.field(description="None for a built-in text not edited yet.")
    key: str = strawberry.field(description="What the text is for, such as `nps.invitation` or `renewals.reminder`.")
    locale: str = strawberry.field(description="Its language, such as `en`, `de` or `pt-br`.")
    subject: str = strawberry.field(description="The subject line; empty for channels without one.")
    body: str = strawberry.field(description="The text, with {placeholders} in braces.")
    built_in: bool = strawberry.field(description="True for a plugin's default text.")
    placeholders: list[str] = strawberry.field(description="The placeholder names subject and body use.")
    updated_at: datetime | None = strawberry.field(description="When it was last edited; null for a built-in text.")


def _template(row: models.MessageTemplate) -> MessageTemplate:
    return MessageTemplate(id=to_global_id("MessageTemplate", row.id), key=row.key, locale=row.locale,
                           subject=row.subject, body=row.body, built_in=False,
                           placeholders=_names(row.subject, row.body), updated_at=row.updated_at)


def _names(subject: str, body: str) -> list[str]:
    return list(dict.fromkeys(templates.placeholders(subject, "subject") + templates.placeholders(body, "body")))


@strawberry.input(description="Every condition given must hold.")
class MessageFilter:
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="Messages about this customer.")
    status: MessageStatus | None = strawberry.field(default=None, description="Messages with this status.")
    channel: str | None = strawberry.field(default=None, description="Messages over this channel, such as `email`.")
    template: str | None = strawberry.field(
        default=None, description="Messages written from this template key, such as `nps.invitation`.")
    dedupe_key: str | None = strawberry.field(
        default=None, description="The messages recorded for one cause (the key that keeps them from repeating).")


@strawberry.input(description="A text for one template key and locale.")
class CreateTemplateInput:
    key: str = strawberry.field(description="The template key, such as `nps.invitation` or `renewals.reminder`.")
    locale: str = strawberry.field(description="The language, such as `en`, `de` or `pt-br`.")
    subject: str = strawberry.field(description="The subject line, with {placeholders}.")
    body: str = strawberry.field(description="The text, with {placeholders}.")


@strawberry.input(description="Changes to an edited template.")
class UpdateTemplateInput:
    id: strawberry.ID = strawberry.field(description="The template's id.")
    subject: str | None = strawberry.field(default=None, description="The new subject line; null keeps it.")
    body: str | None = strawberry.field(default=None, description="The new text; null keeps it.")


@strawberry.input(description="The message to send again.")
class RetryMessageInput:
    id: strawberry.ID = strawberry.field(description="The message's id.")


@strawberry.type(description="The result of createTemplate or updateTemplate.")
class TemplatePayload:
    template: MessageTemplate | None = strawberry.field(description="The template as saved; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of retryMessage.")
class MessagePayload:
    message: Message | None = strawberry.field(description="The message, queued again; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type
class MessageQuery:
    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="messages:read")],
                      description="Messages, newest first.")
    async def messages(
        self, info: Info, first: First = 20, after: After = None, last: Last = None, before: Before = None,
        filter: Annotated[MessageFilter | None, strawberry.argument(
            description="Which messages; null for all of them.")] = None,
    ) -> Connection[Message]:
        stmt = select(models.Message)
        f = filter or MessageFilter()
        if f.customer_id is not None:
            stmt = stmt.where(models.Message.customer_id == to_int(f.customer_id, "filter.customerId", "Customer"))
        if f.status is not None:
            stmt = stmt.where(models.Message.status == f.status.value)
        if f.channel is not None:
            stmt = stmt.where(models.Message.channel == f.channel)
        if f.template is not None:
            stmt = stmt.where(models.Message.template == f.template)
        if f.dedupe_key is not None:
            stmt = stmt.where(models.Message.dedupe_key == f.dedupe_key)
        order: list[tuple[Any, bool]] = [(models.Message.id, True)]
        return await paginate(runner(info), stmt, order, first=first, after=after, last=last, before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))

    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="Edited templates, and the built-in texts not edited yet.")
    async def templates(self, info: Info, key: Annotated[str | None, strawberry.argument(
            description="Only this template key, such as `nps.invitation`; null for every key.")] = None,
    ) -> list[MessageTemplate]:
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
    async def create_template(self, info: Info, input: Annotated[CreateTemplateInput, strawberry.argument(
            description="The key, locale and text.")]) -> TemplatePayload:
        row, errors = await in_transaction(info, lambda ctx: templates.create_template(
            ctx, key=input.key, locale=input.locale, subject=input.subject, body=input.body))
        return TemplatePayload(template=_template(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Change an edited template's text.")
    async def update_template(self, info: Info, input: Annotated[UpdateTemplateInput, strawberry.argument(
            description="The template and its new text.")]) -> TemplatePayload:
        async def work(ctx: ServiceContext) -> models.MessageTemplate:
            return await templates.update_template(ctx, parse_id(input.id, "id", "MessageTemplate"),
                                                   subject=input.subject,
                                                   body=input.body)

        row, errors = await in_transaction(info, work)
        return TemplatePayload(template=_template(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Try a failed message again.")
    async def retry_message(self, info: Info, input: Annotated[RetryMessageInput, strawberry.argument(
            description="The message.")]) -> MessagePayload:
        row, errors = await in_transaction(info, lambda ctx: retry_message(ctx, parse_id(input.id, "id", "Message")))
        return MessagePayload(message=row, user_errors=errors)  # type: ignore[arg-type]
