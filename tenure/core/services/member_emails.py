"""A member's e-mail addresses: an address becomes theirs only once they show they read
its mail.

Through ``updateMe`` a member keeps or drops the addresses already on their record at once;
an address new to it is held pending instead: a message with a signed link (purpose
``member-email``: the customer and the address, valid ``TENURE_MEMBER_EMAIL_VERIFY_HOURS``)
goes to that address alone, through core messages. ``verifyMemberEmail`` with the link's
token adds the address, and only if no other customer's record holds it by then (as a
contact address or an ``email`` identity); otherwise nothing changes and the answer says to
ask the business to merge the two records. Nothing is stored while an address is pending:
the token is the pending change, so there is nothing to clean up, and the reply to
``updateMe`` is the same whether or not another customer holds the address.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tenure.core import validation as v
from tenure.core.auth import AuthenticationError, sign_token, verify_token
from tenure.core.context import ServiceContext
from tenure.core.errors import NotFound, UserError
from tenure.core.models import Customer, CustomerContact, CustomerIdentity
from tenure.core.services import customers

PURPOSE = "member-email"
TEMPLATE = "core.member_email_verification"
#: The ``recipient`` of the verification message: the new address, not the record's.
RECIPIENT = "new_address"


def clean_emails(emails: list[str] | None) -> list[str]:
    cleaned = list(dict.fromkeys(v.email(e) for e in emails or []))
    if len(cleaned) > 20:
        raise UserError("at most 20 email addresses", "emails", "too_many")
    return cleaned


async def own_emails(ctx: ServiceContext, customer_id: int) -> list[str]:
    return list(await ctx.session.scalars(
        select(CustomerContact.value).where(CustomerContact.customer_id == customer_id,
                                            CustomerContact.kind == "email").order_by(CustomerContact.id)))


def verification_link(ctx: ServiceContext, token: str) -> str:
    page = ctx.settings.member_email_verify_url
    return page.replace("{token}", token) if page else token


async def hold_new_emails(ctx: ServiceContext, customer_id: int, wanted: list[str]) -> tuple[list[str], list[str]]:
    """Split the member's wanted list into the addresses applied now (those already on the
    record, in the member's order) and those held pending, each of which is sent its
    verification message. Returns ``(applied, pending)``."""
    own = set(await own_emails(ctx, customer_id))
    applied = [e for e in wanted if e in own]
    pending = [e for e in wanted if e not in own]
    ttl = timedelta(hours=ctx.settings.member_email_verify_hours)
    from tenure.core.messages import send_message

    for address in pending:
        token = sign_token(ctx.settings.signing_key, PURPOSE, {"sub": str(customer_id), "email": address}, ttl)
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        await send_message(ctx, customer_id=customer_id, template=TEMPLATE, channels=["email"],
                           recipient=RECIPIENT, to_address=address,
                           data={"new_email": address, "verification_link": verification_link(ctx, token),
                                 "valid_hours": ctx.settings.member_email_verify_hours},
                           dedupe_key=f"member-email:{customer_id}:{digest}")
    return applied, pending


async def holder_of(ctx: ServiceContext, address: str, customer_id: int) -> int | None:
    """Another customer (not erased) whose record holds ``address``, if any."""
    contact = await ctx.session.scalar(
        select(CustomerContact.customer_id).join(Customer, Customer.id == CustomerContact.customer_id).where(
            CustomerContact.kind == "email", CustomerContact.value == address,
            CustomerContact.customer_id != customer_id, Customer.erased_at.is_(None)).limit(1))
    if contact is not None:
        return int(contact)
    identity = await ctx.session.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == "email", CustomerIdentity.value == address,
        CustomerIdentity.customer_id != customer_id))
    return int(identity) if identity is not None else None


async def verify_email(ctx: ServiceContext, token: str, caller: int | None = None) -> tuple[Customer, str]:
    """Apply the address a verification token was sent for. ``caller``: the member calling,
    when a member token came with the request (then it must be the same customer)."""
    try:
        claims: dict[str, Any] = verify_token(ctx.settings.signing_key, PURPOSE, (token or "").strip())
        customer_id, address = int(claims["sub"]), v.email(str(claims["email"]))
    except (AuthenticationError, KeyError, ValueError, UserError):
        raise UserError("this link is not valid or has expired: ask for a new one by changing the address again",
                        "token", "invalid_token") from None
    if caller is not None and caller != customer_id:
        raise UserError("this link was sent to confirm another member's address", "token", "forbidden")
    # Two confirmations of one address at once: the second waits here and then sees the first.
    if ctx.dialect == "postgresql":
        from sqlalchemy import func

        await ctx.session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"email\x1f{address}", 0))))
    try:
        customer = await customers.load(ctx, customer_id)
    except NotFound:
        raise UserError("this member no longer exists", "token", "not_found") from None
    if customer.erased_at is not None:
        raise UserError("this member no longer exists", "token", "not_found")
    if await holder_of(ctx, address, customer_id) is not None:
        raise UserError(f"{address} belongs to another customer's record: ask the business to merge the two",
                        "token", "email_taken")
    own = await own_emails(ctx, customer_id)
    if address not in own:
        customer = await customers.update_customer(ctx, customer_id, customers.CustomerData(emails=[*own, address]))
    return customer, address
