"""createTask, assignTask, completeTask."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.services import tasks as service
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.types.common import UserError
from tenure.schema.types.core import Task


@strawberry.input
class CreateTaskInput:
    title: str
    customer_id: strawberry.ID | None = None
    reason: str = ""
    due_at: datetime | None = None
    assignee_id: strawberry.ID | None = strawberry.field(default=None, description="Defaults to the customer's owner.")
    source: str = "manual"
    source_key: str | None = strawberry.field(default=None, description="A cause opens at most one open task.")


@strawberry.input
class AssignTaskInput:
    task_id: strawberry.ID
    assignee_id: strawberry.ID | None


@strawberry.input
class CompleteTaskInput:
    task_id: strawberry.ID


@strawberry.type
class TaskPayload:
    task: Task | None
    created: bool
    user_errors: list[UserError]


@strawberry.type
class TaskMutations:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="tasks:write")])
    async def create_task(self, info: Info, input: CreateTaskInput) -> TaskPayload:
        async def work(ctx: ServiceContext) -> tuple[object, bool]:
            return await service.open_task(
                ctx, title=input.title,
                customer_id=parse_id(input.customer_id, "customerId") if input.customer_id else None,
                reason=input.reason, due_at=input.due_at,
                assignee_id=parse_id(input.assignee_id, "assigneeId") if input.assignee_id else None,
                source=input.source, source_key=input.source_key)

        result, errors = await in_transaction(info, work)
        task, created = result if result else (None, False)
        return TaskPayload(task=task, created=created, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def assign_task(self, info: Info, input: AssignTaskInput) -> TaskPayload:
        task, errors = await in_transaction(info, lambda ctx: service.assign_task(
            ctx, parse_id(input.task_id, "taskId"),
            parse_id(input.assignee_id, "assigneeId") if input.assignee_id else None))
        return TaskPayload(task=task, created=False, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def complete_task(self, info: Info, input: CompleteTaskInput) -> TaskPayload:
        task, errors = await in_transaction(
            info, lambda ctx: service.complete_task(ctx, parse_id(input.task_id, "taskId")))
        return TaskPayload(task=task, created=False, user_errors=errors)  # type: ignore[arg-type]
