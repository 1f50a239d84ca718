"""What loyalty's scheduled jobs will do in the coming days: points that expire (and what
they are worth), points that become spendable once their return window closes, and
birthday bonuses. Each lands on the day of the job run that will act on it (the job's
schedule, ``TENURE_SCHEDULE_<JOB>`` included), so the forecast says what the days then do."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, extract, func, select

from tenure.core.context import ServiceContext
from tenure.core.contributions import Forecaster, ForecastItem
from tenure.core.forecast import run_day
from tenure.core.models import Customer
from tenure.plugins.loyalty.models import Entry
from tenure.plugins.loyalty.rules import load_rules
from tenure.plugins.loyalty.settings import loyalty_settings


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    now = ctx.now()
    until = datetime.combine(last + timedelta(days=1), time(), UTC)
    jobs = ctx.plugins.jobs
    value = loyalty_settings(ctx).point_value_minor
    expiring: Counter[date] = Counter()
    expiring_lots: Counter[date] = Counter()
    for at, points, lots in await ctx.session.execute(
            select(Entry.expires_at, func.sum(Entry.remaining), func.count())
            .where(Entry.pending.is_(False), Entry.remaining > 0, Entry.expires_at < until)
            .group_by(Entry.expires_at)):
        day = run_day(jobs["loyalty.expire_points"].schedule, at, now) if at is not None else None
        if day is not None:
            expiring[day] += int(points)
            expiring_lots[day] += int(lots)
    released: Counter[date] = Counter()
    released_lots: Counter[date] = Counter()
    for at, points, lots in await ctx.session.execute(
            select(Entry.available_at, func.sum(Entry.points), func.count())
            .where(Entry.pending.is_(True), Entry.points > 0, Entry.available_at < until)
            .group_by(Entry.available_at)):
        day = run_day(jobs["loyalty.release_pending"].schedule, at, now) if at is not None else None
        if day is not None:
            released[day] += int(points)
            released_lots[day] += int(lots)
    items = [
        *(ForecastItem(d, "loyalty.points_expire", expiring_lots[d],
                       f"{p:,} points expire (worth {p * value:,} in minor units of {ctx.settings.currency})",
                       amount=p, unit="points") for d, p in expiring.items()),
        *(ForecastItem(d, "loyalty.points_released", released_lots[d],
                       f"{p:,} pending points become spendable", amount=p, unit="points")
          for d, p in released.items()),
    ]
    rule = (await load_rules(ctx.session)).bonus("birthday")
    if rule is not None and jobs["loyalty.birthday_bonuses"].schedule is not None:
        items += await _birthdays(ctx, first, last, rule.points)
    return items


async def _birthdays(ctx: ServiceContext, first: date, last: date, points: int) -> list[ForecastItem]:
    """Birthdays per day (29 February on the 28th in other years); today's, less those whose
    bonus of this year was given already."""
    month, day_of = extract("month", Customer.birthday), extract("day", Customer.birthday)
    living = and_(Customer.birthday.is_not(None), Customer.erased_at.is_(None))
    counts = {(int(m), int(d)): int(n) for m, d, n in await ctx.session.execute(
        select(month, day_of, func.count()).where(living).group_by(month, day_of))}
    given_today = int(await ctx.session.scalar(
        select(func.count()).select_from(Customer).join(Entry, Entry.customer_id == Customer.id)
        .where(living, month == first.month, day_of == first.day,
               Entry.idempotency_key == f"birthday:{first.year}")) or 0)
    items = []
    day = first
    while day <= last:
        n = counts.get((day.month, day.day), 0)
        leap_year = day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)
        if day.month == 2 and day.day == 28 and not leap_year:
            n += counts.get((2, 29), 0)
        if day == first:
            n -= given_today
        if n > 0:
            items.append(ForecastItem(day, "loyalty.birthday_bonus", n,
                                      f"{n} birthday bonus{'es' * (n != 1)} of {points} points",
                                      amount=n * points, unit="points"))
        day += timedelta(days=1)
    return items


def forecasters() -> list[Forecaster]:
    return [Forecaster("loyalty", forecast, "points expiring, points released, birthday bonuses")]
