"""What the daily renewals job will do in the coming days: the reminders it will send, and
the subscriptions it will renew (auto-renew on) or let lapse, by replaying its rules day by
day over the active subscriptions, without writing anything."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import select

from tenure.core.context import ServiceContext
from tenure.core.contributions import Forecaster, ForecastItem
from tenure.plugins.renewals.models import Plan, Reminder, Subscription
from tenure.plugins.renewals.service import next_end, offsets_for, settings_of


@dataclass(frozen=True)
class Term:
    """What the daily job reads of a subscription."""

    id: int
    plan_id: int
    starts_on: date
    ends_on: date
    armed_on: date
    auto_renew: bool
    value: int
    currency: str


def reminder_due(term: Term, offsets: list[int], today: date) -> int | None:
    """The offset the job would send today (as ``service.due_offset``)."""
    days_left = (term.ends_on - today).days
    if days_left < 0:
        return None
    due = [o for o in offsets if days_left <= o and term.ends_on - timedelta(days=o) >= term.armed_on]
    return min(due) if due else None


async def forecast(ctx: ServiceContext, first: date, last: date) -> list[ForecastItem]:
    settings = settings_of(ctx)
    plans = {p.id: p for p in await ctx.session.scalars(select(Plan))}
    horizon = max([o for p in plans.values() for o in offsets_for(p, settings)] or [0])
    soon = (Subscription.status == "active") & (Subscription.ends_on <= last + timedelta(days=horizon + 1))
    terms = [Term(s.id, s.plan_id, s.starts_on, s.ends_on, s.armed_on, s.auto_renew, s.value, s.currency)
             for s in await ctx.session.scalars(select(Subscription).where(soon))]
    sent: set[tuple[int, date, int]] = {(s, e, o) for s, e, o in await ctx.session.execute(
        select(Reminder.subscription_id, Reminder.ends_on, Reminder.offset_days)
        .join(Subscription, Subscription.id == Reminder.subscription_id).where(soon))}
    reminders: Counter[date] = Counter()
    renewed: Counter[date] = Counter()
    lapsed: Counter[date] = Counter()
    at_risk: Counter[date] = Counter()
    day = first
    while day <= last:
        kept: list[Term] = []
        for term in terms:
            if term.ends_on < day:  # the job closes it today
                if term.auto_renew:
                    renewed[day] += 1
                    kept.append(replace(term, starts_on=term.ends_on, ends_on=next_end(term.starts_on, term.ends_on),
                                        armed_on=day))
                else:
                    lapsed[day] += 1
                    at_risk[day] += term.value
                continue
            kept.append(term)
        for term in kept:
            offset = reminder_due(term, offsets_for(plans[term.plan_id], settings), day)
            if offset is not None and (term.id, term.ends_on, offset) not in sent:
                sent.add((term.id, term.ends_on, offset))
                reminders[day] += 1
        terms = kept
        day += timedelta(days=1)
    currency = ctx.settings.currency
    return [
        *(ForecastItem(d, "renewals.reminder", n, f"{n} renewal reminder{'s' * (n != 1)} to customers and owners, "
                       "each with a renewal task") for d, n in reminders.items()),
        *(ForecastItem(d, "renewals.renewed", n, f"{n} subscription{'s' * (n != 1)} renewed automatically")
          for d, n in renewed.items()),
        *(ForecastItem(d, "renewals.lapsed", n,
                       f"{n} subscription{'s' * (n != 1)} lapse{'s' * (n == 1)} without renewal",
                       amount=at_risk[d], unit=currency) for d, n in lapsed.items()),
    ]


def forecasters() -> list[Forecaster]:
    return [Forecaster("renewals", forecast, "renewal reminders, renewals and lapses")]
