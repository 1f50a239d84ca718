"""Idempotency keys: the same request twice gives the first answer and writes nothing more;
the same key with different parameters is refused, as payment APIs do."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update

from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import UserError
from tenure.core.models import IdempotencyRecord

PENDING: dict[str, Any] = {"__pending__": True}


def request_hash(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


async def once(
    ctx: ServiceContext,
    operation: str,
    key: str,
    request: dict[str, Any],
    perform: Callable[[], Awaitable[dict[str, Any]]],
) -> tuple[dict[str, Any], bool]:
    """Run ``perform`` once per ``(operation, key)``; returns its JSON result and whether it
    ran now. The key is claimed first, so a concurrent twin waits for the first to commit
    (PostgreSQL) or queues behind its write lock (SQLite) and then reads its answer."""
    digest = request_hash(request)
    claimed = await ctx.session.execute(
        insert_ignoring_conflicts(ctx.dialect, IdempotencyRecord.__table__)
        .values(operation=operation, key=key, request_hash=digest, result=PENDING,
                created_at=ctx.now())
        .returning(IdempotencyRecord.key)
    )
    if claimed.scalar_one_or_none() is None:
        record = await ctx.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.operation == operation, IdempotencyRecord.key == key
            ).execution_options(populate_existing=True)
        )
        assert record is not None
        if record.request_hash != digest:
            raise UserError(
                "this idempotency key was already used with different parameters",
                "idempotencyKey",
                "idempotency_key_reused",
            )
        return dict(record.result), False
    result = await perform()
    await ctx.session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.operation == operation, IdempotencyRecord.key == key)
        .values(result=result)
    )
    return result, True
