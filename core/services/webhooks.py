"""Webhook subscriptions and signed deliveries (HMAC-SHA256 of the body, subscriber's
secret), retried with backoff by the outbox and recorded, replayable on request."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import func, select

from core import validation as v
from core.context import ServiceContext
from core.errors import NotFound, UserError
from core.models import Event, WebhookDelivery, WebhookSubscription

SIGNATURE_HEADER = "X-Tenure-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _url(value: str) -> str:
    value = v.text(value, "url", max_length=2000)
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError("must be an http or https URL", "url", "invalid_url")
    return value


async def create_subscription(
    ctx: ServiceContext, url: str, event_types: list[str], description: str = ""
) -> WebhookSubscription:
    subscription = WebhookSubscription(
        url=_url(url),
        secret=secrets.token_hex(24),
        event_types=[v.text(t, "eventTypes", max_length=100) for t in event_types],
        description=v.text(description, "description", max_length=200, required=False),
        active=True,
        created_at=ctx.now(),
    )
    ctx.session.add(subscription)
    await ctx.session.flush()
    return subscription


def event_body(event: Event) -> bytes:
    return json.dumps(
        {"id": event.id, "type": event.type, "customerId": event.customer_id,
         "occurredAt": event.occurred_at.isoformat(), "summary": event.summary, "data": event.data},
        separators=(",", ":"),
    ).encode()


async def deliver(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``core.deliver_webhook`` job: POST the event and record the attempt. Receivers
    dedupe on ``X-Tenure-Event-Id``: a worker dying after the POST sends it again."""
    subscription = await ctx.session.get(WebhookSubscription, payload["subscriptionId"])
    event = await ctx.session.get(Event, payload["eventId"])
    if subscription is None or event is None or not subscription.active:
        return
    body = event_body(event)
    attempt = 1 + (await ctx.session.scalar(
        select(func.count()).select_from(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription.id, WebhookDelivery.event_id == event.id)
    ) or 0)
    started = time.perf_counter()
    status, error = None, None
    try:
        async with httpx.AsyncClient(timeout=ctx.settings.webhook_timeout_seconds) as client:
            response = await client.post(subscription.url, content=body, headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(subscription.secret, body),
                "X-Tenure-Event-Id": str(event.id),
                "X-Tenure-Event-Type": event.type,
            })
        status = response.status_code
        if status >= 300:
            error = f"the receiver answered HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"could not reach {subscription.url}: {type(exc).__name__} {exc}".strip()
    ok = error is None
    ctx.session.add(WebhookDelivery(subscription_id=subscription.id, event_id=event.id, attempt=attempt,
                                    status_code=status, ok=ok, error=error,
                                    duration_ms=int((time.perf_counter() - started) * 1000),
                                    delivered_at=ctx.now()))
    # A failed attempt is recorded and the next one queued with backoff, in this job's
    # transaction: the history shows every try, and a crash repeats at most one POST.
    if not ok and attempt < ctx.settings.job_max_attempts:
        backoff = ctx.settings.job_backoff_seconds * 2 ** (attempt - 1)
        await ctx.enqueue(
            "core.deliver_webhook",
            {"subscriptionId": subscription.id, "eventId": event.id},
            dedupe_key=f"webhook:{subscription.id}:{event.id}:{attempt + 1}",
            delay=timedelta(seconds=min(backoff, 3600)),
        )


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
