"""createTask, assignTask, completeTask."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.services import tasks as service
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.types.common import USER_ERRORS, UserError
from tenure.schema.types.core import Task


@strawberry.input(description="A new task.")
class CreateTaskInput:
    title: str = strawberry.field(description="What to do, in a line of at most 200 characters.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer it concerns; null for a task about no one customer.")
    reason: str = strawberry.field(default="", description="Why it needs doing, at most 4000 characters.")
    due_at: datetime | None = strawberry.field(
        default=None, description="When it should be done by, with a time zone; null for no deadline.")
    assignee_id: strawberry.ID | None = strawberry.field(default=None, description="Defaults to the customer's owner.")
    source: str = strawberry.field(
        default="manual", description="What raises it, at most 50 characters: `manual` unless given.")
    source_key: str | None = strawberry.field(
        default=None,
        description="The cause within the source: while a task with this source and key is open, the same "
                    "input returns that task (created false) instead of a new one.")


@strawberry.input(description="Who is to do a task.")
class AssignTaskInput:
    task_id: strawberry.ID = strawberry.field(description="The task's id.")
    assignee_id: strawberry.ID | None = strawberry.field(description="The staff user; null leaves it unassigned.")


@strawberry.input(description="The task that is done.")
class CompleteTaskInput:
    task_id: strawberry.ID = strawberry.field(description="The task's id; it must be open.")


@strawberry.type(description="The result of createTask, assignTask or completeTask.")
class TaskPayload:
    task: Task | None = strawberry.field(description="The task after the change; null when it was refused.")
    created: bool = strawberry.field(
        description="True when createTask opened a new task; false when an open task had this cause already, "
                    "and always for assignTask and completeTask.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type
class TaskMutations:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="tasks:write")],
                         description="Open a task; at most one open task per source and sourceKey.")
    async def create_task(self, info: Info, input: Annotated[CreateTaskInput, strawberry.argument(
            description="The task.")]) -> TaskPayload:
        async def work(ctx: ServiceContext) -> tuple[object, bool]:
            return await service.open_task(
                ctx, title=input.title,
                customer_id=parse_id(input.customer_id, "customerId", "Customer") if input.customer_id else None,
                reason=input.reason, due_at=input.due_at,
                assignee_id=parse_id(input.assignee_id, "assigneeId", "StaffUser") if input.assignee_id else None,
                source=input.source, source_key=input.source_key)

        result, errors = await in_transaction(info, work)
        task, created = result if result else (None, False)
        return TaskPayload(task=task, created=created, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Give a task to a staff user, or to no one.")
    async def assign_task(self, info: Info, input: Annotated[AssignTaskInput, strawberry.argument(
            description="The task and its new assignee.")]) -> TaskPayload:
        task, errors = await in_transaction(info, lambda ctx: service.assign_task(
            ctx, parse_id(input.task_id, "taskId", "Task"),
            parse_id(input.assignee_id, "assigneeId", "StaffUser") if input.assignee_id else None))
        return TaskPayload(task=task, created=False, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Mark an open task as done.")
    async def complete_task(self, info: Info, input: Annotated[CompleteTaskInput, strawberry.argument(
            description="The task.")]) -> TaskPayload:
        task, errors = await in_transaction(
            info, lambda ctx: service.complete_task(ctx, parse_id(input.task_id, "taskId", "Task")))
        return TaskPayload(task=task, created=False, user_errors=errors)  # type: ignore[arg-type]
