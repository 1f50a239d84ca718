"""Idempotency keys: the same request twice gives the first answer and writes nothing more;
the same key with different parameters is refused, as payment APIs do."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, select, update

from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import UserError
from tenure.core.models import IdempotencyRecord
from tenure.core.reads import Write

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
    claimed = await _CLAIM[ctx.dialect == "postgresql"].all(
        ctx.session, operation=operation, key=key, request_hash=digest, result=PENDING, created_at=ctx.now())
    if not claimed:
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
    await _RECORD_RESULT.count(ctx.session, of_operation=operation, of_key=key, result=result)
    return result, True


_RECORDS: Any = IdempotencyRecord.__table__


def _claim(dialect: str) -> Write:
    columns = ("operation", "key", "request_hash", "result", "created_at")
    return Write(lambda _keys: insert_ignoring_conflicts(dialect, _RECORDS).values(
        {name: bindparam(name, type_=_RECORDS.c[name].type) for name in columns}).returning(_RECORDS.c.key))


#: The key claimed (nothing back when a first run holds it), by "is it PostgreSQL".
_CLAIM = {True: _claim("postgresql"), False: _claim("sqlite")}
_RECORD_RESULT = Write(lambda _keys: update(_RECORDS).where(
    _RECORDS.c.operation == bindparam("of_operation"), _RECORDS.c.key == bindparam("of_key"))
    .values(result=bindparam("result", type_=_RECORDS.c.result.type)))
