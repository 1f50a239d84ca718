"""Churn warnings: rescoring, follow-up tasks, win-back, resolution, segments and the report.

A warning is an *episode*: it opens when a customer's health score falls below the
threshold, gets one follow-up task for the owner (source ``churn``, key
``<customer>:<warning>``), and resolves itself when the customer orders again (they "came
back") or when a rescore finds the score recovered.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Integer, and_, bindparam, func, or_, select, text, update

from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.db import UTCDateTime
from tenure.core.errors import NotFound, UserError
from tenure.core.events import (
    CustomersMerged,
    InteractionLogged,
    OrderCancelled,
    OrderRecorded,
    OrderRefunded,
    Publication,
    publish_many,
)
from tenure.core.reads import Read, Write
from tenure.core.services.tasks import NewTask, open_tasks
from tenure.plugins.churn import scoring
from tenure.plugins.churn.models import Score, Segment, Warning
from tenure.plugins.churn.rules import EffectiveRule, effective_rules
from tenure.plugins.churn.settings import ChurnSettings, churn_settings
from tenure.plugins.churn.statements import Scope

SEGMENTS = ("champions", "loyal", "potential", "at_risk", "hibernating", "lost")
STAGES = ("new", "active", "silent", "high_risk", "lost")
LEVELS = ("medium", "high")
Progress = Callable[[int, int], None]


def reasons(score: Score, now: datetime, rules: Mapping[str, EffectiveRule]) -> list[str]:
    """What lowered the score, in words a person reads on the customer's page (days counted
    to ``now``), the churn plugin's own reasons first, then the plugins' signals by name."""
    fired, out = score.fired, []

    def fires(kind: str) -> bool:
        rule = rules.get(kind)
        return rule is not None and bool(fired & (1 << rule.bit))

    if fires("no_order") or fires("long_gap"):
        text = f"no order for {score.days_since_order(now)} days"
        if score.usual_gap_days is not None:
            text += f", usual gap {score.usual_gap_days}"
        out.append(text)
    if fires("interactions_falling"):
        out.append(f"interactions fell from {score.interactions_previous} to {score.interactions_recent} "
                   "against the previous period")
    if fires("complaints"):
        parts = []
        if score.complaints:
            parts.append(f"{score.complaints} complaint{'s' * (score.complaints != 1)}")
        if score.cancellations:
            parts.append(f"{score.cancellations} cancelled order{'s' * (score.cancellations != 1)}")
        out.append(" and ".join(parts) + " recently")
    for kind, rule in rules.items():
        if rule.signal is not None and fires(kind):
            out.append(rule.signal.said(rule.threshold))
    return out


def level_of(health: int, cfg: ChurnSettings) -> str:
    if health < cfg.high_risk_below:
        return "high"
    return "medium" if health < cfg.threshold else "low"


async def rescore(ctx: ServiceContext, customer_ids: list[int]) -> None:
    """Rescore a few customers (after an event) on the scale of the last full rescore."""
    ids = tuple(sorted(set(customer_ids)))
    if not ids:
        return
    cfg = churn_settings(ctx)
    bounds = await scoring.stored_quintiles(ctx)
    await scoring.score_batch(ctx, Scope(ids=ids), cfg, bounds=bounds)
    await follow_up(ctx, cfg)


Transaction = Callable[[], contextlib.AbstractAsyncContextManager[ServiceContext]]
#: The full rescore's statements, each a step of the progress bar.
STEPS = ("figures", "quintiles", "scores", "warnings")


async def rescore_all(transaction: Transaction, progress: Progress | None = None, *,
                      follow_up_now: bool = True, recount: bool = False) -> dict[str, Any]:
    """Rescore every customer in one ``transaction()`` (a job passes one that reuses its
    own): an interrupted rescore leaves the previous scores whole. The figures move on from
    the last run's unless ``recount`` (or the settings they stand on changed): see :mod:`tenure.plugins.churn.scoring`.
    Then, unless ``follow_up_now`` is false (the ``churn.follow_up`` job does it then),
    follow up the new warnings a batch per transaction. ``progress(done, total)`` is told
    after each step. Returns counts of what it did, how (``mode``) and how long scoring and
    following up took (milliseconds)."""
    done = 0
    total = len(STEPS)

    def step(_: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    started = time.perf_counter()
    async with transaction() as ctx:
        cfg = churn_settings(ctx)
        opened_before = await _count(ctx, Warning.status == "open")
        rescored = await scoring.score_everyone(ctx, cfg, await effective_rules(ctx), step, recount=recount)
    scored_in = time.perf_counter() - started
    followed = 0
    if follow_up_now:
        async with transaction() as ctx:
            pending = await _count(ctx, Warning.status == "open", Warning.followed_up.is_(False))
        total += -(-pending // cfg.follow_up_batch)
        while True:
            async with transaction() as ctx:
                n = await follow_up(ctx, cfg)
            followed += n
            if n < cfg.follow_up_batch:
                break
            step("follow-up")
    if progress:
        progress(total, total)
    async with transaction() as ctx:
        opened = await _count(ctx, Warning.status == "open")
    return {"scored": rescored.scored, "recounted": rescored.recounted, "rewritten": rescored.rewritten,
            "mode": rescored.mode, "open_warnings": opened, "new_warnings": followed,
            "open_before": opened_before, "score_ms": round(scored_in * 1000),
            "follow_up_ms": round((time.perf_counter() - started - scored_in) * 1000)}


async def first_pending_warning(ctx: ServiceContext) -> int | None:
    """The oldest open warning not yet followed up, if any."""
    found: int | None = await ctx.session.scalar(
        select(func.min(Warning.id)).where(Warning.status == "open", Warning.followed_up.is_(False)))
    return found


async def _count(ctx: ServiceContext, *where: Any) -> int:
    return int(await ctx.session.scalar(select(func.count()).select_from(Warning).where(*where)) or 0)


async def follow_up(ctx: ServiceContext, cfg: ChurnSettings | None = None, limit: int | None = None) -> int:
    """For a batch of warnings not yet followed up (``limit``, default the setting): their
    reasons, a task for the owner (one open task per warning: its cause), a timeline entry,
    and the win-back hook when switched on. Set-based: a few statements per batch. Returns
    how many. On PostgreSQL the batch's warnings are locked (others skipped), so two runs at
    once never follow up the same warning."""
    cfg = cfg or churn_settings(ctx)
    pick = (select(Warning.id, Warning.customer_id, Warning.level, Score)
            .join(Score, Score.customer_id == Warning.customer_id)
            .where(Warning.status == "open", Warning.followed_up.is_(False))
            .order_by(Warning.id).limit(limit or cfg.follow_up_batch))
    if ctx.dialect == "postgresql":
        pick = pick.with_for_update(of=Warning, skip_locked=True)
    rows = (await ctx.session.execute(pick)).all()
    if not rows:
        return 0
    rules = await effective_rules(ctx)
    said = {warning_id: reasons(score, ctx.now(), rules) for warning_id, _, _, score in rows}
    summary = {warning_id: "; ".join(said[warning_id]) or f"health score {score.health}"
               for warning_id, _, _, score in rows}
    tasks = await open_tasks(ctx, [NewTask(title=f"Churn risk: health {score.health}/100", customer_id=customer_id,
                                           source_key=f"{customer_id}:{warning_id}", reason=summary[warning_id])
                                   for warning_id, customer_id, _, score in rows], source="churn")
    await ctx.session.execute(update(Warning), [
        {"id": warning_id, "reasons": said[warning_id], "followed_up": True,
         "task_id": tasks[f"{customer_id}:{warning_id}"]} for warning_id, customer_id, _, _ in rows])
    await publish_many(ctx, [
        Publication("churn.warned", "churn", customer_id, f"churn risk {level}: {summary[warning_id]}",
                    {"customerId": customer_id, "score": score.health, "level": level, "reasons": said[warning_id]},
                    timeline=True)
        for warning_id, customer_id, level, score in rows])
    if cfg.win_back:
        for warning_id, customer_id, _, score in rows:
            for answer in ctx.plugins.hook.churn_win_back(ctx=ctx, customer_id=customer_id, score=score.health,
                                                          reasons=said[warning_id]):
                if answer is not None:
                    await answer
    return len(rows)


async def on_orders_recorded(ctx: ServiceContext, events: list[OrderRecorded]) -> None:
    """The customers came back: their open warnings resolve at once (one statement for the
    batch); their rescore follows."""
    placed = {e.order.customer_id: e.order.placed_at for e in events}  # one order per customer in a batch
    came_back = {"status": "resolved", "resolved_at": ctx.now(), "came_back": True}
    if len(placed) == 1:
        ((customer_id, placed_at),) = placed.items()
        resolved = await _CAME_BACK.all(ctx.session, customer=customer_id, placed_at=placed_at,
                                        resolved_at=came_back["resolved_at"])
    else:
        open_warnings = await _OPEN_WARNINGS.all(ctx.session, list(placed))
        ending = {i: customer_id for i, customer_id, since in open_warnings if as_utc(since) <= placed[customer_id]}
        if ending:
            await ctx.session.execute(update(Warning).where(Warning.id.in_(list(ending))).values(came_back)
                                      .execution_options(synchronize_session=False))
        resolved = list(ending.values())
    if resolved:
        await publish_many(ctx, [
            Publication("churn.came_back", "churn", customer_id, "came back after a churn warning",
                        {"customerId": customer_id}, timeline=True) for customer_id in resolved])
    await mark_for_rescore(ctx, list(placed))


async def on_orders_changed(ctx: ServiceContext, events: list[OrderCancelled] | list[OrderRefunded]) -> None:
    """A cancellation or refund lowers the customer's spend in the window (the monetary score)."""
    await mark_for_rescore(ctx, [e.order.customer_id for e in events])


async def on_interactions(ctx: ServiceContext, events: list[InteractionLogged]) -> None:
    await mark_for_rescore(ctx, [e.interaction.customer_id for e in events])


async def mark_for_rescore(ctx: ServiceContext, customer_ids: list[int]) -> None:
    """Mark the customers (one statement for the batch) and make sure a rescore of the
    marked customers is queued: one job per ``rescore_delay_seconds`` window, however many
    orders arrive in it, so a burst of orders for one customer costs one rescore. Should
    that job be late or lost, the next full rescore counts the marked customers afresh."""
    if not customer_ids:
        return
    now = ctx.now()
    ids = sorted(set(customer_ids))
    if ctx.dialect == "postgresql":  # one statement over an array, not a row each
        await _MARK_MANY.count(ctx.session, ids=ids, at=now)
    else:
        await _MARK_ONE.many(ctx.session, [{"c": customer_id, "at": now} for customer_id in ids])
    delay = churn_settings(ctx).rescore_delay_seconds
    if delay <= 0:
        await ctx.enqueue("churn.rescore_marked", {"since": now.isoformat()})
        return
    window = int(now.timestamp()) // delay
    since = datetime.fromtimestamp(window * delay, UTC)
    await ctx.enqueue("churn.rescore_marked", {"since": since.isoformat()}, dedupe_key=f"churn:rescore_marked:{window}",
                      delay=since + timedelta(seconds=delay) - now)


_UPSERT = " ON CONFLICT (customer_id) DO UPDATE SET marked_at = excluded.marked_at"
_MARK_ONE = Write(lambda _keys: text(
    "INSERT INTO churn_stale (customer_id, marked_at) VALUES (:c, :at)" + _UPSERT).bindparams(
    bindparam("at", type_=UTCDateTime())))
_MARK_MANY = Write(lambda _keys: text(
    "INSERT INTO churn_stale (customer_id, marked_at) SELECT unnest(:ids), :at" + _UPSERT).bindparams(
    bindparam("ids", type_=ARRAY(BigInteger())), bindparam("at", type_=UTCDateTime())))
#: The open warnings of a batch's customers.
_OPEN_WARNINGS = Read(lambda keys: select(Warning.id, Warning.customer_id, Warning.since).where(
    keys(Warning.customer_id), Warning.status == "open"))
#: A customer who ordered again: their open warnings raised before the order resolve.
_CAME_BACK = Write(lambda _keys: update(Warning).where(
    Warning.customer_id == bindparam("customer"), Warning.status == "open",
    Warning.since <= bindparam("placed_at", type_=UTCDateTime()))
    .values(status="resolved", resolved_at=bindparam("resolved_at", type_=UTCDateTime()), came_back=True)
    .returning(Warning.customer_id))


async def rescore_marked(ctx: ServiceContext, since: datetime) -> int:
    """Rescore the customers marked since ``since`` (a job's window), set-based in batches;
    returns how many."""
    ids = [int(i) for i in await ctx.session.scalars(
        text("SELECT customer_id FROM churn_stale WHERE marked_at >= :since ORDER BY customer_id")
        .bindparams(bindparam("since", type_=UTCDateTime())), {"since": since})]
    for start in range(0, len(ids), 1000):
        await rescore(ctx, ids[start:start + 1000])
    return len(ids)


async def on_customers_merged(ctx: ServiceContext, event: CustomersMerged) -> None:
    """The merged customer's warnings move to the survivor (only one may stay open); the
    survivor is rescored from the joined history."""
    survivor, merged = event.survivor.id, event.merged_id
    survivor_open = await ctx.session.scalar(select(Warning.id).where(Warning.customer_id == survivor,
                                                                        Warning.status == "open"))
    if survivor_open is not None:
        await ctx.session.execute(update(Warning).where(Warning.customer_id == merged, Warning.status == "open")
                                  .values(status="resolved", resolved_at=ctx.now())
                                  .execution_options(synchronize_session=False))
    await ctx.session.execute(update(Warning).where(Warning.customer_id == merged).values(customer_id=survivor)
                              .execution_options(synchronize_session=False))
    merged_score = await ctx.session.get(Score, merged)
    if merged_score is not None:
        await ctx.session.delete(merged_score)
    await ctx.session.flush()
    await mark_for_rescore(ctx, [survivor])


# -- Saved segments -----------------------------------------------------------------------------

FILTER_KEYS = {"segments": SEGMENTS, "stages": STAGES, "levels": LEVELS}


def clean_filter(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, allowed in FILTER_KEYS.items():
        values = raw.get(key)
        if values:
            bad = [v for v in values if v not in allowed]
            if bad:
                raise UserError(f"unknown {key[:-1]} {bad[0]!r}; one of {', '.join(allowed)}", f"filter.{key}",
                                "invalid_value")
            out[key] = sorted(set(values))
    for key in ("minHealth", "maxHealth"):
        value = raw.get(key)
        if value is not None:
            if not 0 <= value <= 100:
                raise UserError("a health score from 0 to 100", f"filter.{key}", "invalid_value")
            out[key] = int(value)
    if not out:
        raise UserError("give at least one condition", "filter", "empty_filter")
    return out


def segment_condition(f: dict[str, Any], cfg: ChurnSettings) -> Any:
    """The customers a saved filter selects, as a condition on ``Score``."""
    parts: list[Any] = []
    if f.get("segments"):
        parts.append(Score.segment.in_(f["segments"]))
    if f.get("stages"):
        parts.append(Score.stage.in_(f["stages"]))
    if f.get("levels"):
        level: list[Any] = []
        if "high" in f["levels"]:
            level.append(Score.health < cfg.high_risk_below)
        if "medium" in f["levels"]:
            level.append(and_(Score.health >= cfg.high_risk_below, Score.health < cfg.threshold))
        parts.append(or_(*level))
    if f.get("minHealth") is not None:
        parts.append(Score.health >= f["minHealth"])
    if f.get("maxHealth") is not None:
        parts.append(Score.health <= f["maxHealth"])
    return and_(*parts)


async def save_segment(ctx: ServiceContext, name: str, raw_filter: dict[str, Any],
                       segment_id: int | None = None) -> Segment:
    from tenure.core import validation as v

    name = v.text(name, "name", max_length=100)
    cleaned = clean_filter(raw_filter)
    clash = await ctx.session.scalar(select(Segment).where(Segment.name == name))
    if clash is not None and clash.id != segment_id:
        raise UserError(f"a segment named {name!r} exists", "name", "duplicate")
    if segment_id is None:
        segment = Segment(name=name, filter=cleaned, created_at=ctx.now())
        ctx.session.add(segment)
    else:
        found = await ctx.session.get(Segment, segment_id)
        if found is None:
            raise NotFound("segment", segment_id, "id")
        segment = found
        segment.name, segment.filter = name, cleaned
    await ctx.session.flush()
    return segment


async def delete_segment(ctx: ServiceContext, segment_id: int) -> None:
    segment = await ctx.session.get(Segment, segment_id)
    if segment is None:
        raise NotFound("segment", segment_id, "id")
    await ctx.session.delete(segment)
    await ctx.session.flush()


# -- The report ---------------------------------------------------------------------------------


@dataclass
class Report:
    warned: int
    came_back: int
    recovered: int
    still_open: int
    by_level: dict[str, int]

    @property
    def came_back_rate(self) -> float | None:
        return round(100.0 * self.came_back / self.warned, 2) if self.warned else None


async def report(ctx: ServiceContext, start: datetime, end: datetime) -> Report:
    """Warnings raised from ``start`` to ``end``, and what became of them: one statement."""
    if end <= start:
        raise UserError("must be after from", "to", "invalid_range")
    came = func.sum(func.cast(Warning.came_back, Integer()))
    rows = (await ctx.session.execute(
        select(Warning.level, Warning.status, func.count(), came)
        .where(Warning.since >= start, Warning.since < end).group_by(Warning.level, Warning.status))).all()
    warned = back = recovered = still = 0
    levels: dict[str, int] = {}
    for level, status, n, came_back in rows:
        warned += n
        levels[level] = levels.get(level, 0) + n
        if status == "open":
            still += n
        else:
            back += int(came_back or 0)
            recovered += n - int(came_back or 0)
    return Report(warned, back, recovered, still, levels)


@contextlib.asynccontextmanager
async def same(ctx: ServiceContext) -> AsyncIterator[ServiceContext]:
    """A ``transaction()`` for :func:`rescore_all` that reuses one open transaction."""
    yield ctx
