"""Tasks: follow-up work for a person. A cause (``source`` + ``source_key``) opens at most
one open task, however often it fires."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import NotFound, UserError
from tenure.core.events import TaskCompleted, TaskCreated
from tenure.core.models import Customer, StaffUser, Task, TaskStatus


async def open_task(
    ctx: ServiceContext,
    *,
    title: str,
    customer_id: int | None,
    reason: str = "",
    due_at: datetime | None = None,
    assignee_id: int | None = None,
    source: str = "manual",
    source_key: str | None = None,
) -> tuple[Task, bool]:
    """Open a task, assigned to ``assignee_id`` or else to the customer's owner. When
    ``source_key`` is given and an open task already has that cause, that task comes back
    (``False``) and nothing is written."""
    title = v.text(title, "title", max_length=200)
    reason = v.text(reason, "reason", max_length=4000, required=False)
    source = v.text(source, "source", max_length=50)
    source_key = v.key(source_key, "sourceKey")
    if due_at is not None:
        v.aware(due_at, "dueAt")
    if source_key is not None:
        existing = await _open_for_cause(ctx, source, source_key)
        if existing is not None:
            return existing, False
    customer = None
    if customer_id is not None:
        customer = await ctx.session.get(Customer, customer_id)
        if customer is None:
            raise NotFound("customer", customer_id, "customerId")
    if assignee_id is not None and await ctx.session.get(StaffUser, assignee_id) is None:
        raise NotFound("staff user", assignee_id, "assigneeId")
    task = Task(customer_id=customer_id, title=title, reason=reason, due_at=due_at,
                assignee_id=assignee_id if assignee_id is not None else (customer.owner_id if customer else None),
                status=TaskStatus.OPEN, source=source, source_key=source_key, created_at=ctx.now())
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(task)
    except IntegrityError:
        # A concurrent transaction opened the same cause first.
        existing = await _open_for_cause(ctx, source, source_key or "")
        if existing is None:
            raise
        return existing, False
    await ctx.emit(TaskCreated(task))
    return task, True


@dataclass(frozen=True)
class NewTask:
    """One task for :func:`open_tasks`: a cause (``source_key``) about a customer."""

    title: str
    customer_id: int
    source_key: str
    reason: str = ""


#: Ids per ``IN (...)`` list, under SQLite's limit on bound parameters.
_CHUNK = 500


async def open_tasks(ctx: ServiceContext, tasks: Sequence[NewTask], *, source: str) -> dict[str, int]:
    """:func:`open_task` for many causes of one ``source`` in a few statements (a batch job's
    follow-ups): each cause opens at most one open task, assigned to the customer's owner;
    a cause with an open task already (or opened by a concurrent transaction) gets that task
    back and nothing is written. ``task.created`` is raised for each new task. Returns the
    task id of each ``source_key``."""
    source = v.text(source, "source", max_length=50)
    wanted: dict[str, NewTask] = {}
    for t in tasks:
        key = v.key(t.source_key, "sourceKey") or ""
        wanted.setdefault(key, NewTask(v.text(t.title, "title", max_length=200), t.customer_id, key,
                                       v.text(t.reason, "reason", max_length=4000, required=False)))
    keys = list(wanted)
    found = await _open_for_causes(ctx, source, keys)
    customers = sorted({t.customer_id for k, t in wanted.items() if k not in found})
    owners: dict[int, int | None] = {}
    for part in _chunks(customers):
        owners.update((i, o) for i, o in await ctx.session.execute(
            select(Customer.id, Customer.owner_id).where(Customer.id.in_(part))))
    for customer_id in customers:
        if customer_id not in owners:
            raise NotFound("customer", customer_id, "customerId")
    now = ctx.now()
    rows = [{"customer_id": t.customer_id, "title": t.title, "reason": t.reason, "due_at": None,
             "assignee_id": owners[t.customer_id], "status": TaskStatus.OPEN, "source": source,
             "source_key": k, "created_at": now, "completed_at": None}
            for k, t in wanted.items() if k not in found]
    created: list[Task] = []
    if rows:
        stmt = insert_ignoring_conflicts(ctx.dialect, Task.__table__).returning(Task.__table__.c.id,
                                                                                  Task.__table__.c.source_key)
        new_ids = {key: task_id for task_id, key in await ctx.session.execute(stmt, rows)}
        created = [Task(id=new_ids[r["source_key"]], **r) for r in rows if r["source_key"] in new_ids]
        found.update(new_ids)
        # Causes a concurrent transaction opened between our read and our insert.
        found.update(await _open_for_causes(ctx, source, [k for k in keys if k not in found]))
    if created and ctx.plugins.handlers_for(TaskCreated):
        # Handlers get tasks of this session; the event log needs only their fields.
        created = list(await ctx.session.scalars(select(Task).where(Task.id.in_([t.id for t in created]))))
    await ctx.emit(*(TaskCreated(task) for task in created))
    return found


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[n:n + _CHUNK] for n in range(0, len(values), _CHUNK)]


async def _open_for_causes(ctx: ServiceContext, source: str, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in _chunks(keys):
        found.update((k or "", i) for k, i in await ctx.session.execute(
            select(Task.source_key, Task.id).where(Task.source == source, Task.source_key.in_(part),
                                                   Task.status == TaskStatus.OPEN)))
    return found


async def _open_for_cause(ctx: ServiceContext, source: str, source_key: str) -> Task | None:
    result: Task | None = await ctx.session.scalar(
        select(Task).where(Task.source == source, Task.source_key == source_key,
                           Task.status == TaskStatus.OPEN)
    )
    return result


async def _load(ctx: ServiceContext, task_id: int) -> Task:
    task = await ctx.session.get(Task, task_id)
    if task is None:
        raise NotFound("task", task_id, "taskId")
    return task


async def assign_task(ctx: ServiceContext, task_id: int, assignee_id: int | None) -> Task:
    task = await _load(ctx, task_id)
    if assignee_id is not None and await ctx.session.get(StaffUser, assignee_id) is None:
        raise NotFound("staff user", assignee_id, "assigneeId")
    task.assignee_id = assignee_id
    await ctx.session.flush()
    return task


async def complete_task(ctx: ServiceContext, task_id: int) -> Task:
    task = await _load(ctx, task_id)
    if task.status == TaskStatus.DONE:
        return task
    if task.status != TaskStatus.OPEN:
        raise UserError(f"a {task.status} task cannot be completed", "taskId", "invalid_status")
    task.status = TaskStatus.DONE
    task.completed_at = ctx.now()
    await ctx.session.flush()
    await ctx.emit(TaskCompleted(task))
    return task
