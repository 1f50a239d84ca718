"""What the chaos test checks once the load has stopped: it waits for the outbox to drain
by itself, then compares the database with the book of what was sent."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from sqlalchemy import text

from tenure.core.checks import run_invariants
from tenure.core.db import Database
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings
from tenure.testing import pk_of
from tests.chaos.driver import Book
from tests.support.receivers import HttpReceiver


async def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.reader() as session:
        return list((await session.execute(text(sql), params)).all())


async def _settle(db: Database, within: float) -> dict[str, int]:
    """Outbox counts by status once nothing is pending or running (or time is up)."""
    deadline = time.monotonic() + within
    while True:
        counts = {row[0]: row[1] for row in await _rows(db, "SELECT status, count(*) FROM outbox GROUP BY status")}
        if (not counts.get("pending") and not counts.get("running")) or time.monotonic() > deadline:
            return {s: counts.get(s, 0) for s in ("pending", "running", "done", "dead")}
        await asyncio.sleep(0.5)


async def verify(database_url: str, settings: Settings, plugins: PluginManager, book: Book, hooks: HttpReceiver,
                 *, within: float) -> dict[str, Any]:
    db = Database(database_url)
    losses: list[str] = []
    duplicates: list[str] = []
    try:
        outbox = await _settle(db, within)
        orders = {r.external_id: r for r in await _rows(
            db, "SELECT id, external_id, customer_id, amount, refunded_amount FROM orders WHERE channel = 'chaos'")}
        for sent in book.of("order"):
            row = orders.get(sent.key)
            if sent.acknowledged and row is None:
                losses.append(f"order {sent.key} was acknowledged but is not recorded")
            elif row is not None and (row.customer_id, row.amount) != (sent.target, sent.amount):
                losses.append(f"order {sent.key} is recorded with other figures: {row}")
            elif row is not None and {pk_of(answer) for answer in sent.answer_ids} - {row.id}:
                duplicates.append(f"order {sent.key} was answered with several ids {sent.answer_ids}")
        for channel, external, n in await _rows(db, "SELECT channel, external_id, count(*) FROM orders "
                                                    "GROUP BY channel, external_id HAVING count(*) > 1"):
            duplicates.append(f"order {channel}/{external} recorded {n} times")

        applied = {r[0] for r in await _rows(db, "SELECT key FROM idempotency_records WHERE operation = 'refundOrder'")}
        expected: Counter[int] = Counter()
        for sent in book.of("refund"):
            if sent.acknowledged and sent.key not in applied:
                losses.append(f"refund {sent.key} was acknowledged but never applied")
            if sent.key in applied:
                expected[sent.target] += sent.amount
        for row in orders.values():
            if row.refunded_amount > expected[row.id]:
                duplicates.append(f"order {row.external_id}: refunded {row.refunded_amount}, "
                                  f"expected {expected[row.id]}")
            elif row.refunded_amount < expected[row.id]:
                losses.append(f"order {row.external_id}: refunded {row.refunded_amount}, expected {expected[row.id]}")

        interactions = Counter(r[0] for r in await _rows(
            db, "SELECT external_id FROM interactions WHERE channel = 'chaos'"))
        for sent in book.of("interaction"):
            if sent.acknowledged and not interactions[sent.key]:
                losses.append(f"interaction {sent.key} was acknowledged but is not logged")
        duplicates += [f"interaction {k} logged {n} times" for k, n in interactions.items() if n > 1]

        if plugins.is_enabled("loyalty"):
            entries = Counter(r[0] for r in await _rows(
                db, "SELECT idempotency_key FROM loyalty_entries WHERE idempotency_key LIKE 'c%-p%'"))
            for sent in book.of("redeem"):
                if sent.acknowledged and not entries[sent.key]:
                    losses.append(f"redemption {sent.key} was acknowledged but is not in the ledger")
            duplicates += [f"redemption {k} in the ledger {n} times" for k, n in entries.items() if n > 1]

        if plugins.is_enabled("renewals"):
            values = {r[0]: r[1] for r in await _rows(db, "SELECT id, value FROM renewals_subscriptions")}
            for subscription in {s.target for s in book.of("subscription")}:
                sent_to = [s for s in book.of("subscription") if s.target == subscription]
                last = max((i for i, s in enumerate(sent_to) if s.acknowledged), default=-1)
                possible = {s.amount for s in sent_to[max(last, 0):]} | ({12_000} if last < 0 else set())
                if values.get(subscription) not in possible:
                    losses.append(f"subscription {subscription} has value {values.get(subscription)}, "
                                  f"expected one of {sorted(possible)}")

        for source, key, n in await _rows(db, "SELECT source, source_key, count(*) FROM tasks WHERE status = 'open' "
                                              "GROUP BY source, source_key HAVING count(*) > 1"):
            duplicates.append(f"task {source}/{key} open {n} times")
        for key, channel, n in await _rows(db, "SELECT dedupe_key, channel, count(*) FROM messages "
                                               "GROUP BY dedupe_key, channel HAVING count(*) > 1"):
            duplicates.append(f"message {key} over {channel} recorded {n} times")
        for job, key, n in await _rows(db, "SELECT job, dedupe_key, count(*) FROM outbox WHERE dedupe_key IS NOT NULL "
                                           "GROUP BY job, dedupe_key HAVING count(*) > 1"):
            duplicates.append(f"job {job} {key} queued {n} times")

        events = {r[0] for r in await _rows(db, "SELECT id FROM events")}
        delivered = {r[0] for r in await _rows(db, "SELECT DISTINCT event_id FROM webhook_deliveries WHERE ok")}
        received = Counter(h.get("x-tenure-event-id") for h, _ in hooks.requests)
        losses += [f"event {e} was never delivered to the webhook" for e in sorted(events - delivered)[:20]]
        invariants = await run_invariants(db, plugins)
    finally:
        await db.dispose()
    return {
        "losses": losses[:50], "duplicates": duplicates[:50], "outbox": outbox, "invariants": invariants,
        "events": len(events), "webhook_posts": sum(received.values()),
        "webhook_repeats": sum(n - 1 for n in received.values() if n > 1),
    }
