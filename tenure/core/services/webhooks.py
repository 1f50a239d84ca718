"""Webhook subscriptions and their deliveries: signed after the Standard Webhooks
specification (:mod:`tenure.core.services.webhook_signing`), sent only to allowed targets
(:mod:`tenure.core.services.webhook_targets`), retried on ``TENURE_WEBHOOK_RETRY_SCHEDULE`` with
jitter until the delivery is dead, every attempt recorded, replayable on request."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import validation as v
from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.errors import NotFound, UserError
from tenure.core.logging import shown_url
from tenure.core.models import Event, WebhookDelivery, WebhookSubscription
from tenure.core.outbox import GiveUp, RunAgain
from tenure.core.services import webhook_signing, webhook_targets

EVENT_ID_HEADER = "X-Tenure-Event-Id"
EVENT_TYPE_HEADER = "X-Tenure-Event-Type"
#: The longest a rotated-out secret may be kept, whatever is asked.
MAX_OVERLAP_SECONDS = 30 * 86400
#: Rotated-out secrets kept at once (each adds a signature to every delivery).
MAX_PREVIOUS_SECRETS = 4


async def _url(ctx: ServiceContext, value: str) -> str:
    value = v.text(value, "url", max_length=2000)
    try:
        await webhook_targets.check_subscription_url(value, ctx.settings)
    except webhook_targets.TargetRefused as exc:
        raise UserError(str(exc), "url", "invalid_url") from None
    return value


async def create_subscription(
    ctx: ServiceContext, url: str, event_types: list[str], description: str = ""
) -> WebhookSubscription:
    subscription = WebhookSubscription(
        url=await _url(ctx, url),
        secret=webhook_signing.new_secret(),
        event_types=[v.text(t, "eventTypes", max_length=100) for t in event_types],
        description=v.text(description, "description", max_length=200, required=False),
        active=True,
        created_at=ctx.now(),
    )
    ctx.session.add(subscription)
    await ctx.session.flush()
    return subscription


async def rotate_secret(
    ctx: ServiceContext, subscription_id: int, keep_previous_seconds: int | None = None
) -> WebhookSubscription:
    """Give the subscription a new secret; the one it had still signs deliveries (beside the
    new one) for ``keep_previous_seconds`` (``TENURE_WEBHOOK_SECRET_OVERLAP_SECONDS`` when
    not given). Secrets replaced before keep signing until their own windows end, so two
    rotations in a row (a retried request whose answer was lost) strand no receiver. 0 ends
    every earlier secret now, for one that leaked."""
    subscription = await ctx.session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound("webhook subscription", subscription_id, "subscriptionId")
    overlap = ctx.settings.webhook_secret_overlap_seconds if keep_previous_seconds is None else keep_previous_seconds
    if not 0 <= overlap <= MAX_OVERLAP_SECONDS:
        raise UserError(f"must be from 0 to {MAX_OVERLAP_SECONDS} seconds (30 days), got {overlap}",
                        "keepPreviousSeconds", "out_of_range")
    now = ctx.now()
    kept = []
    if overlap:
        replaced = {"secret": subscription.secret, "expiresAt": (now + timedelta(seconds=overlap)).isoformat()}
        kept = [replaced, *valid_previous(subscription, now)][:MAX_PREVIOUS_SECRETS]
    subscription.previous_secrets = kept or None
    subscription.secret = webhook_signing.new_secret()
    await ctx.session.flush()
    return subscription


def valid_previous(subscription: WebhookSubscription, at: datetime) -> list[dict[str, str]]:
    """The replaced secrets still signing at ``at``, newest first."""
    return [p for p in subscription.previous_secrets or [] if datetime.fromisoformat(p["expiresAt"]) > at]


def signing_secrets(subscription: WebhookSubscription, at: datetime) -> list[str]:
    """The secrets that sign a delivery sent at ``at``: the current one, and those it
    replaced while they are still valid."""
    return [subscription.secret, *(p["secret"] for p in valid_previous(subscription, at))]


def webhook_id(event_id: int) -> str:
    """The ``webhook-id`` of an event's delivery: the same on every retry and replay, so a
    receiver that keeps the ids it handled drops a repeat."""
    return f"evt_{event_id}"


def event_body(event: Event) -> bytes:
    return json.dumps(
        {"id": event.id, "type": event.type, "customerId": event.customer_id,
         "occurredAt": event.occurred_at.isoformat(), "summary": event.summary, "data": event.data},
        separators=(",", ":"),
    ).encode()


def retry_delay(settings: Any, attempt: int, rng: random.Random | None = None) -> timedelta | None:
    """How long after failed attempt ``attempt`` (1 the first) the next one waits: the
    schedule's delay, give or take ``TENURE_WEBHOOK_RETRY_JITTER`` of it (so receivers coming
    back up are not met by every delivery at once). ``None``: the schedule has run out."""
    delays = settings.webhook_retry_delays()
    if attempt > len(delays):
        return None
    jitter = settings.webhook_retry_jitter
    return timedelta(seconds=delays[attempt - 1] * (1 + (rng or random).uniform(-jitter, jitter)))


async def deliver(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``core.deliver_webhook`` job: POST the event, record the attempt, and either end
    (delivered), run again after the schedule's next delay, or give up (dead: the schedule
    ran out or the target is refused), the attempt recorded in each case."""
    subscription = await ctx.session.get(WebhookSubscription, payload["subscriptionId"])
    event = await ctx.session.get(Event, payload["eventId"])
    if subscription is None or event is None or not subscription.active:
        return
    body = event_body(event)
    attempt = 1 + (await ctx.session.scalar(
        select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.event_id == event.id)
    ) or 0)
    now = ctx.now()
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: str(event.id), EVENT_TYPE_HEADER: event.type,
               **webhook_signing.headers(signing_secrets(subscription, now), webhook_id(event.id), now, body)}
    started = time.perf_counter()
    status, error, refused = None, None, False
    shown = shown_url(subscription.url)
    try:
        async with httpx.AsyncClient(timeout=ctx.settings.webhook_timeout_seconds) as client:
            response = await webhook_targets.post(client, subscription.url, body, headers, ctx.settings)
        status = response.status_code
        if status >= 300:
            error = f"the receiver answered HTTP {status}"
    except webhook_targets.TargetRefused as exc:
        error, refused = f"not sent to {shown}: {exc}", True
    except LookupError as exc:
        error = str(exc)
    except (TimeoutError, httpx.TimeoutException):  # the whole exchange's deadline, or one step's
        error = f"{shown} did not answer within {ctx.settings.webhook_timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        error = f"could not reach {shown}: {type(exc).__name__} {exc}".strip()
    wait = None if error is None or refused else retry_delay(ctx.settings, ctx.attempt)
    dead = error is not None and wait is None
    # The next attempt is due ``wait`` after this one ended, as the outbox counts it.
    next_at = ctx.now() + wait if wait is not None else None
    ctx.session.add(WebhookDelivery(subscription_id=subscription.id, event_id=event.id, attempt=attempt,
                                    status_code=status, ok=error is None, error=error,
                                    duration_ms=int((time.perf_counter() - started) * 1000), delivered_at=now,
                                    next_attempt_at=next_at, dead=dead))
    await ctx.session.flush()
    # The attempt is kept in both cases; a crash before commit repeats at most one POST,
    # which the receiver drops by its webhook-id.
    if dead:
        tries = "refused" if refused else f"gave up after {ctx.attempt} attempts"
        raise GiveUp(f"webhook {webhook_id(event.id)} to subscription {subscription.id} {tries}: {error}")
    if error is not None and wait is not None:
        raise RunAgain(error, wait)


async def replay(ctx: ServiceContext, delivery_id: int) -> int:
    delivery = await ctx.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("webhook delivery", delivery_id, "deliveryId")
    entry = await ctx.enqueue(
        "core.deliver_webhook",
        {"subscriptionId": delivery.subscription_id, "eventId": delivery.event_id},
        dedupe_key=f"webhook-replay:{delivery.id}:{ctx.now().isoformat()}",
    )
    return entry or 0


@dataclass(frozen=True)
class Health:
    """How a subscription's deliveries are going, from their recorded attempts."""

    last_attempt_at: datetime | None
    last_success_at: datetime | None
    #: The last attempt's error, when it failed.
    last_error: str | None
    #: When the last attempt failed and another is scheduled: when.
    next_attempt_at: datetime | None
    #: Deliveries given up (schedule run out or target refused): ``tenure jobs failed``.
    dead_deliveries: int


async def health(session: AsyncSession, subscription_id: int) -> Health:
    of_subscription = WebhookDelivery.subscription_id == subscription_id
    last_success, dead = (await session.execute(
        select(func.max(WebhookDelivery.delivered_at).filter(WebhookDelivery.ok),
               func.count().filter(WebhookDelivery.dead)).where(of_subscription)
    )).one()
    last = await session.scalar(
        select(WebhookDelivery).where(of_subscription).order_by(WebhookDelivery.id.desc()).limit(1))
    return Health(
        last_attempt_at=as_utc(last.delivered_at) if last else None,
        last_success_at=as_utc(last_success) if last_success else None,
        last_error=last.error if last and not last.ok else None,
        next_attempt_at=as_utc(last.next_attempt_at) if last and last.next_attempt_at else None,
        dead_deliveries=int(dead or 0),
    )
