"""Journeys at work: who enters, and the steps that come due.

- Entering: one entry per customer, journey and trigger occurrence (a unique constraint),
  written with ``INSERT ... ON CONFLICT DO NOTHING`` for a batch at once; the conditions are
  one statement over the candidates; a deterministic share (the holdout, by a hash of the
  journey and customer) enters as ``held_out`` and gets nothing, to measure the lift.
- Orders enter (``first_order``, ``order_recorded``) and exit (``ordered``) in the order's own
  transaction; an import of history (``ctx.history``) does neither, and the events history
  writes to the log are set aside so that they start nothing either.
- The ``journeys.run`` job reads the event log since its cursor (looking back a little for
  transactions that committed late; entries are unique, so a second look adds nothing),
  looks at the date triggers of each business day once and at who entered a saved segment,
  then runs one batch of due steps.
- A step runs once: its row in ``journeys_step_runs`` (unique per entry and step), its
  action's writes (a message and its delivery job, a task, points, a tag, an event) and the
  entry's move to the next step commit together with the job's own "done" mark. A second
  run finds the row and does nothing; a process killed halfway rolls all of it back.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.clock import as_utc, business_day
from tenure.core.config_cache import CachedConfig
from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.events import OrderRecorded, Publication, publish_many
from tenure.core.models import Customer, CustomerTag, Event, Order
from tenure.core.reads import Read, Write
from tenure.plugins.journeys import catalog
from tenure.plugins.journeys.hookspecs import StepTarget
from tenure.plugins.journeys.models import ACTIVE, Cursor, Entry, HistoryEvent, Journey, SegmentMember, StepRun
from tenure.plugins.journeys.settings import JourneysSettings, journeys_settings
from tenure.plugins.journeys.timing import Wait, due_after, parse_at, parse_wait

log = logging.getLogger("tenure.journeys")
RUN_JOB = "journeys.run"
EVENTS_CURSOR = "events"
_HISTORY_MARK = "journeys.history_from"
_CACHE = "journeys.active"
_CHUNK = 500
#: How many business days one run looks at for date triggers (a long pause catches up over runs).
MAX_DAYS_PER_RUN = 31
#: Events read from the log per statement.
_EVENT_PAGE = 2000


def in_holdout(journey_id: int, customer_id: int, percent: int) -> bool:
    """Whether the customer is kept out of the journey: the same answer every time."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"journeys:{journey_id}:{customer_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < percent


def step_wait(step: dict[str, Any]) -> Wait:
    return replace(parse_wait(step["wait"], "wait"), at=parse_at(step.get("at"), "at"))


def first_due(journey: Journey, entered_at: datetime, zone: Any) -> datetime | None:
    return due_after(entered_at, step_wait(journey.steps[0]), zone) if journey.steps else None


async def active_journeys(ctx: ServiceContext) -> list[Journey]:
    """The active journeys, read once per transaction (a batch's handlers all ask)."""
    cached = ctx.session.info.get(_CACHE)
    if cached is None:
        cached = list(await ctx.session.scalars(select(Journey).where(Journey.status == ACTIVE).order_by(Journey.id)))
        ctx.session.info[_CACHE] = cached
    return cached


#: The order path's view of the active journeys, kept per process until a journey changes
#: (its instances belong to no session: the job and the services, which change journeys,
#: read their own through :func:`active_journeys`).
_ACTIVE_FOR_ORDERS = CachedConfig("journeys.active", Journey, Read(
    lambda _keys: select(Journey).where(Journey.status == ACTIVE).order_by(Journey.id)))


def forget_active(ctx: ServiceContext) -> None:
    ctx.session.info.pop(_CACHE, None)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[n:n + _CHUNK] for n in range(0, len(values), _CHUNK)]


async def passing(session: AsyncSession, plugins: Any, conditions: dict[str, Any],
                  customer_ids: Sequence[int]) -> set[int]:
    """Those of ``customer_ids`` who meet the conditions now (one statement per 500)."""
    found: set[int] = set()
    tiers = conditions.get("tiers")
    if tiers and not plugins.is_enabled("tiers"):
        return found  # a tier condition cannot hold with tiers off
    for part in _chunks(sorted(set(customer_ids))):
        stmt = select(Customer.id).where(Customer.id.in_(part), Customer.erased_at.is_(None))
        for tag in conditions.get("tags", ()):
            stmt = stmt.where(exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag))
        if conditions.get("without_tags"):
            stmt = stmt.where(~exists().where(CustomerTag.customer_id == Customer.id,
                                              CustomerTag.tag.in_(conditions["without_tags"])))
        if conditions.get("channels"):
            stmt = stmt.where(func.lower(Customer.source_channel).in_(conditions["channels"]))
        for flag in conditions.get("consent", ()):
            stmt = stmt.where(getattr(Customer, f"consent_{flag}").is_(True))
        if tiers:
            from tenure.plugins.tiers.models import Membership, Tier

            stmt = stmt.where(exists().where(Membership.customer_id == Customer.id, Tier.id == Membership.tier_id,
                                             func.lower(Tier.name).in_(tiers)))
        found.update(await session.scalars(stmt))
    return found


async def enter(ctx: ServiceContext, journey: Journey, candidates: Sequence[tuple[int, str, datetime]]) -> int:
    """Let ``candidates`` (customer, occurrence, when) into ``journey`` if they meet its
    conditions and have not entered for that occurrence; returns how many entered."""
    if not candidates:
        return 0
    allowed = await passing(ctx.session, ctx.plugins, journey.conditions or {}, [c for c, _, _ in candidates])
    zone = ctx.settings.zone
    rows = []
    seen: set[tuple[int, str]] = set()
    for customer_id, occurrence, at in candidates:
        if customer_id not in allowed or (customer_id, occurrence) in seen:
            continue
        seen.add((customer_id, occurrence))
        held = in_holdout(journey.id, customer_id, journey.holdout_percent)
        due = None if held else first_due(journey, at, zone)
        rows.append({"journey_id": journey.id, "customer_id": customer_id, "occurrence": occurrence[:200],
                     "entered_at": at, "holdout": held, "status": "held_out" if held else ACTIVE, "next_step": 0,
                     "due_at": due, "exit_reason": None, "finished_at": None})
    if not rows:
        return 0
    table = Entry.__table__
    stmt = insert_ignoring_conflicts(ctx.dialect, table).returning(table.c.customer_id, table.c.holdout)
    entered = (await ctx.session.execute(stmt, rows)).all()
    await publish_many(ctx, [
        Publication("journeys.entered", "journeys", customer_id,
                    f"Held out of the journey {journey.name} (the holdout, to measure its effect)" if held
                    else f"Entered the journey {journey.name}",
                    {"customerId": customer_id, "journeyId": journey.id, "journey": journey.name, "holdout": held},
                    timeline=True)
        for customer_id, held in entered])
    return len(entered)


# -- Orders, in their own transaction ---------------------------------------------------------


async def mark_history_start(ctx: ServiceContext, events: list[OrderRecorded]) -> None:
    """Before anyone else answers a batch of history: where the event log stands."""
    if ctx.history:
        ctx.session.info[_HISTORY_MARK] = int((await _LAST_EVENT.all(ctx.session))[0] or 0)


async def on_orders(ctx: ServiceContext, events: list[OrderRecorded]) -> None:
    """Exits on ``ordered`` and entries on order triggers, for a batch of orders. History
    does neither; the events other plugins wrote for it (a tier reached by past orders)
    are set aside so that the job does not start journeys on them."""
    customer_ids = sorted({e.order.customer_id for e in events})
    if ctx.history:
        await _set_history_aside(ctx, customer_ids)
        return
    journeys = await _ACTIVE_FOR_ORDERS.get(ctx.session)
    now = ctx.now()
    exiting = [j.id for j in journeys if "ordered" in (j.exits or [])]
    if exiting:
        await ctx.session.execute(
            update(Entry).where(Entry.status == ACTIVE, Entry.journey_id.in_(exiting),
                                Entry.customer_id.in_(customer_ids), Entry.entered_at < now)
            .values(status="exited", exit_reason="ordered", finished_at=now, due_at=None)
            .execution_options(synchronize_session=False))
    on_order = [j for j in journeys if j.trigger in catalog.ORDER_TRIGGERS and as_utc(j.active_since) <= now]
    if not on_order:
        return
    counts = dict((await ctx.session.execute(
        select(Customer.id, Customer.order_count).where(Customer.id.in_(customer_ids)))).all())
    for journey in on_order:
        candidates = [(e.order.customer_id, f"order:{e.order.id}", now) for e in events
                      if journey.trigger == "order_recorded" or counts.get(e.order.customer_id) == 1]
        await enter(ctx, journey, candidates)


async def _set_history_aside(ctx: ServiceContext, customer_ids: list[int]) -> None:
    mark = ctx.session.info.get(_HISTORY_MARK)
    types = [t.event_type for t in catalog.triggers(ctx.plugins).values() if t.event_type]
    if mark is None or not types:
        return
    # Straight from the event log into the set-aside list: one statement, no ids through Python.
    await _setting_aside(ctx.dialect, tuple(types)).count(ctx.session, keys=customer_ids, mark=mark)


_LAST_EVENT = Read(lambda _keys: select(func.max(Event.id)))
_SET_ASIDE: dict[tuple[str, tuple[str, ...]], Write] = {}


def _setting_aside(dialect: str, types: tuple[str, ...]) -> Write:
    """The events of a batch's customers since ``mark``, of the trigger ``types``, into the
    set-aside list (one compiled statement per dialect and set of types)."""
    found = _SET_ASIDE.get((dialect, types))
    if found is None:
        found = _SET_ASIDE[(dialect, types)] = Write(lambda keys: insert_ignoring_conflicts(
            dialect, HistoryEvent.__table__).from_select(["event_id"], select(Event.id).where(
                Event.id > bindparam("mark"), Event.type.in_([literal(t) for t in types]), keys(Event.customer_id))))
    return found


# -- The job ----------------------------------------------------------------------------------


async def run(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``journeys.run`` job: entries from new events and from today's dates, then one
    batch of due steps; a full batch queues the next run at once."""
    cfg = journeys_settings(ctx.settings)
    await enter_from_events(ctx, cfg)
    await enter_from_dates(ctx)
    await enter_from_segments(ctx)
    handled = await run_due_steps(ctx, cfg)
    if handled >= cfg.batch_size:
        now = ctx.now()
        await ctx.enqueue(RUN_JOB, {"continued": True}, dedupe_key=f"journeys:run:{now.isoformat()}:{handled}:"
                                                                      f"{await _last_entry(ctx)}")


async def _last_entry(ctx: ServiceContext) -> int:
    return int(await ctx.session.scalar(select(func.max(StepRun.id))) or 0)


async def enter_from_events(ctx: ServiceContext, cfg: JourneysSettings) -> int:
    """Entries for the event-log triggers and exits for resolved warnings, since the cursor."""
    now = ctx.now()
    journeys = await active_journeys(ctx)
    offered = catalog.triggers(ctx.plugins)
    by_type: dict[str, list[Journey]] = defaultdict(list)
    for journey in journeys:
        trigger = offered.get(journey.trigger)
        if trigger is not None and trigger.event_type:
            by_type[trigger.event_type].append(journey)
    resolving = [j.id for j in journeys if "warning_resolved" in (j.exits or [])]
    types = list(by_type) + (["churn.came_back"] if resolving else [])
    cursor = await ctx.session.get(Cursor, EVENTS_CURSOR, with_for_update=ctx.dialect == "postgresql")
    if cursor is None:
        cursor = Cursor(name=EVENTS_CURSOR, at=now)
        ctx.session.add(cursor)
        start = min([as_utc(j.active_since) for j in journeys] or [now])
    else:
        start = as_utc(cursor.at) - timedelta(minutes=cfg.event_lookback_minutes)
    cursor.at = max(as_utc(cursor.at), now)
    if not types:
        return 0
    entered, after = 0, 0
    while True:  # a page of events at a time, so a long pause costs no more memory than a page
        rows = (await ctx.session.execute(
            select(Event.id, Event.type, Event.customer_id, Event.data, Event.occurred_at)
            .where(Event.type.in_(types), Event.occurred_at > start, Event.occurred_at <= now, Event.id > after,
                   Event.customer_id.is_not(None), ~exists().where(HistoryEvent.event_id == Event.id))
            .order_by(Event.id).limit(_EVENT_PAGE))).all()
        if not rows:
            return entered
        after = rows[-1][0]
        for journey_type, waiting in by_type.items():
            for journey in waiting:
                trigger = offered[journey.trigger]
                candidates = [(customer_id, f"event:{event_id}", as_utc(at))
                              for event_id, kind, customer_id, data, at in rows
                              if kind == journey_type and event_id > journey.events_after
                              and (trigger.match is None or trigger.match(data or {}, journey.trigger_params or {}))]
                entered += await enter(ctx, journey, candidates)
        for _, kind, customer_id, _, at in rows:
            if kind == "churn.came_back":
                await ctx.session.execute(
                    update(Entry).where(Entry.status == ACTIVE, Entry.journey_id.in_(resolving),
                                        Entry.customer_id == customer_id, Entry.entered_at <= at)
                    .values(status="exited", exit_reason="warning_resolved", finished_at=now, due_at=None)
                    .execution_options(synchronize_session=False))


async def enter_from_dates(ctx: ServiceContext) -> int:
    """Each business day's date triggers, once per journey and day, up to today."""
    now = ctx.now()
    zone = ctx.settings.zone
    today = business_day(now, zone)
    offered = catalog.triggers(ctx.plugins)
    entered = 0
    for journey in await active_journeys(ctx):
        trigger = offered.get(journey.trigger)
        if trigger is None or trigger.on_day is None:
            continue
        day = (journey.dates_through + timedelta(days=1) if journey.dates_through
               else business_day(journey.active_since, zone))
        looked = 0
        while day <= today and looked < MAX_DAYS_PER_RUN:
            start_of_day = as_utc(datetime.combine(day, datetime.min.time(), tzinfo=zone))
            at = max(start_of_day, as_utc(journey.active_since))
            found = await trigger.on_day(ctx.session, day, zone, journey.trigger_params or {})
            entered += await enter(ctx, journey, [(c, occurrence, at) for c, occurrence in found])
            journey.dates_through = day
            day += timedelta(days=1)
            looked += 1
    return entered


def segment_mark(journey_id: int) -> str:
    """The cursor row that says a journey's segment membership was first recorded."""
    return f"segment:{journey_id}"


async def enter_from_segments(ctx: ServiceContext) -> int:
    """Who entered each ``entered_segment`` journey's saved segment since the last run: in
    it now and not recorded as in it then. The first look only records who is in it."""
    journeys = [j for j in await active_journeys(ctx) if j.trigger == catalog.SEGMENT_TRIGGER]
    if not journeys or not ctx.plugins.is_enabled("churn"):
        return 0
    from tenure.plugins.churn.models import Score, Segment
    from tenure.plugins.churn.service import segment_condition
    from tenure.plugins.churn.settings import churn_settings

    cfg = churn_settings(ctx)
    now = ctx.now()
    entered = 0
    for journey in journeys:
        segment = await ctx.session.scalar(select(Segment).where(Segment.name == journey.trigger_params["segment"]))
        if segment is None:  # deleted since: nobody enters
            continue
        inside = select(Score.customer_id).where(segment_condition(segment.filter, cfg))
        recorded = select(SegmentMember.customer_id).where(SegmentMember.journey_id == journey.id)
        await ctx.session.execute(delete(SegmentMember).where(
            SegmentMember.journey_id == journey.id, SegmentMember.customer_id.not_in(inside)))
        joined = sorted(await ctx.session.scalars(inside.where(Score.customer_id.not_in(recorded))))
        if joined:
            await ctx.session.execute(insert_ignoring_conflicts(ctx.dialect, SegmentMember.__table__),
                                      [{"journey_id": journey.id, "customer_id": c} for c in joined])
        if await ctx.session.get(Cursor, segment_mark(journey.id)) is None:
            ctx.session.add(Cursor(name=segment_mark(journey.id), at=now))
            continue
        entered += await enter(ctx, journey, [(c, f"segment:{now.isoformat()}", now) for c in joined])
    return entered


async def log_position(ctx: ServiceContext) -> int:
    """The event log's last id: a journey activated now counts the events after it."""
    await ctx.session.flush()
    return int(await ctx.session.scalar(select(func.max(Event.id))) or 0)


async def forget_segment(ctx: ServiceContext, journey_id: int) -> None:
    """A resumed or re-pointed journey records its segment afresh (a pause starts nothing)."""
    await ctx.session.execute(delete(SegmentMember).where(SegmentMember.journey_id == journey_id))
    await ctx.session.execute(delete(Cursor).where(Cursor.name == segment_mark(journey_id)))


async def run_due_steps(ctx: ServiceContext, cfg: JourneysSettings) -> int:
    """One batch of entries whose step is due: exits first, then each step's action for
    everyone at it, then each entry on to its next step. Returns how many were handled."""
    now = ctx.now()
    pick = (select(Entry).join(Journey, Journey.id == Entry.journey_id)
            .where(Entry.status == ACTIVE, Entry.due_at <= now, Journey.status == ACTIVE)
            .order_by(Entry.due_at, Entry.id).limit(cfg.batch_size))
    if ctx.dialect == "postgresql":
        pick = pick.with_for_update(of=Entry, skip_locked=True)
    entries = list(await ctx.session.scalars(pick.execution_options(populate_existing=True)))
    if not entries:
        return 0
    journeys = {j.id: j for j in await ctx.session.scalars(
        select(Journey).where(Journey.id.in_({e.journey_id for e in entries})))}
    remaining = await _exit_before_step(ctx, entries, journeys)
    groups: dict[tuple[int, int], list[Entry]] = defaultdict(list)
    for entry in remaining:
        groups[entry.journey_id, entry.next_step].append(entry)
    offered = catalog.actions(ctx.plugins)
    late_before = now - timedelta(hours=cfg.late_after_hours)
    told: list[Publication] = []
    for (journey_id, position), group in groups.items():
        journey = journeys[journey_id]
        if position >= len(journey.steps):  # the journey was edited to fewer steps
            _finish(group, now)
            continue
        step = journey.steps[position]
        action = offered.get(step["action"])
        reasons: dict[int, str] = {}
        for entry in group:
            if as_utc(entry.due_at) < late_before:  # type: ignore[arg-type]
                reasons[entry.id] = (f"came due {entry.due_at:%Y-%m-%d %H:%M} UTC, more than "
                                     f"{cfg.late_after_hours} hours ago (journey paused or jobs not running)")
            elif action is None:
                reasons[entry.id] = f"the action {step['action']} is not offered (is its plugin off?)"
        claimed = await _claim(ctx, group, position, reasons, now)
        targets = [StepTarget(entry_id=e.id, customer_id=e.customer_id, journey_id=journey.id,
                              journey_name=journey.name, step=position, key=f"journeys:{e.id}:{position}")
                   for e in group if e.id in claimed and e.id not in reasons]
        if targets and action is not None:
            skipped = await action.run(ctx, targets, step.get("params") or {})
            if skipped:
                await ctx.session.execute(update(StepRun), [
                    {"id": claimed[entry_id], "status": "skipped", "detail": reason[:300]}
                    for entry_id, reason in skipped.items() if entry_id in claimed])
                reasons.update(skipped)
        for entry in group:
            if entry.id in claimed:
                what = f"skipped: {reasons[entry.id]}" if entry.id in reasons else "done"
                told.append(Publication(
                    "journeys.step", "journeys", entry.customer_id,
                    f"{journey.name}: step {position + 1} ({step['action']}) {what}"[:500],
                    {"customerId": entry.customer_id, "journeyId": journey.id, "step": position + 1,
                     "action": step["action"], "status": "skipped" if entry.id in reasons else "done"},
                    timeline=True))
        _advance(journey, group, now, ctx.settings.zone)
    await ctx.session.flush()
    await publish_many(ctx, told)
    return len(entries)


async def _claim(ctx: ServiceContext, group: list[Entry], position: int, reasons: dict[int, str],
                 now: datetime) -> dict[int, int]:
    """The step's rows, one per entry; those already there (a run before) are not claimed
    again. Returns entry id -> step-run id for the rows written now."""
    table = StepRun.__table__
    rows = [{"entry_id": e.id, "step": position, "status": "skipped" if e.id in reasons else "done",
             "detail": reasons.get(e.id, "")[:300], "ran_at": now} for e in group]
    stmt = insert_ignoring_conflicts(ctx.dialect, table).returning(table.c.entry_id, table.c.id)
    return dict((await ctx.session.execute(stmt, rows)).all())


def _finish(group: list[Entry], now: datetime) -> None:
    for entry in group:
        entry.status, entry.finished_at, entry.due_at = "completed", now, None


def _advance(journey: Journey, group: list[Entry], now: datetime, zone: Any) -> None:
    following = journey.steps[group[0].next_step + 1] if group[0].next_step + 1 < len(journey.steps) else None
    if following is None:
        _finish(group, now)
        return
    wait = step_wait(following)
    for entry in group:
        entry.next_step += 1
        entry.due_at = due_after(as_utc(entry.due_at), wait, zone)  # type: ignore[arg-type]


async def _exit_before_step(ctx: ServiceContext, entries: list[Entry], journeys: dict[int, Journey]) -> list[Entry]:
    """Entries whose exit came true (an order, a resolved warning) leave before their step,
    even if the moment itself was missed (the journey was paused, say)."""
    now = ctx.now()
    gone: dict[int, str] = {}
    ordered = [e for e in entries if "ordered" in (journeys[e.journey_id].exits or [])]
    if ordered:
        latest = dict((await ctx.session.execute(
            select(Order.customer_id, func.max(Order.created_at))
            .where(Order.customer_id.in_({e.customer_id for e in ordered}), Order.status != "cancelled")
            .group_by(Order.customer_id))).all())
        for e in ordered:
            last = latest.get(e.customer_id)
            if last is not None and as_utc(last) > as_utc(e.entered_at):
                gone[e.id] = "ordered"
    resolving = [e for e in entries if "warning_resolved" in (journeys[e.journey_id].exits or []) and e.id not in gone]
    if resolving and ctx.plugins.is_enabled("churn"):
        from tenure.plugins.churn.models import Warning

        resolved = dict((await ctx.session.execute(
            select(Warning.customer_id, func.max(Warning.resolved_at))
            .where(Warning.customer_id.in_({e.customer_id for e in resolving}), Warning.status == "resolved")
            .group_by(Warning.customer_id))).all())
        for e in resolving:
            at = resolved.get(e.customer_id)
            if at is not None and as_utc(at) > as_utc(e.entered_at):
                gone[e.id] = "warning_resolved"
    for e in entries:
        if e.id in gone:
            e.status, e.exit_reason, e.finished_at, e.due_at = "exited", gone[e.id], now, None
    return [e for e in entries if e.id not in gone]


async def on_merge(ctx: ServiceContext, event: Any) -> None:
    """The survivor takes the merged customer's entries; where both entered a journey for
    the same occurrence, the survivor's entry stays and the other goes."""
    survivor, merged = event.survivor.id, event.merged_id
    both = select(Entry.journey_id, Entry.occurrence).where(Entry.customer_id == survivor)
    own = set((await ctx.session.execute(both)).all())
    rows = (await ctx.session.execute(select(Entry.id, Entry.journey_id, Entry.occurrence)
                                      .where(Entry.customer_id == merged))).all()
    drop = [i for i, journey_id, occurrence in rows if (journey_id, occurrence) in own]
    if drop:
        await ctx.session.execute(delete(Entry).where(Entry.id.in_(drop)))
    await ctx.session.execute(update(Entry).where(Entry.customer_id == merged).values(customer_id=survivor)
                              .execution_options(synchronize_session=False))
