"""Signatures after the Standard Webhooks specification (https://www.standardwebhooks.com/),
for event webhooks and the message webhook alike.

Each delivery carries ``webhook-id`` (the same on every retry of it), ``webhook-timestamp``
(seconds since the epoch) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, one per valid secret, separated by spaces. The timestamp is signed,
so a captured delivery cannot be given a fresh one, and receivers refuse old ones. Written
with hmac and hashlib; the ``standardwebhooks`` package verifies what this signs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def new_secret() -> str:
    """A fresh secret in the spec's form: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The key bytes of a secret: the base64 after ``whsec_``; any other text (a message
    webhook secret set by hand) signs with its UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must be followed by base64") from None
    return secret.encode()


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body`` with ``secret``'s key."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: Iterable[str], webhook_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three headers of a delivery of ``body`` sent at ``at``, signed with each secret
    (during a rotation, the new one and the old one)."""
    timestamp = int(at.timestamp())
    return {
        ID_HEADER: webhook_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(signature(s, webhook_id, timestamp, body) for s in secrets_),
    }
