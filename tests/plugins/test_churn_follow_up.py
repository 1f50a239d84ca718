"""The follow-up wave after a rescore: every new warning gets one task for the owner and one
timeline entry, a batch of warnings per transaction, exactly once, even when a batch fails
halfway, a cause already has its open task, or the job runs again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tenure.core.models import StaffUser
from tenure.core.services import customers, orders
from tenure.core.services.customers import CustomerData
from tenure.core.services.orders import OrderData
from tenure.core.services.tasks import open_task
from tenure.plugins.churn import service
from tenure.testing import TenureHarness, freeze_time
from tests.plugins.churn_support import NOW, TUNED

#: Like L of churn_support: orders 94 to 178 days ago, usual gap 21: health 30, warned.
LAPSED_DAYS = (94, 115, 136, 157, 178)

TIMELINE = """query($id: ID!) { customer(id: $id) { tasks(first: 10) { nodes { title reason status } }
  timeline(first: 20) { nodes { event { type summary } } } } }"""


async def load_lapsed(tenure: TenureHarness, count: int) -> list[int]:
    ids = []
    async with tenure.transaction() as ctx:
        owner = StaffUser(name="Owner", email="owner@example.com", active=True, created_at=NOW)
        ctx.session.add(owner)
        await ctx.session.flush()
        for n in range(count):
            customer = await customers.create_customer(ctx, CustomerData(name=f"Lapsed {n}", owner_id=owner.id))
            ids.append(customer.id)
            for k, days in enumerate(LAPSED_DAYS):
                await orders.record_order(ctx, OrderData(
                    customer_id=customer.id, channel="shop", external_id=f"{n}-{k}", currency="USD", amount=2000,
                    placed_at=NOW - timedelta(days=days)))
    await tenure.run_jobs()
    return ids


class Crash(Exception):
    pass


async def test_each_new_warning_gets_one_task_and_one_timeline_entry_across_batches(make_tenure: Any) -> None:
    # Loaded 30 days earlier (their health was 70 then); the rescore at NOW warns all five.
    with freeze_time(NOW - timedelta(days=30)) as clock:
        async with make_tenure(plugins=["churn"], env={**TUNED, "TENURE_CHURN_FOLLOW_UP_BATCH": "2"}) as tenure:
            ids = await load_lapsed(tenure, 5)
            clock.advance(days=30)
            scored = await service.rescore_all(tenure.transaction, follow_up_now=False)
            rows = await _warnings(tenure)
            # A batch that fails halfway writes nothing: no task, no timeline entry, still pending.
            with pytest.raises(Crash):
                async with tenure.transaction() as ctx:
                    assert await service.follow_up(ctx) == 2
                    raise Crash
            after_crash = await tenure.scalar("SELECT count(*) FROM tasks")
            # The first warning's cause already has its open task: the wave reuses it.
            first_id, first_customer = rows[0]
            async with tenure.transaction() as ctx:
                existing, _ = await open_task(ctx, title="Call them", customer_id=first_customer, source="churn",
                                              source_key=f"{first_customer}:{first_id}")
            await tenure.jobs.run("churn.follow_up")  # queues itself again until none is left
            await tenure.jobs.run("churn.follow_up")
            await tenure.jobs.run("churn.rescore")  # nothing new: no second task or entry
            followed = await _warnings(tenure, with_tasks=True)
            tasks = await tenure.scalar("SELECT count(*) FROM tasks WHERE source = 'churn'")
            assigned = await tenure.scalar("SELECT count(*) FROM tasks t JOIN staff_users s ON s.id = t.assignee_id "
                                           "WHERE s.email = 'owner@example.com'")
            created = await tenure.scalar("SELECT count(*) FROM events WHERE type = 'task.created'")
            seen = (await tenure.ok(TIMELINE, {"id": str(ids[1])}))["customer"]
    assert scored["open_warnings"] == 5 and len(rows) == 5 and after_crash == 0
    assert followed[0][1] == existing.id
    assert len({task for _, task in followed}) == 5 and None not in {task for _, task in followed}
    assert (tasks, assigned, created) == (5, 5, 5)
    assert seen["tasks"]["nodes"] == [{"title": "Churn risk: health 30/100", "status": "OPEN",
                                       "reason": "no order for 94 days, usual gap 21"}]
    entries = [n["event"] for n in seen["timeline"]["nodes"] if n["event"]]
    assert entries == [{"type": "churn.warned", "summary": "churn risk medium: no order for 94 days, usual gap 21"}]


async def _warnings(tenure: TenureHarness, with_tasks: bool = False) -> list[tuple[int, int]]:
    async with tenure.transaction() as ctx:
        column = "task_id" if with_tasks else "customer_id"
        return [(r[0], r[1]) for r in await ctx.session.execute(
            text(f"SELECT id, {column} FROM churn_warnings WHERE status = 'open' ORDER BY id"))]


async def test_a_webhook_subscriber_gets_each_warning_and_task_of_a_batch(make_tenure: Any) -> None:
    from tenure.core.services.webhooks import create_subscription

    with freeze_time(NOW - timedelta(days=30)) as clock:
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            await load_lapsed(tenure, 3)
            clock.advance(days=30)
            async with tenure.transaction() as ctx:
                await create_subscription(ctx, "https://partner.example/hooks", ["churn.*", "task.created"])
            await service.rescore_all(tenure.transaction, follow_up_now=False)
            async with tenure.transaction() as ctx:
                followed = await service.follow_up(ctx)
            queued = await tenure.scalar("SELECT count(*) FROM outbox WHERE job = 'core.deliver_webhook'")
            events = await tenure.scalar("SELECT count(*) FROM events WHERE type IN ('churn.warned', 'task.created')")
    # One delivery queued per event: three warnings, three tasks.
    assert (followed, events, queued) == (3, 6, 6)
