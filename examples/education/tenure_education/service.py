"""The education plugin's rules.

- A course completion is an interaction of kind ``course_completed`` (TENURE_EDUCATION_
  COMPLETION_KIND) whose payload names the ``course``. The first completion of a course is
  recorded and put on the learner's timeline; a repeat is not counted again.
- With the tiers plugin on, each distinct course completed counts ``points_per_course``
  qualifying points (the tiers plugin's ``tiers_qualifying_points`` hook), and a completion
  re-evaluates the learner's tier at once (``plugins.tiers.service.evaluate``), so a tier with
  ``minPoints`` is reached by studying.
- A learner (anyone with a completion) with no ``login`` interaction for ``inactive_days``
  gets one follow-up task per spell of inactivity. With the churn plugin on, no login for
  two weeks is also a churn signal (``signals.py``): it lowers the learner's health score
  and raises a warning like any churn rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from tenure.plugin import (
    CustomersMerged,
    Interaction,
    InteractionLogged,
    ServiceContext,
    SettingsError,
    UserError,
    open_task,
)

from tenure_education.models import Completion

NAME = "education"


@dataclass(frozen=True)
class EducationSettings:
    """Read from TENURE_EDUCATION_<FIELD>."""

    completion_kind: str = "course_completed"
    login_kind: str = "login"
    points_per_course: int = 100
    inactive_days: int = 7

    def check(self) -> None:
        if self.inactive_days < 1:
            raise SettingsError("TENURE_EDUCATION_INACTIVE_DAYS: must be at least 1")
        if self.points_per_course < 0:
            raise SettingsError("TENURE_EDUCATION_POINTS_PER_COURSE: must not be negative")


def settings(ctx: ServiceContext) -> EducationSettings:
    return ctx.settings.for_plugin(NAME, EducationSettings)


async def on_interaction(ctx: ServiceContext, event: InteractionLogged) -> None:
    interaction = event.interaction
    if interaction.kind == settings(ctx).completion_kind:
        await record_completion(ctx, interaction)


async def record_completion(ctx: ServiceContext, interaction: Interaction) -> Completion | None:
    """Record the course the interaction completed; ``None`` when it was completed before."""
    course = (interaction.payload or {}).get("course")
    if not isinstance(course, str) or not course.strip() or len(course.strip()) > 100:
        raise UserError("a course completion needs payload.course, the course's code (at most 100 characters)",
                        "payload", "invalid")
    course = course.strip().lower()
    customer_id = interaction.customer_id
    done = await ctx.session.scalar(
        select(Completion).where(Completion.customer_id == customer_id, Completion.course == course))
    if done is not None:
        return None
    completion = Completion(customer_id=customer_id, course=course, completed_at=interaction.occurred_at,
                            interaction_id=interaction.id)
    ctx.session.add(completion)
    await ctx.session.flush()
    await ctx.publish("education.course_completed", source=NAME, customer_id=customer_id,
                      summary=f"Completed course {course}", data={"customerId": customer_id, "course": course},
                      timeline=True, occurred_at=interaction.occurred_at)
    if ctx.plugins.is_enabled("tiers"):
        from tenure.plugins.tiers import service as tiers

        await tiers.evaluate(ctx, customer_id, f"course {course} completed")
    return completion


async def qualifying_points(session: AsyncSession, customer_ids: Sequence[int], since: datetime,
                            points_per_course: int) -> dict[int, int]:
    rows = await session.execute(
        select(Completion.customer_id, func.count())
        .where(Completion.customer_id.in_(customer_ids), Completion.completed_at > since)
        .group_by(Completion.customer_id))
    return {customer_id: n * points_per_course for customer_id, n in rows}


async def completions_of(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, list[Completion]]:
    rows = await session.scalars(
        select(Completion).where(Completion.customer_id.in_(customer_ids))
        .order_by(Completion.completed_at, Completion.id))
    found: dict[int, list[Completion]] = {c: [] for c in customer_ids}
    for row in rows:
        found[row.customer_id].append(row)
    return found


async def last_logins(session: AsyncSession, customer_ids: Sequence[int], login_kind: str) -> dict[int, datetime]:
    rows = await session.execute(
        select(Interaction.customer_id, func.max(Interaction.occurred_at))
        .where(Interaction.customer_id.in_(customer_ids), Interaction.kind == login_kind)
        .group_by(Interaction.customer_id))
    from tenure.plugin import as_utc

    return {customer_id: as_utc(at) for customer_id, at in rows if at is not None}


async def flag_inactive(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """Open a follow-up task for each learner without a login for ``inactive_days`` (their
    latest completion counts when they never logged in). One task per spell: the cause names
    the last login, so running the job again, or daily, opens nothing new."""
    cfg = settings(ctx)
    cutoff = ctx.now() - timedelta(days=cfg.inactive_days)
    learners = dict((await ctx.session.execute(
        select(Completion.customer_id, func.max(Completion.completed_at)).group_by(Completion.customer_id)
    )).all())
    logins = await last_logins(ctx.session, list(learners), cfg.login_kind)
    from tenure.plugin import as_utc

    for customer_id, last_completion in sorted(learners.items()):
        seen = logins.get(customer_id) or as_utc(last_completion)
        if seen > cutoff:
            continue
        days = (ctx.now() - seen).days
        _, opened = await open_task(
            ctx, title=f"Learner has not logged in for {days} days", customer_id=customer_id,
            reason=f"last login {seen.date().isoformat()}; reach out before they drop the course",
            source=NAME, source_key=f"inactive:{customer_id}:{seen.isoformat()}")
        if opened:
            await ctx.publish("education.inactive", source=NAME, customer_id=customer_id,
                              summary=f"No login for {days} days", data={"customerId": customer_id,
                                                                          "lastLoginAt": seen.isoformat()},
                              timeline=True)


async def move_completions(ctx: ServiceContext, event: CustomersMerged) -> None:
    """The survivor keeps every course either completed, at the earlier completion."""
    survivor, merged = event.survivor.id, event.merged_id
    both = await completions_of(ctx.session, [survivor, merged])
    kept = {c.course: c for c in both[survivor]}
    for completion in both[merged]:
        mine = kept.get(completion.course)
        if mine is None:
            continue
        if completion.completed_at < mine.completed_at:
            mine.completed_at = completion.completed_at
        await ctx.session.delete(completion)
    await ctx.session.flush()
    await ctx.session.execute(
        update(Completion).where(Completion.customer_id == merged).values(customer_id=survivor))


async def export_personal(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    rows = (await completions_of(session, [customer_id]))[customer_id]
    return [{"course": c.course, "completedAt": c.completed_at.isoformat()} for c in rows]


async def erase_personal(session: AsyncSession, customer_id: int) -> None:
    """What someone studied says much about them; erasure removes it whole."""
    await session.execute(delete(Completion).where(Completion.customer_id == customer_id))
