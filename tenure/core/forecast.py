"""The forecast: day by day, what the scheduled rules will do if nothing changes.

Each plugin answers for its own rules through ``tenure_forecasts`` (renewal reminders and
lapses, points expiring and their value, members leaving a tier, surveys and journey steps
due). Nothing is done: the forecast runs in a transaction that is always rolled back, so a
forecaster that wrote by mistake would change nothing either.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from croniter import croniter

from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.contributions import ForecastItem
from tenure.core.errors import UserError

if TYPE_CHECKING:
    from tenure.core.db import Database
    from tenure.core.plugins import PluginManager
    from tenure.core.settings import Settings

#: The longest forecast asked for at once.
MAX_DAYS = 366


@dataclass(frozen=True)
class PlannedItem:
    """A forecast item with the plugin whose rule it is."""

    plugin: str
    item: ForecastItem


@dataclass
class ForecastDay:
    day: date
    items: list[PlannedItem] = field(default_factory=list)


def run_day(schedule: str | None, at: datetime, now: datetime) -> date | None:
    """The day of the first run of a job on the cron ``schedule`` (UTC) that finds the
    moment ``at`` passed: where a forecaster puts what that job will do about ``at``.
    ``None`` when the job has no schedule (switched off with ``TENURE_SCHEDULE_<JOB>=off``)."""
    if schedule is None:
        return None
    # The first fire at or after the later of the two (a run at ``at`` itself sees it).
    start = max(as_utc(at), now) - timedelta(microseconds=1)
    fire: datetime = croniter(schedule, start).get_next(datetime)
    return fire.date()


async def forecast(ctx: ServiceContext, days: int) -> list[ForecastDay]:
    """The days from today (by the clock, UTC) to ``days - 1`` days on, each with what the
    enabled plugins' rules will do on it; days with nothing are left out."""
    if not 1 <= days <= MAX_DAYS:
        raise UserError(f"from 1 to {MAX_DAYS} days", "days", "invalid_days")
    first = ctx.now().date()
    last = first + timedelta(days=days - 1)
    by_day: dict[date, list[PlannedItem]] = defaultdict(list)
    for plugin, forecaster in ctx.plugins.forecasters:
        for item in await forecaster.forecast(ctx, first, last):
            if first <= item.day <= last and item.count:
                by_day[item.day].append(PlannedItem(plugin, item))
    return [ForecastDay(day, sorted(items, key=lambda p: (p.plugin, p.item.kind)))
            for day, items in sorted(by_day.items())]


async def read_forecast(db: Database, settings: Settings, plugins: PluginManager, days: int) -> list[ForecastDay]:
    """:func:`forecast` in a read session that is rolled back, whatever the forecasters did."""
    async with db.reader() as session:
        try:
            return await forecast(ServiceContext(session, settings, plugins, actor="forecast"), days)
        finally:
            await session.rollback()
