"""What the tiers review will do in the coming days if nothing changes: members whose grace
period ends leave their tier, and members whose qualification lapses start a grace period
(and, when it ends inside the forecast, leave too). Each on the day of the review run that
acts (the review's schedule, ``TENURE_SCHEDULE_TIERS_REVIEW`` included)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from tenure.core.context import ServiceContext
from tenure.core.contributions import Forecaster, ForecastItem
from tenure.core.forecast import run_day
from tenure.plugins.tiers.models import Membership, Tier


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    schedule = ctx.plugins.jobs["tiers.review"].schedule
    now = ctx.now()
    until = datetime.combine(last + timedelta(days=1), time(), UTC)
    tiers = {t.id: t for t in await ctx.session.scalars(select(Tier))}
    leaving: Counter[tuple[date, str]] = Counter()
    grace: Counter[tuple[date, str]] = Counter()
    for membership in await ctx.session.scalars(select(Membership).where(
            Membership.manual.is_(False),
            ((Membership.downgrade_on.is_not(None)) & (Membership.downgrade_on < until))
            | ((Membership.downgrade_on.is_(None)) & (Membership.expires_at < until)))):
        tier = tiers[membership.tier_id]
        if membership.downgrade_on is not None:
            day = run_day(schedule, membership.downgrade_on, now)
            if day is not None:
                leaving[day, tier.name] += 1
            continue
        assert membership.expires_at is not None
        starts = run_day(schedule, membership.expires_at, now)
        if starts is None:
            continue
        if tier.grace_days:
            grace[starts, tier.name] += 1
        # The review that starts the grace period sets its end from the run's own moment.
        fire = datetime.combine(starts, time(), UTC)
        ends = run_day(schedule, fire + timedelta(days=tier.grace_days), now) if tier.grace_days else starts
        if ends is not None:
            leaving[ends, tier.name] += 1
    return [
        *(ForecastItem(d, "tiers.downgrade", n,
                       f"{n} member{'s' * (n != 1)} leave{'s' * (n == 1)} {name} (grace period over)")
          for (d, name), n in leaving.items()),
        *(ForecastItem(d, "tiers.grace_started", n,
                       f"{n} member{'s' * (n != 1)} no longer reach{'es' * (n == 1)} {name}: grace period starts")
          for (d, name), n in grace.items()),
    ]


def forecasters() -> list[Forecaster]:
    return [Forecaster("tiers", forecast, "members starting a grace period or leaving a tier")]
