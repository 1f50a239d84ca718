"""Renewal reminders: every rule of the plugin.

A reminder ``o`` days before the end is due once ``o`` or fewer days are left, and only if
the end date was already set ``o`` days before it (``armed_on``): a contract entered 45
days before its end gets the 30-day reminder, not late 90- and 60-day ones. Of the due
reminders only the nearest is sent, once per subscription, end date and offset; moving the
end date re-arms them. Past its end a subscription renews itself (``autoRenew``) or lapses.

For other plugins: :func:`ending_without_renewal` lists each customer's subscriptions that
end soon with nothing renewing them (the churn plugin counts them as a risk).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import NotFound, UserError
from tenure.core.events import CustomersMerged
from tenure.core.messages import send_message
from tenure.core.models import Customer, Task, TaskStatus
from tenure.core.money import money_text
from tenure.core.services.tasks import complete_task, open_task
from tenure.plugins.renewals.models import Plan, Reminder, Subscription

PLUGIN = "renewals"
DAILY_JOB = "renewals.daily"
STATUSES = ("active", "renewed", "lapsed", "cancelled")


@dataclass(frozen=True)
class RenewalsSettings:
    """``TENURE_RENEWALS_<FIELD>``."""

    reminder_days: tuple[int, ...] = (90, 60, 30)
    batch_size: int = 500


def settings_of(ctx: ServiceContext) -> RenewalsSettings:
    return ctx.settings.for_plugin(PLUGIN, RenewalsSettings)


def _offsets(days: list[int] | tuple[int, ...], field: str) -> list[int]:
    clean = sorted(set(days), reverse=True)
    if not clean or any(not 1 <= d <= 3650 for d in clean):
        raise UserError("give one or more whole numbers of days from 1 to 3650", field, "invalid_range")
    return clean


def offsets_for(plan: Plan, settings: RenewalsSettings) -> list[int]:
    return sorted(plan.reminder_days or settings.reminder_days, reverse=True)




def at_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def create_plan(ctx: ServiceContext, *, code: str, name: str, reminder_days: list[int] | None) -> Plan:
    code = v.text(code, "code", max_length=50).lower()
    if await ctx.session.scalar(select(Plan.id).where(Plan.code == code)) is not None:
        raise UserError(f"a plan with code {code!r} exists", "code", "conflict")
    plan = Plan(code=code, name=v.text(name, "name", max_length=200),
                reminder_days=_offsets(reminder_days, "reminderDays") if reminder_days is not None else None,
                created_at=ctx.now())
    ctx.session.add(plan)
    await ctx.session.flush()
    return plan


async def _subscription(ctx: ServiceContext, subscription_id: int, *, lock: bool = True) -> Subscription:
    found = await ctx.session.get(Subscription, subscription_id, with_for_update=lock)
    if found is None:
        raise NotFound("subscription", subscription_id, "id")
    return found


async def create_subscription(ctx: ServiceContext, *, customer_id: int, plan: str, value: int, starts_on: date,
                              ends_on: date, auto_renew: bool = False, currency: str | None = None,
                              external_id: str | None = None) -> Subscription:
    """``external_id`` (unique across all customers) makes a retry safe: the same id with
    the same parameters returns the subscription created the first time, with different
    ones it is refused."""
    found = await ctx.session.scalar(select(Plan).where(Plan.code == plan.strip().lower()))
    if found is None:
        raise UserError(f"no plan with code {plan!r} (create it with createPlan)", "plan", "not_found")
    if ends_on <= starts_on:
        raise UserError("must be after startsOn", "endsOn", "invalid_range")
    if await ctx.session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id, "customerId")
    now = ctx.now()
    subscription = Subscription(
        customer_id=customer_id, plan_id=found.id, value=v.amount(value, "value"),
        currency=v.currency(currency or ctx.settings.currency, ctx.settings.currency), starts_on=starts_on,
        ends_on=ends_on, auto_renew=auto_renew, status="active", armed_on=now.date(), created_at=now, updated_at=now)
    if external_id is not None:
        subscription.external_id = v.text(external_id, "externalId", max_length=100)
        existing = await _by_external_id(ctx, subscription.external_id)
        if existing is None:
            try:
                async with ctx.session.begin_nested():
                    ctx.session.add(subscription)
            except IntegrityError:
                # A concurrent retry inserted it first; its row is visible now.
                existing = await _by_external_id(ctx, subscription.external_id)
                if existing is None:
                    raise
        if existing is not None:
            return _same_request(existing, subscription)
    ctx.session.add(subscription)
    await ctx.session.flush()
    await ctx.publish("renewals.subscription_created", source=PLUGIN, customer_id=customer_id, timeline=True,
                      summary=f"Subscribed to {found.name} until {ends_on.isoformat()}", data=subscription.as_dict())
    return subscription


async def _by_external_id(ctx: ServiceContext, external_id: str) -> Subscription | None:
    return await ctx.session.scalar(select(Subscription).where(Subscription.external_id == external_id))


def _same_request(existing: Subscription, asked: Subscription) -> Subscription:
    fields = ("customer_id", "plan_id", "value", "currency", "starts_on", "ends_on", "auto_renew")
    if any(getattr(existing, f) != getattr(asked, f) for f in fields):
        raise UserError(f"externalId {asked.external_id!r} was already used for subscription {existing.id} "
                        "with other parameters", "externalId", "conflict")
    return existing


async def update_subscription(ctx: ServiceContext, subscription_id: int, *, ends_on: date | None = None,
                              value: int | None = None, auto_renew: bool | None = None) -> Subscription:
    subscription = await _subscription(ctx, subscription_id)
    if subscription.status != "active":
        raise UserError(f"a {subscription.status} subscription cannot be changed", "id", "invalid_status")
    if ends_on is not None and ends_on != subscription.ends_on:
        if ends_on <= subscription.starts_on:
            raise UserError("must be after startsOn", "endsOn", "invalid_range")
        # A new end date has its own reminders, counted from today.
        subscription.ends_on, subscription.armed_on = ends_on, ctx.now().date()
    if value is not None:
        subscription.value = v.amount(value, "value")
    if auto_renew is not None:
        subscription.auto_renew = auto_renew
    subscription.updated_at = ctx.now()
    await ctx.session.flush()
    return subscription


async def _close_task(ctx: ServiceContext, subscription: Subscription) -> None:
    task_id = await ctx.session.scalar(select(Task.id).where(
        Task.source == PLUGIN, Task.source_key == f"subscription:{subscription.id}:{subscription.ends_on}",
        Task.status == TaskStatus.OPEN))
    if task_id is not None:
        await complete_task(ctx, task_id)


async def renew_subscription(ctx: ServiceContext, subscription_id: int, *, ends_on: date | None = None,
                             value: int | None = None, automatic: bool = False) -> Subscription:
    """Renew for a new term (from the old end to ``ends_on``, by default as long as the
    last one): the old subscription becomes ``renewed``, the new term is a new one."""
    old = await _subscription(ctx, subscription_id)
    if old.status not in ("active", "lapsed"):
        raise UserError(f"a {old.status} subscription cannot be renewed", "id", "invalid_status")
    new_end = ends_on or next_end(old.starts_on, old.ends_on)
    if new_end <= old.ends_on:
        raise UserError(f"must be after the current end, {old.ends_on.isoformat()}", "endsOn", "invalid_range")
    now = ctx.now()
    renewed = Subscription(customer_id=old.customer_id, plan_id=old.plan_id,
                           value=v.amount(value, "value") if value is not None else old.value, currency=old.currency,
                           starts_on=old.ends_on, ends_on=new_end, auto_renew=old.auto_renew, status="active",
                           armed_on=now.date(), created_at=now, updated_at=now)
    ctx.session.add(renewed)
    await ctx.session.flush()
    old.status, old.renewed_to_id, old.closed_at, old.updated_at = "renewed", renewed.id, now, now
    await _close_task(ctx, old)
    how = "automatically " if automatic else ""
    await ctx.publish("renewals.renewed", source=PLUGIN, customer_id=old.customer_id, timeline=True,
                      summary=f"Subscription renewed {how}until {new_end.isoformat()}",
                      data={**renewed.as_dict(), "renewedFromId": old.id})
    return renewed


async def cancel_subscription(ctx: ServiceContext, subscription_id: int, reason: str = "") -> Subscription:
    subscription = await _subscription(ctx, subscription_id)
    if subscription.status != "active":
        raise UserError(f"a {subscription.status} subscription cannot be cancelled", "id", "invalid_status")
    reason = v.text(reason, "reason", max_length=500, required=False)
    now = ctx.now()
    subscription.status, subscription.closed_at, subscription.updated_at = "cancelled", now, now
    await _close_task(ctx, subscription)
    await ctx.publish("renewals.cancelled", source=PLUGIN, customer_id=subscription.customer_id, timeline=True,
                      summary=f"Subscription cancelled{': ' + reason if reason else ''}",
                      data={**subscription.as_dict(), "reason": reason})
    return subscription


def _add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    target = date(day.year + year, month + 1, 1)
    last = ((target + timedelta(days=32)).replace(day=1) - timedelta(days=1)).day
    return target.replace(day=min(day.day, last))


def next_end(starts_on: date, ends_on: date) -> date:
    """The end of a term as long as ``starts_on``..``ends_on``: whole months stay whole
    months (a yearly plan renews on the same day next year), anything else in days."""
    months = (ends_on.year - starts_on.year) * 12 + ends_on.month - starts_on.month
    if months > 0 and _add_months(starts_on, months) == ends_on:
        return _add_months(ends_on, months)
    return ends_on + (ends_on - starts_on)


def due_offset(subscription: Subscription, offsets: list[int], today: date) -> int | None:
    """The reminder to send today, if any: the nearest one due, armed in time."""
    days_left = (subscription.ends_on - today).days
    if days_left < 0:
        return None
    due = [o for o in offsets if days_left <= o and subscription.ends_on - timedelta(days=o) >= subscription.armed_on]
    return min(due) if due else None


async def _remind(ctx: ServiceContext, subscription: Subscription, plan: Plan, offset: int) -> bool:
    inserted = await ctx.session.execute(
        insert_ignoring_conflicts(ctx.dialect, Reminder.__table__)
        .values(subscription_id=subscription.id, ends_on=subscription.ends_on, offset_days=offset, sent_at=ctx.now())
        .returning(Reminder.id))
    if inserted.scalar_one_or_none() is None:
        return False
    key = f"renewals:{subscription.id}:{subscription.ends_on}:{offset}"
    data = {"renewal_date": subscription.ends_on.isoformat(), "plan": plan.name,
            "days_left": (subscription.ends_on - ctx.now().date()).days,
            "value": money_text(subscription.value, subscription.currency)}
    await send_message(ctx, customer_id=subscription.customer_id, template="renewals.reminder", data=data,
                       dedupe_key=f"{key}:customer")
    await send_message(ctx, customer_id=subscription.customer_id, template="renewals.owner_reminder", data=data,
                       dedupe_key=f"{key}:owner", recipient="owner")
    customer = await ctx.session.get(Customer, subscription.customer_id)
    await open_task(ctx, title=f"Renewal: {customer.name if customer else 'customer'}: {plan.name}"[:200],
                    customer_id=subscription.customer_id, due_at=at_midnight(subscription.ends_on), source=PLUGIN,
                    source_key=f"subscription:{subscription.id}:{subscription.ends_on}",
                    reason=f"{plan.name} ends on {subscription.ends_on.isoformat()} ({data['value']}); "
                           f"auto-renew is {'on' if subscription.auto_renew else 'off'}.")
    return True


async def _close_ended(ctx: ServiceContext, today: date, limit: int) -> list[int]:
    ended = list(await ctx.session.scalars(
        select(Subscription).where(Subscription.status == "active", Subscription.ends_on < today)
        .order_by(Subscription.id).limit(limit)))
    for subscription in ended:
        if subscription.auto_renew:
            await renew_subscription(ctx, subscription.id, automatic=True)
            continue
        subscription.status, subscription.closed_at, subscription.updated_at = "lapsed", ctx.now(), ctx.now()
        await ctx.publish("renewals.lapsed", source=PLUGIN, customer_id=subscription.customer_id, timeline=True,
                          summary=f"Subscription lapsed: ended {subscription.ends_on.isoformat()} without renewal",
                          data=subscription.as_dict())
    return [s.id for s in ended]


async def daily(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``renewals.daily`` job: renew or lapse what ended, then send the reminders due
    today. Work beyond one batch goes on in a follow-up run of the job."""
    settings = settings_of(ctx)
    today = ctx.now().date()
    closed = await _close_ended(ctx, today, settings.batch_size)
    if len(closed) == settings.batch_size:
        await ctx.enqueue(DAILY_JOB, {}, dedupe_key=f"renewals:daily:{today}:close:{closed[-1]}")
        return
    plans = {p.id: p for p in await ctx.session.scalars(select(Plan))}
    horizon = max([o for p in plans.values() for o in offsets_for(p, settings)] or [0])
    after = int(payload.get("after", 0))
    batch = list(await ctx.session.scalars(
        select(Subscription).where(Subscription.status == "active", Subscription.ends_on >= today,
                                   Subscription.ends_on <= today + timedelta(days=horizon), Subscription.id > after)
        .order_by(Subscription.id).limit(settings.batch_size)))
    for subscription in batch:
        plan = plans[subscription.plan_id]
        offset = due_offset(subscription, offsets_for(plan, settings), today)
        if offset is not None:
            await _remind(ctx, subscription, plan, offset)
    if len(batch) == settings.batch_size:
        await ctx.enqueue(DAILY_JOB, {"after": batch[-1].id}, dedupe_key=f"renewals:daily:{today}:{batch[-1].id}")


async def on_merge(ctx: ServiceContext, event: CustomersMerged) -> None:
    await ctx.session.execute(update(Subscription).where(Subscription.customer_id == event.merged_id)
                              .values(customer_id=event.survivor.id))


@dataclass(frozen=True)
class Ending:
    subscription_id: int
    plan_id: int
    ends_on: date
    value: int
    currency: str


async def ending_without_renewal(session: AsyncSession, customer_ids: list[int], *, today: date,
                                 within_days: int = 90) -> dict[int, list[Ending]]:
    """Each customer's active subscriptions ending within ``within_days`` of ``today`` with
    auto-renew off (nothing renews them unless someone acts). One query."""
    if not customer_ids:
        return {}
    rows = await session.scalars(select(Subscription).where(
        Subscription.customer_id.in_(customer_ids), Subscription.status == "active",
        Subscription.auto_renew.is_(False), Subscription.ends_on <= today + timedelta(days=within_days))
        .order_by(Subscription.ends_on))
    found: dict[int, list[Ending]] = defaultdict(list)
    for s in rows:
        found[s.customer_id].append(Ending(s.id, s.plan_id, s.ends_on, s.value, s.currency))
    return dict(found)


@dataclass
class Month:
    start: date
    ending: int = 0
    renewed: int = 0
    lapsed: int = 0
    cancelled: int = 0
    open: int = 0
    revenue_at_risk: int = 0
    revenue_lost: int = 0

    @property
    def renewal_rate(self) -> float | None:
        decided = self.renewed + self.lapsed + self.cancelled
        return round(self.renewed / decided, 4) if decided else None


async def report(session: AsyncSession, *, start: date, end: date) -> list[Month]:
    """By month of the end date: how many ended, renewed, lapsed or were cancelled, the
    renewal rate (renewed of those decided), the value still open without auto-renew (at
    risk) and the value that lapsed."""
    if end < start:
        raise UserError("must not be before from", "to", "invalid_range")
    if (end - start).days > 3660:
        raise UserError("a report covers at most ten years", "to", "invalid_range")
    first, last = start.replace(day=1), end
    rows = (await session.execute(
        select(Subscription.ends_on, Subscription.status, Subscription.auto_renew, func.count(),
               func.sum(Subscription.value))
        .where(Subscription.ends_on >= first, Subscription.ends_on <= last)
        .group_by(Subscription.ends_on, Subscription.status, Subscription.auto_renew))).all()
    months: dict[date, Month] = {}
    cursor = first
    while cursor <= last:
        months[cursor] = Month(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    for ends_on, status, auto_renew, count, value in rows:
        month = months[ends_on.replace(day=1)]
        month.ending += int(count)
        if status == "active":
            month.open += int(count)
            if not auto_renew:
                month.revenue_at_risk += int(value or 0)
        elif status == "lapsed":
            month.lapsed += int(count)
            month.revenue_lost += int(value or 0)
        elif status == "renewed":
            month.renewed += int(count)
        else:
            month.cancelled += int(count)
    return list(months.values())
