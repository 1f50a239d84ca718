"""Recording messages in the business transaction and delivering them afterwards.

``send_message`` renders the template, writes one ``messages`` row per channel and queues
the ``core.deliver_message`` job in the same transaction (the outbox): nothing is sent if
the change rolls back, nothing is lost if the process dies after the commit. A message's
dedupe key is unique per channel, so the same reminder asked for twice is recorded once.

Delivery runs under the outbox's claim, and the message is marked sent in the same
transaction that marks the job done; a message already sent is never sent again. The one
window left, a worker killed after the receiver took the message but before that commit,
repeats the message with the same Message-ID, which receivers use to drop it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.contributions import DeliveryError, MessageChannel, Outgoing
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import NotFound, UserError
from tenure.core.events import CustomersMerged
from tenure.core.messages import templates
from tenure.core.messages.channels import mail_domain
from tenure.core.models import Customer, CustomerContact, Message, MessageStatus, StaffUser

DELIVER_JOB = "core.deliver_message"
#: ``new_address``: an address the customer asked to add, sent its verification message
#: (core.services.member_emails); the customer asked for it, so no consent applies.
RECIPIENTS = ("customer", "owner", "new_address")
FINAL = (MessageStatus.SENT, MessageStatus.SKIPPED, MessageStatus.FAILED)


def available_channels(plugins: Any) -> dict[str, MessageChannel]:
    found: dict[str, MessageChannel] = {}
    for contributed in plugins.hook.tenure_message_channels():
        for channel in contributed or ():
            if channel.name in found:
                raise ValueError(f"two message channels are named {channel.name!r}")
            found[channel.name] = channel
    return found


def message_id_for(settings: Any, dedupe_key: str, channel: str, recipient: str) -> str:
    digest = hashlib.sha256(f"{dedupe_key}|{channel}|{recipient}".encode()).hexdigest()[:40]
    return f"<{digest}@{mail_domain(settings)}>"


def in_quiet_hours(settings: Any, at: datetime) -> datetime | None:
    """When quiet hours hold at ``at``, the time (UTC) they end; else ``None``. The hours are
    those of the business time zone (``TENURE_TIMEZONE``): 21 to 8 is the night where the
    business and its customers are."""
    start, end = settings.message_quiet_start_hour, settings.message_quiet_end_hour
    if start is None or end is None or start == end:
        return None
    local = at.astimezone(settings.zone)
    hour = local.hour
    quiet = start <= hour < end if start < end else (hour >= start or hour < end)
    if not quiet:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends = (local + timedelta(days=1)).replace(hour=end, minute=0, second=0, microsecond=0)
    return ends.astimezone(UTC)


async def _recipient_details(
    session: AsyncSession, customer: Customer
) -> tuple[list[CustomerContact], StaffUser | None]:
    contacts = list(await session.scalars(
        select(CustomerContact).where(CustomerContact.customer_id == customer.id).order_by(CustomerContact.id)))
    owner = await session.get(StaffUser, customer.owner_id) if customer.owner_id is not None else None
    return contacts, owner


def skip_reason(channel: MessageChannel, customer: Customer, recipient: str, address: str | None,
                owner: StaffUser | None) -> str | None:
    """Why this message must not go out, in words; ``None`` when it may."""
    if customer.erased_at is not None:
        return "the customer's data was erased"
    if recipient == "customer" and channel.consent is not None and not getattr(
            customer, f"consent_{channel.consent}", False):
        return f"the customer has not consented to {channel.consent} (consent.{channel.consent} is off)"
    if recipient == "owner" and (owner is None or not owner.active):
        return "the customer has no active owner"
    if not address:
        if channel.name == "webhook":
            return "no message webhook is set (TENURE_MESSAGE_WEBHOOK_URL)"
        return f"no {channel.contact_kind or channel.name} address for the {recipient}"
    return None


async def send_message(
    ctx: ServiceContext,
    *,
    customer_id: int,
    template: str,
    data: dict[str, Any],
    dedupe_key: str,
    channels: list[str] | tuple[str, ...] | None = None,
    recipient: str = "customer",
    to_address: str | None = None,
) -> int | None:
    """Record a message to the customer (or, with ``recipient="owner"``, to the customer's
    owner) over each of ``channels`` (default ``TENURE_MESSAGE_CHANNELS``) and queue its
    delivery after commit. Returns the new message's id (the first channel's), or ``None``
    when ``dedupe_key`` was already used: the same message is never recorded twice.

    A message that must not go out (no consent, no address) is recorded as ``skipped``
    with the reason, so the API shows why nothing arrived.
    """
    dedupe_key = v.text(dedupe_key, "dedupeKey", max_length=250)
    if recipient not in RECIPIENTS:
        raise UserError(f"recipient must be one of {', '.join(RECIPIENTS)}", "recipient")
    if (recipient == "new_address") != (to_address is not None):
        raise UserError("to_address goes with recipient new_address, and only with it", "recipient")
    registry = available_channels(ctx.plugins)
    names = list(dict.fromkeys(channels or ctx.settings.message_channels))
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise UserError(f"no message channel named {', '.join(unknown)} (there are: {', '.join(registry)})",
                        "channels", "not_found")
    customer = await ctx.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id, "customerId")
    contacts, owner = await _recipient_details(ctx.session, customer)
    values = {"customer_name": customer.name, **data}
    if owner is not None:
        values.setdefault("owner_name", owner.name)
    locale, subject, body = await templates.resolve(ctx, template, customer.locale)
    first: int | None = None
    now = ctx.now()
    for name in names:
        channel = registry[name]
        address = to_address if recipient == "new_address" else channel.address(
            ctx.settings, customer, contacts, owner, recipient)
        reason = skip_reason(channel, customer, recipient, address, owner)
        row = {
            "customer_id": customer.id, "recipient": recipient, "channel": name, "template": template,
            "locale": locale, "to_address": address, "subject": templates.render(subject, values)[:300],
            "body": templates.render(body, values), "data": data, "dedupe_key": dedupe_key,
            "message_id": message_id_for(ctx.settings, dedupe_key, name, recipient),
            "status": MessageStatus.SKIPPED if reason else MessageStatus.PENDING, "skip_reason": reason,
            "attempts": 0, "created_at": now,
        }
        stmt = insert_ignoring_conflicts(ctx.dialect, Message.__table__).values(row).returning(Message.id)
        message_id = (await ctx.session.execute(stmt)).scalar_one_or_none()
        if message_id is None:
            continue
        if reason is None:
            await ctx.enqueue(DELIVER_JOB, {"messageId": message_id}, dedupe_key=f"message:{message_id}")
        first = first if first is not None else message_id
    return first


def _outgoing(message: Message) -> Outgoing:
    return Outgoing(id=message.id, message_id=message.message_id, customer_id=message.customer_id,
                    recipient=message.recipient, to=message.to_address or "", template=message.template,
                    locale=message.locale, subject=message.subject, body=message.body, data=dict(message.data))


@dataclass
class _Decision:
    """What one delivery try is to do, decided before anything is written."""

    message: Message
    action: str  # send, skip, fail or wait
    channel: MessageChannel | None = None
    reason: str | None = None
    until: datetime | None = None


async def _decide(ctx: ServiceContext, session: AsyncSession, message_id: int, *, lock: bool) -> _Decision | None:
    message = await session.get(Message, message_id, with_for_update=lock)
    if message is None or message.status in FINAL:
        return None
    channel = available_channels(ctx.plugins).get(message.channel)
    if channel is None:
        return _Decision(message, "fail", reason=f"no channel named {message.channel} is on")
    customer = await session.get(Customer, message.customer_id)
    if customer is None:
        return _Decision(message, "skip", reason="the customer no longer exists")
    # Consent may have been withdrawn since the message was recorded.
    _, owner = await _recipient_details(session, customer)
    reason = skip_reason(channel, customer, message.recipient, message.to_address, owner)
    if reason is not None:
        return _Decision(message, "skip", reason=reason)
    quiet_until = in_quiet_hours(ctx.settings, ctx.now()) if message.recipient == "customer" else None
    if quiet_until is not None:
        return _Decision(message, "wait", until=quiet_until)
    return _Decision(message, "send", channel=channel)


async def deliver(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``core.deliver_message`` job: one try at one message.

    On SQLite (one writer at a time) the message is read and sent before this job's write
    transaction begins, so a slow mail server never holds other writes up; on PostgreSQL
    the message row is locked for the try. Either way the result is written, and the job
    marked done, in one transaction that skips a message another try already finished.
    """
    message_id = int(payload["messageId"])
    engine = ctx.session.bind
    if ctx.dialect == "sqlite" and isinstance(engine, AsyncEngine):
        async with AsyncSession(engine.execution_options(tenure_readonly=True)) as reader:
            decision = await _decide(ctx, reader, message_id, lock=False)
    else:
        decision = await _decide(ctx, ctx.session, message_id, lock=True)
    if decision is None:
        return
    failure: DeliveryError | None = None
    if decision.action == "send" and decision.channel is not None:
        try:
            await decision.channel.send(ctx.settings, _outgoing(decision.message))
        except DeliveryError as exc:
            failure = exc
    message = await ctx.session.get(Message, message_id, with_for_update=True)
    if message is None or message.status in FINAL:
        return
    now = ctx.now()
    if decision.action in ("skip", "fail"):
        message.status = MessageStatus.SKIPPED if decision.action == "skip" else MessageStatus.FAILED
        message.skip_reason = decision.reason if decision.action == "skip" else None
        message.last_error = decision.reason if decision.action == "fail" else message.last_error
        return
    if decision.action == "wait" and decision.until is not None:
        message.next_attempt_at = decision.until
        await ctx.enqueue(DELIVER_JOB, {"messageId": message.id},
                          dedupe_key=f"message:{message.id}:quiet:{decision.until.isoformat()}",
                          delay=decision.until - now)
        return
    message.attempts += 1
    if failure is not None:
        message.last_error = str(failure)[:4000]
        if failure.permanent or message.attempts >= ctx.settings.message_max_attempts:
            message.status, message.next_attempt_at = MessageStatus.FAILED, None
            await _record(ctx, message, "message.failed", f"could not be sent: {message.last_error}")
            return
        backoff = timedelta(seconds=min(ctx.settings.job_backoff_seconds * 2 ** (message.attempts - 1), 3600))
        message.status, message.next_attempt_at = MessageStatus.RETRYING, now + backoff
        await ctx.enqueue(DELIVER_JOB, {"messageId": message.id},
                          dedupe_key=f"message:{message.id}:{message.attempts + 1}", delay=backoff)
        return
    message.status, message.sent_at = MessageStatus.SENT, now
    message.last_error, message.next_attempt_at = None, None
    await _record(ctx, message, "message.sent", f"sent to {message.to_address}")


async def _record(ctx: ServiceContext, message: Message, kind: str, what: str) -> None:
    """On the customer's timeline (and to webhook subscribers of ``message.*``)."""
    who = "the owner" if message.recipient == "owner" else "the customer"
    await ctx.publish(kind, source="core", customer_id=message.customer_id, timeline=True,
                      summary=f"{message.channel.capitalize()} \u201c{message.subject}\u201d to {who} {what}",
                      data={"messageId": message.id, "template": message.template, "channel": message.channel,
                            "recipient": message.recipient, "status": message.status})


async def retry_message(ctx: ServiceContext, message_id: int) -> Message:
    """Try a failed message again (after fixing an address or the SMTP settings)."""
    message = await ctx.session.get(Message, message_id)
    if message is None:
        raise NotFound("message", message_id, "id")
    if message.status != MessageStatus.FAILED:
        raise UserError(f"only a failed message can be retried (this one is {message.status})", "id",
                        "invalid_status")
    message.status, message.last_error = MessageStatus.RETRYING, message.last_error
    await ctx.enqueue(DELIVER_JOB, {"messageId": message.id},
                      dedupe_key=f"message:{message.id}:retry:{message.attempts}")
    await ctx.session.flush()
    return message


async def move_merged(ctx: ServiceContext, event: CustomersMerged) -> None:
    await ctx.session.execute(
        update(Message).where(Message.customer_id == event.merged_id).values(customer_id=event.survivor.id))
