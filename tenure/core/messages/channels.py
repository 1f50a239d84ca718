"""The core's channels: email over SMTP and the signed message webhook."""

from __future__ import annotations

import asyncio
import json
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import httpx

from tenure.core import clock
from tenure.core.contributions import DeliveryError, MessageChannel, Outgoing
from tenure.core.services import webhook_signing

MESSAGE_ID_HEADER = "X-Tenure-Message-Id"


def mail_domain(settings: Any) -> str:
    address = parseaddr(settings.mail_from)[1]
    return address.rpartition("@")[2] or "tenure.local"


def build_email(settings: Any, message: Outgoing) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = message.message_id
    email[MESSAGE_ID_HEADER] = message.message_id
    email.set_content(message.body)
    return email


def _smtp_send(settings: Any, email: EmailMessage, to: str) -> None:
    smtp_class = smtplib.SMTP_SSL if settings.smtp_tls == "tls" else smtplib.SMTP
    with smtp_class(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_tls == "starttls":
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(email, from_addr=parseaddr(settings.mail_from)[1], to_addrs=[to])


class EmailChannel(MessageChannel):
    name = "email"
    consent = "email"
    contact_kind = "email"

    async def send(self, settings: Any, message: Outgoing) -> None:
        if not settings.smtp_host:
            raise DeliveryError("no SMTP server is set (TENURE_SMTP_HOST)")
        email = build_email(settings, message)
        try:
            # smtplib blocks; a thread keeps the event loop serving others meanwhile.
            await asyncio.to_thread(_smtp_send, settings, email, message.to)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the SMTP server refused {message.to}: {exc.recipients}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text}", permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"could not reach the SMTP server {settings.smtp_host}:{settings.smtp_port}: "
                f"{type(exc).__name__} {exc}".strip()
            ) from None


def webhook_body(message: Outgoing) -> bytes:
    return json.dumps(
        {"messageId": message.message_id, "id": message.id, "customerId": message.customer_id,
         "recipient": message.recipient, "template": message.template, "locale": message.locale,
         "subject": message.subject, "body": message.body, "data": message.data},
        separators=(",", ":"), sort_keys=True,
    ).encode()


class WebhookChannel(MessageChannel):
    """POSTs the rendered message as JSON to ``TENURE_MESSAGE_WEBHOOK_URL``, signed like
    event webhooks, after the Standard Webhooks specification with
    ``TENURE_MESSAGE_WEBHOOK_SECRET`` (``webhook-id`` is the message id). The business's own
    system (a push service, a CRM inbox) takes it from there; no consent flag applies."""

    name = "webhook"
    consent = None

    def address(self, settings: Any, customer: Any, contacts: list[Any], owner: Any, recipient: str) -> str | None:
        return settings.message_webhook_url or None

    async def send(self, settings: Any, message: Outgoing) -> None:
        body = webhook_body(message)
        headers = {"Content-Type": "application/json", MESSAGE_ID_HEADER: message.message_id,
                   **webhook_signing.headers([settings.message_webhook_secret], message.message_id, clock.now(), body)}
        try:
            async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds) as client:
                response = await client.post(message.to, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"could not reach {message.to}: {type(exc).__name__} {exc}".strip()) from None
        status = response.status_code
        if status >= 300:
            # A client error will not mend itself, except a timeout or a rate limit.
            raise DeliveryError(f"the receiver answered HTTP {status}",
                                permanent=400 <= status < 500 and status not in (408, 429))
