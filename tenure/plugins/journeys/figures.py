"""What a journey did and would do, read only: its figures against the holdout, a preview
of who would have entered, and the steps due in a window (for a forecast).

Converted means an order (not cancelled) placed after entering and within the journey's
``conversionDays``. The holdout entered like everyone else but got nothing, so the lift,
the treated entrants' conversion rate minus the holdout's, is what the journey changed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.clock import as_utc, business_day
from tenure.core.errors import UserError
from tenure.core.models import Customer, Event, Order
from tenure.plugins.journeys import catalog
from tenure.plugins.journeys.engine import first_due, in_holdout, passing, step_wait
from tenure.plugins.journeys.models import ACTIVE, Entry, HistoryEvent, Journey, StepRun
from tenure.plugins.journeys.timing import due_after

MAX_PREVIEW_DAYS = 366
MAX_FORECAST_DAYS = 366


@dataclass
class StepFigures:
    position: int
    action: str
    done: int = 0
    skipped: int = 0


@dataclass
class Figures:
    entered: int = 0
    held_out: int = 0
    active: int = 0
    completed: int = 0
    exited: int = 0
    steps: list[StepFigures] = field(default_factory=list)
    converted: int = 0
    holdout_converted: int = 0

    @property
    def treated(self) -> int:
        return self.entered - self.held_out

    @property
    def conversion_rate(self) -> float | None:
        return round(self.converted / self.treated, 4) if self.treated else None

    @property
    def holdout_conversion_rate(self) -> float | None:
        return round(self.holdout_converted / self.held_out, 4) if self.held_out else None

    @property
    def lift(self) -> float | None:
        """Conversion rate of the treated minus the holdout's (0.05 is five points)."""
        if self.conversion_rate is None or self.holdout_conversion_rate is None:
            return None
        return round(self.conversion_rate - self.holdout_conversion_rate, 4)


async def figures(session: AsyncSession, journey: Journey) -> Figures:
    """Three statements: entries by status, step runs by step and status, conversions."""
    out = Figures(steps=[StepFigures(n + 1, s["action"]) for n, s in enumerate(journey.steps)])
    for status, holdout, count in (await session.execute(
            select(Entry.status, Entry.holdout, func.count()).where(Entry.journey_id == journey.id)
            .group_by(Entry.status, Entry.holdout))).all():
        out.entered += count
        if holdout:
            out.held_out += count
        elif status in ("active", "completed", "exited"):
            setattr(out, status, getattr(out, status) + count)
    steps = {s.position - 1: s for s in out.steps}
    for position, status, count in (await session.execute(
            select(StepRun.step, StepRun.status, func.count()).join(Entry, Entry.id == StepRun.entry_id)
            .where(Entry.journey_id == journey.id).group_by(StepRun.step, StepRun.status))).all():
        if position in steps and status in ("done", "skipped"):
            setattr(steps[position], status, getattr(steps[position], status) + count)
    window = timedelta(days=journey.conversion_days)
    for holdout, entered_at, first_order in (await session.execute(
            select(Entry.holdout, Entry.entered_at, func.min(Order.placed_at))
            .join(Order, (Order.customer_id == Entry.customer_id) & (Order.placed_at > Entry.entered_at)
                  & (Order.status != "cancelled"))
            .where(Entry.journey_id == journey.id).group_by(Entry.id, Entry.holdout, Entry.entered_at))).all():
        if first_order is not None and as_utc(first_order) - as_utc(entered_at) <= window:
            if holdout:
                out.holdout_converted += 1
            else:
                out.converted += 1
    return out


@dataclass
class Preview:
    days: int
    entries: int = 0
    customers: int = 0
    held_out: int = 0
    sample_customer_ids: list[int] = field(default_factory=list)


async def _occurrences(session: AsyncSession, plugins: Any, zone: Any, journey: Journey, start: datetime,
                       end: datetime) -> list[tuple[int, str]]:
    """Trigger occurrences in ``[start, end)`` as (customer, occurrence), from what is
    recorded: orders, the event log (without what history wrote), the customers' dates."""
    trigger = catalog.triggers(plugins).get(journey.trigger)
    if trigger is None:
        raise UserError(f"the trigger {journey.trigger} is not offered now (is its plugin off?)", "id",
                        "plugin_off")
    params = journey.trigger_params or {}
    if journey.trigger == catalog.SEGMENT_TRIGGER:
        raise UserError("a segment trigger has no past to preview: who was in a segment is not kept over time "
                        "(the segment's members now are in customers(filter: {churnSegment: ...}))", "id",
                        "not_previewable")
    if journey.trigger == "first_order":
        firsts = await session.scalars(select(Customer.id).where(Customer.first_order_at >= start,
                                                                 Customer.first_order_at < end))
        return [(cid, "first_order") for cid in firsts]
    if journey.trigger == "order_recorded":
        orders = (await session.execute(select(Order.customer_id, Order.id).where(
            Order.created_at >= start, Order.created_at < end))).all()
        return [(cid, f"order:{oid}") for cid, oid in orders]
    if trigger.event_type:
        events = (await session.execute(select(Event.customer_id, Event.id, Event.data).where(
            Event.type == trigger.event_type, Event.occurred_at >= start, Event.occurred_at < end,
            Event.customer_id.is_not(None), Event.id.not_in(select(HistoryEvent.event_id))))).all()
        return [(int(cid), f"event:{eid}") for cid, eid, data in events
                if trigger.match is None or trigger.match(data or {}, params)]
    found: list[tuple[int, str]] = []
    if trigger.on_day is not None:
        day, last = business_day(start, zone), business_day(end - timedelta(microseconds=1), zone)
        while day <= last:
            found += await trigger.on_day(session, day, zone, params)
            day += timedelta(days=1)
    return found


async def preview(session: AsyncSession, plugins: Any, zone: Any, journey: Journey, *, days: int,
                  now: datetime) -> Preview:
    """Who would have entered over the last ``days`` days, with the conditions as they are
    now and the holdout applied; nothing is written and nothing is sent."""
    if not 1 <= days <= MAX_PREVIEW_DAYS:
        raise UserError(f"from 1 to {MAX_PREVIEW_DAYS} days", "days", "invalid_range")
    found = await _occurrences(session, plugins, zone, journey, now - timedelta(days=days),
                               now + timedelta(microseconds=1))  # up to now, included
    allowed = await passing(session, plugins, journey.conditions or {}, [c for c, _ in found])
    entries = [(c, o) for c, o in dict.fromkeys(found) if c in allowed]
    customers = sorted({c for c, _ in entries})
    held = [c for c in customers if in_holdout(journey.id, c, journey.holdout_percent)]
    return Preview(days=days, entries=len(entries), customers=len(customers), held_out=len(held),
                   sample_customer_ids=customers[:20])


@dataclass(frozen=True)
class DueStep:
    """Customers due at one step of one journey on one business day (a forecast's row)."""

    day: date
    journey: str
    step: int
    action: str
    customers: int


async def steps_due(session: AsyncSession, plugins: Any, zone: Any, start: datetime, end: datetime,
                    *, include_new_entries: bool = True, days_in: Any = None) -> list[DueStep]:
    """Journey steps due in ``[start, end)`` without running them: those of customers in a
    journey now (their next step and the ones after it), and, with ``include_new_entries``,
    those of customers a date trigger (birthday, anniversary, days after signup) lets in
    within the window. Active journeys only; the holdout gets no step. Sorted by day,
    journey and step. Exits that may come true meanwhile are not guessed. Waits are worked
    out in the business time zone ``zone``; the days are those of ``days_in`` (``zone``
    unless given: the forecast counts UTC days)."""
    if end <= start:
        raise UserError("the window must end after it starts", "end", "invalid_range")
    if end - start > timedelta(days=MAX_FORECAST_DAYS):
        raise UserError(f"a window of at most {MAX_FORECAST_DAYS} days", "end", "invalid_range")
    journeys = {j.id: j for j in await session.scalars(select(Journey).where(Journey.status == ACTIVE))}
    counts: Counter[tuple[date, str, int, str]] = Counter()
    report_zone = zone if days_in is None else days_in

    def walk(journey: Journey, position: int, due: datetime | None, weight: int) -> None:
        while due is not None and position < len(journey.steps) and due < end:
            if due >= start:
                action = journey.steps[position]["action"]
                counts[business_day(due, report_zone), journey.name, position + 1, action] += weight
            position += 1
            due = due_after(due, step_wait(journey.steps[position]), zone) if position < len(journey.steps) else None

    if journeys:
        for journey_id, position, due, count in (await session.execute(
                select(Entry.journey_id, Entry.next_step, Entry.due_at, func.count())
                .where(Entry.status == ACTIVE, Entry.due_at < end, Entry.journey_id.in_(list(journeys)))
                .group_by(Entry.journey_id, Entry.next_step, Entry.due_at))).all():
            walk(journeys[journey_id], position, as_utc(due) if due else None, count)
    if include_new_entries:
        offered = catalog.triggers(plugins)
        for journey in journeys.values():
            trigger = offered.get(journey.trigger)
            if trigger is None or trigger.on_day is None:
                continue
            first = max(business_day(start, zone), (journey.dates_through or date.min) + timedelta(days=1))
            day, last = first, business_day(end - timedelta(microseconds=1), zone)
            by_day: dict[date, list[int]] = defaultdict(list)
            while day <= last:
                by_day[day] = [c for c, _ in await trigger.on_day(session, day, zone, journey.trigger_params or {})]
                day += timedelta(days=1)
            allowed = await passing(session, plugins, journey.conditions or {},
                                    [c for found in by_day.values() for c in found])
            for day, found in by_day.items():
                treated = sum(1 for c in found if c in allowed and not in_holdout(journey.id, c,
                                                                                  journey.holdout_percent))
                if treated:
                    entered = max(as_utc(datetime.combine(day, datetime.min.time(), tzinfo=zone)),
                                  as_utc(journey.active_since))
                    walk(journey, 0, first_due(journey, entered, zone), treated)
    return [DueStep(day, name, step, action, n) for (day, name, step, action), n in sorted(counts.items())]
