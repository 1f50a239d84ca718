"""Who is calling: API keys (stored hashed), member tokens, and signed tokens for links.

An API key is ``tnr_<prefix>_<secret>``; only its SHA-256 is stored (keys are long and
random, so a slow hash buys nothing) and the prefix identifies it in lists and logs.
Member tokens and link tokens are HMAC-SHA256 signed with ``TENURE_SECRET_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import clock
from tenure.core.errors import UserError
from tenure.core.models import ApiKey, Role, StaffUser
from tenure.core.reads import Read

KEY_ROLES = (Role.ADMIN, Role.STAFF, Role.INTEGRATION)
#: What every API key starts with; any other bearer token is signed and needs no database.
API_KEY_PREFIX = "tnr_"


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    role: Role
    name: str
    key_id: int | None = None
    staff_user_id: int | None = None
    customer_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        if self.role == Role.MEMBER:
            return f"member:{self.customer_id}"
        return f"key:{self.key_id}" if self.key_id is not None else "system"


SYSTEM = Principal(Role.ADMIN, "system")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CreatedKey:
    key: str
    record: ApiKey


async def create_api_key(
    session: AsyncSession,
    *,
    name: str,
    role: str,
    staff_email: str | None = None,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """Create a key; the plain key is in the result and nowhere else, ever."""
    if role not in {r.value for r in KEY_ROLES}:
        raise UserError(f"role must be one of admin, staff, integration (got {role!r})", "role")
    if not name.strip():
        raise UserError("must not be empty", "name", "required")
    staff_id = None
    if staff_email:
        staff = await session.scalar(select(StaffUser).where(StaffUser.email == staff_email.lower()))
        if staff is None:
            staff = StaffUser(name=staff_email.split("@")[0], email=staff_email.lower(),
                              active=True, created_at=clock.now())
            session.add(staff)
            await session.flush()
        staff_id = staff.id
    prefix = secrets.token_hex(4)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(name=name.strip(), prefix=prefix, key_hash=hash_key(key), role=role,
                    scopes=sorted(scopes or []), staff_user_id=staff_id, created_at=clock.now(),
                    expires_at=expires_at)
    session.add(record)
    await session.flush()
    return CreatedKey(key, record)


async def revoke_api_key(session: AsyncSession, key_id: int) -> bool:
    result = await session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=clock.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def rotate_api_key(session: AsyncSession, key_id: int, grace_seconds: int = 0) -> CreatedKey:
    """A new key with the old one's name, role, scopes, staff user and expiry; the old key
    stops working after ``grace_seconds`` (at once by default), so a client can switch."""
    if grace_seconds < 0 or grace_seconds > 30 * 86400:
        raise UserError("must be between 0 and 2592000 seconds (30 days)", "graceSeconds", "out_of_range")
    old = await session.scalar(select(ApiKey).where(ApiKey.id == key_id).with_for_update())
    if old is None or old.revoked_at is not None:
        raise UserError(f"no active API key with id {key_id}", "keyId", "not_found")
    now = clock.now()
    if old.expires_at is not None and old.expires_at <= now:
        raise UserError(f"API key {old.prefix} has expired; create a new one", "keyId", "expired")
    prefix = secrets.token_hex(4)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(name=old.name, prefix=prefix, key_hash=hash_key(key), role=old.role, scopes=list(old.scopes or []),
                    staff_user_id=old.staff_user_id, created_at=now, expires_at=old.expires_at)
    session.add(record)
    if grace_seconds:
        ends = now + timedelta(seconds=grace_seconds)
        old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    else:
        old.revoked_at = now
    await session.flush()
    return CreatedKey(key, record)


#: Every request's key look-up, compiled once and sent on the driver.
_KEY_BY_HASH = Read(lambda _keys: select(ApiKey).where(ApiKey.key_hash == bindparam("key_hash")))


class AuthenticationError(Exception):
    """The credentials are missing, malformed, unknown, expired or revoked."""


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


async def authenticate(session: AsyncSession, secret: bytes, token: str) -> Principal:
    """Who ``token`` is: an API key is looked up in ``session``, a member token checked by
    its signature."""
    if not is_api_key(token):
        return verify_bearer(secret, token)
    found = await _KEY_BY_HASH.all(session, key_hash=hash_key(token))
    record = found[0] if found else None
    if record is None:
        raise AuthenticationError("unknown API key")
    now = clock.now()
    if record.revoked_at is not None:
        raise AuthenticationError(f"API key {record.prefix} was revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise AuthenticationError(f"API key {record.prefix} expired")
    return Principal(Role(record.role), record.name, record.id, record.staff_user_id,
                     scopes=frozenset(record.scopes or ()))


def verify_bearer(secret: bytes, token: str) -> Principal:
    """Who a bearer token other than an API key is, from its signature alone."""
    if token.startswith("tm1."):
        claims = verify_token(secret, "member", token[4:])
        return Principal(Role.MEMBER, f"member {claims['sub']}", customer_id=int(claims["sub"]))
    raise AuthenticationError("the bearer token is neither an API key nor a member token")


def sign_token(secret: bytes, purpose: str, claims: dict[str, Any], ttl: timedelta | None) -> str:
    """A compact signed token: ``payload.signature``. ``purpose`` binds it to one use, so a
    survey link cannot serve as a member token."""
    body = dict(claims)
    if ttl is not None:
        body["exp"] = int((clock.now() + ttl).timestamp())
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signature = hmac.new(secret, f"{purpose}.{payload}".encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify_token(secret: bytes, purpose: str, token: str) -> dict[str, Any]:
    try:
        payload, signature = token.split(".")
        expected = hmac.new(secret, f"{purpose}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise AuthenticationError("the token's signature is not valid")
        claims: dict[str, Any] = json.loads(_unb64(payload))
    except (ValueError, json.JSONDecodeError):
        raise AuthenticationError("the token is malformed") from None
    if "exp" in claims and claims["exp"] <= clock.now().timestamp():
        raise AuthenticationError("the token has expired")
    return claims


def member_token(secret: bytes, customer_id: int, ttl_seconds: int) -> tuple[str, datetime]:
    expires = clock.now() + timedelta(seconds=ttl_seconds)
    token = sign_token(secret, "member", {"sub": str(customer_id)}, timedelta(seconds=ttl_seconds))
    return f"tm1.{token}", expires
