"""Tasks: follow-up work for a person. A cause (``source`` + ``source_key``) opens at most
one open task, however often it fires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import validation as v
from core.context import ServiceContext
from core.errors import NotFound, UserError
from core.events import TaskCompleted, TaskCreated
from core.models import Customer, StaffUser, Task, TaskStatus


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
