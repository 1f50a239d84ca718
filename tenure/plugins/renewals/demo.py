"""The subscriptions of ``tenure demo``: a yearly coffee club some customers join; some renew
by hand, some cancel, the rest renew on their own or lapse when the renewals job runs."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from tenure.core.context import ServiceContext
from tenure.core.contributions import DemoCustomer, DemoData, DemoRun, DemoStep, DemoTransaction
from tenure.plugins.renewals import service
from tenure.plugins.renewals.models import Plan, Subscription

PLAN_CODE = "coffee-club"
PRICE = 249_00
# Chance of joining the coffee club, by profile.
CLUB = {"loyal": 0.3, "regular": 0.12, "occasional": 0.05, "churner": 0.15}


def year_later(day: date) -> date:
    return day.replace(year=day.year + 1, day=min(day.day, 28))


async def setup(ctx: ServiceContext) -> None:
    if await ctx.session.scalar(select(Plan.id).where(Plan.code == PLAN_CODE)) is None:
        await service.create_plan(ctx, code=PLAN_CODE, name="Coffee club (yearly)", reminder_days=None)


def plan(customer: DemoCustomer) -> list[DemoStep]:
    rng, now, stopped = customer.rng, customer.now, customer.stopped
    if rng.random() >= CLUB[customer.profile]:
        return []
    joined = customer.signup + timedelta(days=rng.randint(1, 60))
    if joined >= now - timedelta(days=30):
        return []
    key = f"club-{customer.index}"
    auto = rng.random() < 0.35
    steps = [DemoStep(joined, "subscribe", {"key": key, "auto_renew": auto})]
    ends = year_later(joined.date())
    end_at = datetime(ends.year, ends.month, ends.day, 10, tzinfo=joined.tzinfo)
    if rng.random() < 0.08:
        steps.append(DemoStep(joined + timedelta(days=rng.randint(20, 200)), "cancel", {"key": key}))
    elif not auto and end_at < now and (stopped is None or end_at < stopped) and rng.random() < 0.5:
        steps.append(DemoStep(end_at - timedelta(days=rng.randint(1, 20)), "renew", {"key": key}))
    return [step for step in steps if step.at < now]


async def apply(ctx: ServiceContext, customer_id: int, step: DemoStep, run: DemoRun) -> None:
    key = step.data["key"]
    if step.kind == "subscribe":
        starts = ctx.now().date()
        subscription = await service.create_subscription(
            ctx, customer_id=customer_id, plan=PLAN_CODE, value=PRICE, starts_on=starts, ends_on=year_later(starts),
            auto_renew=step.data["auto_renew"], external_id=f"demo-{key}")
        run.memo[key] = subscription.id
        run.count("subscriptions")
    elif step.kind == "renew" and key in run.memo:
        await service.renew_subscription(ctx, run.memo[key])
        run.count("renewed")
    elif step.kind == "cancel" and key in run.memo:
        await service.cancel_subscription(ctx, run.memo[key], "Moved away")


async def finish(transaction: DemoTransaction, run: DemoRun) -> None:
    """The daily renewals job once: subscriptions past their end renew or lapse."""
    async with transaction() as ctx:
        await service.daily(ctx, {})
        run.counts["lapsed"] = int(await ctx.session.scalar(
            select(func.count()).select_from(Subscription).where(Subscription.status == "lapsed")) or 0)


def summary(counts: dict[str, int]) -> list[str]:
    return [f"subscriptions: {counts.get('subscriptions', 0)} ({counts.get('renewed', 0)} renewed by hand, "
            f"{counts.get('lapsed', 0)} lapsed)"]


DEMO = DemoData(setup=setup, plan=plan, apply=apply, finish=finish, summary=summary)
