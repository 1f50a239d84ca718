"""The education plugin's GraphQL: a learner's progress on Customer (staff) and on Member
(the learner's own app), and which learners are inactive. Completions come in through the
core's ``logInteraction``; this plugin adds no mutation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import strawberry
from sqlalchemy import func, select
from strawberry.types import Info
from tenure.plugin import STAFF, Customer, allow, now

from tenure_education import service
from tenure_education.models import Completion


@strawberry.type(name="EducationCompletion", description="A course the learner completed, the first time.")
class CompletionType:
    course: str
    completed_at: datetime


@strawberry.type(name="EducationProgress", description="A learner's courses and last login.")
class Progress:
    completed_courses: list[CompletionType]
    last_login_at: datetime | None
    inactive: bool = strawberry.field(description="No login for TENURE_EDUCATION_INACTIVE_DAYS or more.")


async def progress_of(context: Any, customer_ids: Sequence[int]) -> list[Progress]:
    cfg = context.settings.for_plugin(service.NAME, service.EducationSettings)
    async with context.db() as session:
        completions = await service.completions_of(session, customer_ids)
        logins = await service.last_logins(session, customer_ids, cfg.login_kind)
    cutoff = now() - timedelta(days=cfg.inactive_days)
    out = []
    for customer_id in customer_ids:
        done = completions[customer_id]
        seen = logins.get(customer_id) or (done[-1].completed_at if done else None)
        out.append(Progress(completed_courses=[CompletionType(course=c.course, completed_at=c.completed_at)
                                               for c in done],
                            last_login_at=logins.get(customer_id),
                            inactive=bool(done) and seen is not None and seen <= cutoff))
    return out


@strawberry.type
class LearnerFields:
    @strawberry.field(description="Courses completed and last login (education plugin).")
    async def education(self: Customer, info: Info) -> Progress:
        return await info.context.loader(progress_of).load(self.id)  # type: ignore[no-any-return]


@strawberry.type(name="EducationCourseCount")
class CourseCount:
    course: str
    learners: int


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[allow(*STAFF)],
                      description="How many learners completed each course, most completed first.")
    async def education_course_counts(self, info: Info) -> list[CourseCount]:
        async with info.context.db() as session:
            rows = await session.execute(
                select(Completion.course, func.count()).group_by(Completion.course)
                .order_by(func.count().desc(), Completion.course).limit(100))
        return [CourseCount(course=course, learners=n) for course, n in rows]
