"""What the survey sending job will do in the coming days: invitations already due on a day
(after-order surveys wait their delay), and the runs of scheduled surveys with the size of
their segment now. Throttling may skip some: the forecast says how many are due, not how
many a customer's recent answers will let through."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.contributions import Forecaster, ForecastItem
from tenure.core.forecast import run_day
from tenure.plugins.nps.models import Invitation, Survey
from tenure.plugins.nps.service import SEND_JOB, _segment


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    schedule = ctx.plugins.jobs[SEND_JOB].schedule
    now = ctx.now()
    until = datetime.combine(last + timedelta(days=1), time(), UTC)
    due: Counter[tuple[date, str]] = Counter()
    for at, name, n in await ctx.session.execute(
            select(Invitation.due_at, Survey.name, func.count()).join(Survey, Survey.id == Invitation.survey_id)
            .where(Invitation.status == "pending", Invitation.due_at < until)
            .group_by(Invitation.due_at, Survey.name)):
        day = run_day(schedule, at, now)
        if day is not None:
            due[day, name] += int(n)
    for survey in await ctx.session.scalars(select(Survey).where(Survey.trigger == "schedule",
                                                                 Survey.active.is_(True))):
        every = timedelta(days=survey.every_days or 1)
        at = as_utc(survey.last_run_at) + every if survey.last_run_at is not None else now
        size = len(await _segment(ctx, survey.segment_tag))
        while size and at < until:
            day = run_day(schedule, at, now)
            if day is None:
                break
            due[day, survey.name] += size
            at = max(at, now) + every
    return [ForecastItem(d, "nps.invitations", n, f"{n} invitation{'s' * (n != 1)} to the survey {name!r}")
            for (d, name), n in due.items()]


def forecasters() -> list[Forecaster]:
    return [Forecaster("nps", forecast, "survey invitations due")]
