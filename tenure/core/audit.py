"""The audit log: who changed what, and who read which customer.

Entries hold ids and names of operations, never the data itself, so the log needs no
erasure of its own and can be shown to admins as it is. The GraphQL layer writes one entry
per mutation and per staff read of customers (``schema.privacy.AuditTrail``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import clock
from tenure.core.models import AuditEntry
from tenure.core.reads import Write


@dataclass(frozen=True)
class Access:
    """One audited call: ``kind`` is ``write`` or ``read``; ``outcome`` is ``ok``,
    ``refused`` (userErrors, nothing written), ``denied`` (no permission) or ``error``."""

    actor: str
    role: str
    kind: str
    operation: str
    customer_id: int | None
    outcome: str


_INSERT = Write(lambda _keys: insert(AuditEntry).values(
    {name: bindparam(name) for name in ("occurred_at", "actor", "role", "kind", "operation", "customer_id",
                                         "outcome")}).returning(AuditEntry.id))


async def record(session: AsyncSession, access: Access) -> int:
    """Write the entry (in the caller's transaction); returns its id."""
    entry_id: int = await _INSERT.one(
        session, occurred_at=clock.now(), actor=access.actor[:100], role=access.role, kind=access.kind,
        operation=access.operation[:100], customer_id=access.customer_id, outcome=access.outcome)
    return entry_id


def entries(*, actor: str | None = None, customer_id: int | None = None) -> Select[Any]:
    """The log, optionally of one actor (``key:12``, ``member:5``) or about one customer."""
    stmt = select(AuditEntry)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if customer_id is not None:
        stmt = stmt.where(AuditEntry.customer_id == customer_id)
    return stmt
