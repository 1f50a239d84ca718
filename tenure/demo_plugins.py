"""What ``tenure demo`` adds for the retention plugins that are on, through their own services,
so that each dashboard chart has something to show.

- tiers: Member, Silver, Gold and Platinum, defined before the first order, so members
  move up as their orders come in (the plugin's handler does it);
- nps: a survey sent to a sample of customers now and then over the last year and answered
  by about half of them, the score leaning on how the customer feels about the shop
  (detractors get their follow-up task from the plugin's rule);
- renewals: a yearly coffee club some customers join; some renew, some let it lapse;
- loyalty and churn: at the end the periodic jobs run once as the scheduler would have
  (points released from their return window and expired, renewals closed and reminded, a
  full churn rescore), so balances, lapses and warnings are current.

Each customer's extra history comes from its own random stream (``seed:index:extras``), so
adding it left the core history of the same seed unchanged.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from tenure.core import clock
from tenure.core.context import ServiceContext
from tenure.core.db import Database
from tenure.core.models import OutboxEntry, OutboxStatus
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings

SURVEY_NAME = "How are we doing?"
SURVEY_QUESTION = "How likely are you to recommend us to a friend, from 0 to 10?"
PLAN_CODE = "coffee-club"
# (name, rank, min spend in minor units over the tier window, min orders, points %, discount %, perks)
TIERS = (
    ("Member", 0, None, None, 100, 0, ["Birthday treat"]),
    ("Silver", 10, 150_00, 6, 110, 0, ["Birthday treat", "Free shipping over 30"]),
    ("Gold", 20, 350_00, 12, 125, 5, ["Birthday treat", "Free shipping", "Early access to new beans"]),
    ("Platinum", 30, 700_00, None, 150, 10,
     ["Birthday treat", "Free shipping", "Early access to new beans", "A brewing class a year"]),
)
# Chances of promoter / passive (the rest: detractor) by the customer's profile.
MOOD = {"loyal": (0.65, 0.25), "regular": (0.45, 0.35), "occasional": (0.3, 0.4), "churner": (0.12, 0.28)}
COMMENTS = {
    "promoter": ("Great beans, friendly staff", "Always fresh", "Love the app and the points", ""),
    "passive": ("Good, a bit pricey", "Delivery could be faster", ""),
    "detractor": ("My order came late twice", "Prices went up", "Nobody answered my email", ""),
}
# Chance of joining the coffee club, by profile.
CLUB = {"loyal": 0.3, "regular": 0.12, "occasional": 0.05, "churner": 0.15}


@dataclass
class Extra:
    at: datetime
    kind: str  # survey, subscribe, renew, cancel_subscription
    data: dict[str, Any]


def plan_extras(seed: int, index: int, profile: str, signup: datetime, stopped: datetime | None,
                now: datetime) -> list[Extra]:
    """Customer ``index``'s surveys and subscriptions. ``stopped``: when a churner stopped buying."""
    rng = random.Random(f"{seed}:{index}:extras")
    out: list[Extra] = []
    month = now - timedelta(days=365)
    while month < now - timedelta(days=3):
        if month > signup and rng.random() < 0.05:
            asked = month + timedelta(days=rng.randint(0, 27), hours=rng.randint(0, 10))
            promoter, passive = MOOD[profile]
            if stopped is not None and asked > stopped:
                promoter, passive = promoter / 2, passive / 2
            roll = rng.random()
            mood = "promoter" if roll < promoter else "passive" if roll < promoter + passive else "detractor"
            score = {"promoter": rng.choice((9, 10)), "passive": rng.choice((7, 8)),
                     "detractor": rng.choice((2, 4, 5, 6, 6))}[mood]
            answered = asked + timedelta(hours=rng.randint(1, 60)) if rng.random() < 0.55 else None
            out.append(Extra(asked, "survey", {"score": score, "comment": rng.choice(COMMENTS[mood]),
                                               "answered_at": answered if answered and answered < now else None}))
        month += timedelta(days=30)
    if rng.random() < CLUB[profile]:
        joined = signup + timedelta(days=rng.randint(1, 60))
        if joined < now - timedelta(days=30):
            key = f"club-{index}"
            auto = rng.random() < 0.35
            out.append(Extra(joined, "subscribe", {"key": key, "auto_renew": auto}))
            ends = _year_later(joined.date())
            end_at = datetime(ends.year, ends.month, ends.day, 10, tzinfo=joined.tzinfo)
            if rng.random() < 0.08:
                out.append(Extra(joined + timedelta(days=rng.randint(20, 200)), "cancel_subscription", {"key": key}))
            elif not auto and end_at < now and (stopped is None or end_at < stopped) and rng.random() < 0.5:
                out.append(Extra(end_at - timedelta(days=rng.randint(1, 20)), "renew", {"key": key}))
    return [e for e in out if e.at < now]


def _year_later(day: date) -> date:
    return day.replace(year=day.year + 1, day=min(day.day, 28))


async def setup(ctx: ServiceContext) -> None:
    """Tier definitions, the survey and the plan, once (a second run finds them)."""
    plugins = ctx.plugins
    if plugins.is_enabled("tiers"):
        from tenure.plugins.tiers import service as tiers

        if not await tiers.active_tiers(ctx):
            for name, rank, spend, orders, points, discount, perks in TIERS:
                await tiers.create_tier(ctx, tiers.TierData(
                    name=name, rank=rank, min_spend=spend, min_orders=orders, points_multiplier=points,
                    discount_percent=discount, perks=list(perks)))
    if plugins.is_enabled("nps"):
        from tenure.plugins.nps import service as nps
        from tenure.plugins.nps.models import Survey

        if await ctx.session.scalar(select(Survey.id).where(Survey.name == SURVEY_NAME)) is None:
            await nps.create_survey(ctx, name=SURVEY_NAME, question=SURVEY_QUESTION, scale="nps", trigger="manual")
    if plugins.is_enabled("renewals"):
        from tenure.plugins.renewals import service as renewals
        from tenure.plugins.renewals.models import Plan

        if await ctx.session.scalar(select(Plan.id).where(Plan.code == PLAN_CODE)) is None:
            await renewals.create_plan(ctx, code=PLAN_CODE, name="Coffee club (yearly)", reminder_days=None)


@dataclass
class Tally:
    surveys_sent: int = 0
    answers: int = 0
    subscriptions: int = 0
    renewals: int = 0
    survey_id: int | None = None


async def apply(ctx: ServiceContext, customer_id: int, kind: str, data: dict[str, Any],
                subscriptions: dict[str, int], frozen: clock.FrozenClock, tally: Tally) -> None:
    """One extra step, at the clock's current time, if its plugin is on."""
    plugins = ctx.plugins
    if kind == "survey" and plugins.is_enabled("nps"):
        await _survey(ctx, customer_id, data, frozen, tally)
    elif kind == "subscribe" and plugins.is_enabled("renewals"):
        from tenure.plugins.renewals import service as renewals

        starts = ctx.now().date()
        subscription = await renewals.create_subscription(
            ctx, customer_id=customer_id, plan=PLAN_CODE, value=249_00, starts_on=starts, ends_on=_year_later(starts),
            auto_renew=data["auto_renew"], external_id=f"demo-{data['key']}")
        subscriptions[data["key"]] = subscription.id
        tally.subscriptions += 1
    elif kind == "renew" and data["key"] in subscriptions:
        from tenure.plugins.renewals import service as renewals

        await renewals.renew_subscription(ctx, subscriptions[data["key"]])
        tally.renewals += 1
    elif kind == "cancel_subscription" and data["key"] in subscriptions:
        from tenure.plugins.renewals import service as renewals

        await renewals.cancel_subscription(ctx, subscriptions[data["key"]], "Moved away")


async def _survey(ctx: ServiceContext, customer_id: int, data: dict[str, Any], frozen: clock.FrozenClock,
                  tally: Tally) -> None:
    """Staff send the survey to this customer; the due-surveys job sends it (or skips it:
    no consent, asked too recently); the customer answers through the link's token."""
    from tenure.plugins.nps import service as nps
    from tenure.plugins.nps.models import Invitation, Survey

    if tally.survey_id is None:
        tally.survey_id = await ctx.session.scalar(select(Survey.id).where(Survey.name == SURVEY_NAME))
        if tally.survey_id is None:
            return
    await nps.send_survey(ctx, tally.survey_id, customer_ids=[customer_id])
    await nps.send_due(ctx, {})
    await ctx.session.flush()
    invitation = await ctx.session.scalar(
        select(Invitation).where(Invitation.customer_id == customer_id, Invitation.status == "sent")
        .order_by(Invitation.id.desc()).limit(1))
    if invitation is None:
        return
    tally.surveys_sent += 1
    if data["answered_at"] is None:
        return
    frozen.set(data["answered_at"])
    token = nps.survey_token(ctx.settings.signing_key, invitation, nps.settings_of(ctx))
    await nps.submit_response(ctx, token=token, score=data["score"], comment=data["comment"])
    tally.answers += 1


Transaction = Callable[[], contextlib.AbstractAsyncContextManager[ServiceContext]]


async def finish(db: Database, settings: Settings, plugins: PluginManager) -> dict[str, int]:
    """The periodic jobs once, at the clock's time, as the scheduler would have run them."""

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[ServiceContext]:
        async with db.transaction() as session:
            yield ServiceContext(session, settings, plugins, actor="demo")

    found: dict[str, int] = {}
    if plugins.is_enabled("loyalty"):
        from tenure.plugins.loyalty import jobs as loyalty

        async with transaction() as ctx:
            await loyalty.release_pending(ctx, {})
            await loyalty.expire_points(ctx, {})
    if plugins.is_enabled("renewals"):
        from tenure.plugins.renewals import service as renewals
        from tenure.plugins.renewals.models import Subscription

        async with transaction() as ctx:
            await renewals.daily(ctx, {})
            found["lapsed"] = int(await ctx.session.scalar(
                select(func.count()).select_from(Subscription).where(Subscription.status == "lapsed")) or 0)
    if plugins.is_enabled("churn"):
        from tenure.plugins.churn import service as churn

        async with transaction() as ctx:
            # Each order and interaction of the load queued a rescore of its customer; the
            # full rescore below covers them all, so they are closed as done, not run again.
            closed = await ctx.session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.job == "churn.rescore_marked", OutboxEntry.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.DONE, completed_at=ctx.now(),
                        last_error="covered by the demo's full rescore")
                .execution_options(synchronize_session=False))
            found["rescores_covered"] = int(closed.rowcount or 0)  # type: ignore[attr-defined]
        counts = await churn.rescore_all(transaction)
        found["open_warnings"] = counts["open_warnings"]
    return found
