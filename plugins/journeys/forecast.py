"""What the journeys will do in the coming days if nothing changes: the steps coming due for
customers in a journey now, and for those a date trigger (birthday, anniversary, days after
signing up) lets in meanwhile. The holdout gets no step; exits that may come true are not
guessed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from core.context import ServiceContext
from core.contributions import Forecaster, ForecastItem
from plugins.journeys import engine
from plugins.journeys.figures import steps_due


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    if ctx.plugins.jobs[engine.RUN_JOB].schedule is None:
        return []  # switched off: no step runs until someone runs the job by hand
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    due = await steps_due(ctx.session, ctx.plugins, ctx.settings.zone, start, end, days_in=UTC)
    by_day: Counter[tuple[date, str, int, str]] = Counter()
    for step in due:
        by_day[step.day, step.journey, step.step, step.action] += step.customers
    return [ForecastItem(day, f"journeys.{action}", n,
                         f"{journey}, step {number} ({action}): {n} customer{'s' * (n != 1)}")
            for (day, journey, number, action), n in by_day.items()]


def forecasters() -> list[Forecaster]:
    return [Forecaster("journeys", forecast, "journey steps coming due")]
