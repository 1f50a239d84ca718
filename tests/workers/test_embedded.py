"""The embedded default (no broker): `tenure serve` runs queued work itself, right after the
transaction commits, and its scheduler re-sends work whose hand-off was lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tenure.testing import pk_of
from tests.core.helpers import ERRORS, create_customer, record_order
from tests.support.receivers import HttpReceiver, http_receiver

SUBSCRIBE = f"""mutation($u: String!) {{
  createWebhookSubscription(input: {{url: $u, eventTypes: ["order.recorded"]}}) {{ secret {ERRORS} }}
}}"""


async def _delivered(tenure: Any, receiver: HttpReceiver, count: int, seconds: float = 20.0) -> None:
    """Wait for `count` deliveries to arrive and be marked done: the job commits its row only
    after the receiver has answered, so the two are seen a moment apart."""
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        done = await tenure.scalar("SELECT count(*) FROM outbox WHERE status = 'done'")
        if len(receiver.requests) >= count and done >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(receiver.requests)} deliveries arrived and {done} marked done, expected {count}")


async def test_work_runs_in_process_after_commit(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=[], background=True, relay_interval_seconds=0.1,
                           job_redispatch_seconds=0.5) as tenure:
        with http_receiver() as receiver:
            assert (await tenure.ok(SUBSCRIBE, {"u": receiver.url}))["createWebhookSubscription"]["userErrors"] == []
            cid = await create_customer(tenure, "Embedded")
            await record_order(tenure, cid, "E-1", 100)
            await _delivered(tenure, receiver, 1)
            # A hand-off lost with a crashed process: the entry is in the outbox, no one was told.
            async with tenure.transaction() as ctx:
                await ctx.publish("order.recorded", source="test", customer_id=pk_of(cid), summary="lost")
            await _delivered(tenure, receiver, 2)
            assert len(receiver.requests) == 2
            assert len({r.headers["x-tenure-event-id"] for r in receiver.requests}) == 2
        assert await tenure.scalar("SELECT count(*) FROM outbox WHERE status = 'done'") == 2
