"""What the journeys will do in the coming days if nothing changes: the steps coming due for
customers in a journey now, and for those a date trigger (birthday, anniversary, days after
signing up) lets in meanwhile. The holdout gets no step; exits that may come true are not
guessed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from tenure.core.context import ServiceContext
from tenure.core.contributions import Forecaster, ForecastItem
from tenure.plugins.journeys import engine
from tenure.plugins.journeys.figures import steps_due


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    if ctx.plugins.jobs[engine.RUN_JOB].schedule is None:
        return []  # switched off: no step runs until someone runs the job by hand
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    # One row per day, journey and step already: each is one item.
    return [ForecastItem(s.day, f"journeys.{s.action}", s.customers,
                         f"{s.journey}, step {s.step} ({s.action}): {s.customers} customer{'s' * (s.customers != 1)}")
            for s in await steps_due(ctx.session, ctx.plugins, ctx.settings.zone, start, end, days_in=UTC)]


def forecasters() -> list[Forecaster]:
    return [Forecaster("journeys", forecast, "journey steps coming due")]
