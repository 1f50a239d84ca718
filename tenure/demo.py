"""``tenure demo``: a realistic data set so that every screen and report has something to show.

A few thousand customers of a small retail business over two years: identities, tags and
owners, orders with a seasonal rhythm (a busy November and December), some customers who
stop buying, visits, support tickets and complaints, refunds, and follow-up tasks.

Everything goes through the core services, with the clock set to the moment each thing
happened, so the enabled plugins' handlers (points earned, tiers reached ...) fire exactly as
they would have in real life. Each plugin adds its own part through the ``tenure_demo`` hook
(``plugins/<name>/demo.py``: tiers, surveys, subscriptions, the periodic jobs at the end), so
the demo names no plugin. Customer ``i`` is made from
its own seeded random stream, so the same seed always gives the same people, and a customer
already loaded (known by its ``shop`` identity) is skipped: running the demo twice adds
nothing the second time.

On a SQLite file, :func:`demo_database` runs the statements on the event loop's own thread:
nothing else runs while the demo loads, and it spares each of the many small statements a
hand-over to aiosqlite's worker thread and back.
"""

from __future__ import annotations

import contextlib
import math
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy import func, make_url, select, update

from tenure.core import clock
from tenure.core.context import ServiceContext
from tenure.core.contributions import DemoCustomer, DemoData, DemoRun, DemoStep
from tenure.core.db import Database, is_sqlite
from tenure.core.models import CustomerIdentity, OutboxEntry, OutboxStatus, StaffUser
from tenure.core.plugins import PluginManager
from tenure.core.services import customers as customer_service
from tenure.core.services import interactions as interaction_service
from tenure.core.services import orders as order_service
from tenure.core.services import tasks as task_service
from tenure.core.settings import Settings

IDENTITY_KIND = "shop"
YEARS = 2
PROGRESS_EVERY = 50

FIRST_NAMES = (
    "Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia", "Mateo", "Olivia", "Leo", "Chloe", "Hugo", "Zoe",
    "Ethan", "Lina", "Omar", "Nora", "Ivan", "Aiko", "Ravi", "Priya", "Kenji", "Ana", "Diego", "Sara",
    "Tomas", "Elena", "Yusuf", "Maya", "Felix", "Ines", "Arjun", "Hana", "Marco", "Julia", "Samir", "Clara",
    "Jonas", "Amara", "Theo", "Layla", "Oscar", "Freya", "Rafael", "Mei", "Daniel", "Lea", "Kofi", "Alice",
    "Nils",
)
LAST_NAMES = (
    "Garcia", "Smith", "Muller", "Rossi", "Dubois", "Silva", "Kim", "Tanaka", "Novak", "Jensen", "Cohen",
    "Patel", "Okafor", "Haddad", "Larsen", "Moreau", "Costa", "Weber", "Ivanova", "Santos", "Brown", "Nguyen",
    "Schmidt", "Romano", "Lopez", "Fischer", "Khan", "Sato", "Berg", "Martin",
)
TAGS = ("newsletter", "vip", "b2b", "gift-buyer", "student", "eco", "wholesale", "events")
CHANNELS = (("shop", 0.55), ("pos", 0.30), ("app", 0.10), ("referral", 0.05))
STAFF = (
    ("Ana Lopez", "ana.lopez@demo.tenure.dev"),
    ("Ben Okafor", "ben.okafor@demo.tenure.dev"),
    ("Chen Wei", "chen.wei@demo.tenure.dev"),
    ("Dora Novak", "dora.novak@demo.tenure.dev"),
)
# (sku, name, category, unit price in minor units)
CATALOG = (
    ("COF-1KG", "Espresso beans 1 kg", "coffee", 2490),
    ("COF-250", "Filter coffee 250 g", "coffee", 890),
    ("TEA-GRN", "Green tea tin", "tea", 1250),
    ("TEA-CHA", "Masala chai", "tea", 990),
    ("MUG-STN", "Stoneware mug", "homeware", 1800),
    ("GRD-HND", "Hand grinder", "equipment", 6900),
    ("KET-GSN", "Gooseneck kettle", "equipment", 5400),
    ("FLT-100", "Paper filters x100", "accessories", 490),
    ("CHO-DRK", "Dark chocolate bar", "snacks", 390),
    ("BIS-ALM", "Almond biscotti", "snacks", 650),
    ("GFT-BOX", "Gift box", "gifts", 3900),
    ("CLS-BRW", "Brewing class", "events", 4500),
)
# A retail year: quiet January, a summer bump, a busy November and December.
SEASON = (0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.0, 0.95, 1.05, 1.45, 1.9)
# (share of customers, orders a month, interactions per order)
PROFILES = {
    "loyal": (0.18, 0.45, 0.4),
    "regular": (0.42, 0.16, 0.3),
    "occasional": (0.25, 0.06, 0.3),
    "churner": (0.15, 0.25, 0.5),
}


@dataclass
class Step:
    at: datetime
    kind: str  # order, refund, cancel, interaction, task
    data: dict[str, Any]


@dataclass
class CustomerPlan:
    key: str
    signup: datetime
    profile: str
    data: customer_service.CustomerData
    owner_index: int | None
    steps: list[Step] = field(default_factory=list)
    #: When a churner stopped buying.
    stopped: datetime | None = None
    #: The plugins' own steps (surveys, subscriptions), by plugin.
    extras: list[tuple[str, DemoStep]] = field(default_factory=list)


@dataclass
class DemoSummary:
    customers_created: int = 0
    customers_skipped: int = 0
    staff_users: int = 0
    orders: int = 0
    refunds: int = 0
    cancellations: int = 0
    interactions: int = 0
    tasks: int = 0
    jobs_queued: int = 0
    seconds: float = 0.0
    plugins: list[str] = field(default_factory=list)
    #: Each plugin's figures, and its lines for the summary.
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    plugin_lines: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"customers: {self.customers_created} created, {self.customers_skipped} already there",
            f"orders: {self.orders} ({self.refunds} refunds, {self.cancellations} cancellations)",
            f"interactions: {self.interactions}; tasks: {self.tasks}; staff users: {self.staff_users}",
            f"plugins on: {', '.join(self.plugins) or 'none'}",
        ]
        out.extend(self.plugin_lines)
        out.append(f"took {self.seconds:.1f} s")
        if self.jobs_queued:
            out.append(f"{self.jobs_queued} background jobs queued: `tenure serve` or `tenure jobs run` runs them")
        return out


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll, total = rng.random(), 0.0
    for value, weight in weighted:
        total += weight
        if roll < total:
            return value
    return weighted[-1][0]


def _moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A time between ``start`` and ``end``, during opening hours, whole seconds."""
    span = max((end - start).total_seconds(), 1.0)
    at = start + timedelta(seconds=rng.random() * span)
    at = at.replace(hour=rng.randint(8, 20), minute=rng.randint(0, 59), second=rng.randint(0, 59), microsecond=0)
    return min(max(at, start), end)


def plan_customer(seed: int, index: int, now: datetime, parts: dict[str, DemoData] | None = None) -> CustomerPlan:
    """Customer ``index``: who they are and everything they did, from their own random stream."""
    rng = random.Random(f"{seed}:{index}")
    key = f"S{index:06d}"
    start = now - timedelta(days=365 * YEARS)
    # The business grows: more sign-ups in the second year than the first.
    signup = start + timedelta(days=(365 * YEARS - 14) * math.sqrt(rng.random()))
    signup = signup.replace(microsecond=0)
    profile = _pick(rng, tuple((name, share) for name, (share, _, _) in PROFILES.items()))
    first, last = _names(seed, index)
    # A few people signed up twice (web shop and till) with one email: duplicate candidates.
    email_index = index - 1 if index % 97 == 1 and index > 1 else index
    email_first, email_last = _names(seed, email_index)
    emails = [f"{email_first}.{email_last}{email_index}@example.com".lower()]
    phones = [f"+1555{rng.randint(0, 9_999_999):07d}"] if rng.random() < 0.6 else []
    identities = [(IDENTITY_KIND, key)]
    if rng.random() < 0.4:
        identities.append(("pos", f"P{index:07d}"))
    tags = sorted({rng.choice(TAGS) for _ in range(rng.choice((0, 1, 1, 2, 3)))})
    if profile == "loyal" and rng.random() < 0.5:
        tags = sorted({*tags, "vip"})
    owner_index = rng.randrange(len(STAFF)) if rng.random() < 0.7 else None
    birthday = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)) if rng.random() < 0.7 else None
    data = customer_service.CustomerData(
        name=f"{first} {last}", emails=emails, phones=phones, identities=identities, tags=tags,
        source_channel=_pick(rng, CHANNELS), birthday=birthday, locale=rng.choice(("en", "en", "es", "fr", "de")),
        consent_email=rng.random() < 0.7, consent_sms=rng.random() < 0.3, consent_push=rng.random() < 0.4,
    )
    plan = CustomerPlan(key=key, signup=signup, profile=profile, data=data, owner_index=owner_index)
    _plan_history(rng, plan, now)
    for name, part in (parts or {}).items():
        if part.plan is not None:
            # The plugin's own random stream: adding a plugin leaves the core history unchanged.
            customer = DemoCustomer(index=index, rng=random.Random(f"{seed}:{index}:{name}"), profile=profile,
                                    signup=signup, stopped=plan.stopped, now=now)
            plan.extras.extend((name, step) for step in part.plan(customer) if step.at < now)
    return plan


def _names(seed: int, index: int) -> tuple[str, str]:
    rng = random.Random(f"{seed}:{index}:name")
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def _plan_history(rng: random.Random, plan: CustomerPlan, now: datetime) -> None:
    _, monthly, touch = PROFILES[plan.profile]
    end = now - timedelta(minutes=5)
    if plan.profile == "churner":
        # They stopped buying somewhere between 4 and 12 months ago.
        end = max(plan.signup + timedelta(days=20), now - timedelta(days=rng.randint(120, 365)))
        plan.stopped = end
    steps: list[Step] = []
    month = plan.signup
    count = 0
    while month < end:
        upto = min(month + timedelta(days=30), end)
        season = SEASON[month.month - 1]
        for _ in range(_poisson(rng, monthly * season)):
            count += 1
            steps.append(_order(rng, plan.key, count, _moment(rng, month, upto), now))
        month = upto
    if count == 0 and plan.signup < end:
        count = 1
        steps.append(_order(rng, plan.key, 1, _moment(rng, plan.signup, end), now))
    orders = [s for s in steps if s.kind == "order"]
    for order in orders:
        if rng.random() < touch:
            kind = rng.choice(("visit", "visit", "login", "email_opened", "email_clicked"))
            steps.append(Step(max(order.at - timedelta(hours=rng.randint(1, 72)), plan.signup), "interaction",
                              {"kind": kind, "channel": "app" if kind == "login" else "web",
                               "summary": ""}))
    if orders and rng.random() < 0.12:
        opened = orders[rng.randrange(len(orders))].at + timedelta(days=rng.randint(1, 10))
        if opened < now:
            steps.append(Step(opened, "interaction", {"kind": "ticket_opened", "channel": "support",
                                                      "summary": "Question about a delivery"}))
            if opened + timedelta(days=2) < now:
                steps.append(Step(opened + timedelta(days=2), "interaction",
                                  {"kind": "ticket_resolved", "channel": "support", "summary": "Delivery found"}))
    if plan.profile == "churner" and orders and rng.random() < 0.5:
        complained = orders[-1].at + timedelta(days=rng.randint(1, 20))
        if complained < now:
            steps.append(Step(complained, "interaction", {"kind": "complaint", "channel": "support",
                                                          "summary": "Unhappy with a late order"}))
            steps.append(Step(complained + timedelta(minutes=5), "task", {
                "title": f"Call back after complaint ({plan.data.name})",
                "reason": "Complained about a late order, then stopped buying",
                "due_at": complained + timedelta(days=3), "source_key": f"complaint:{plan.key}",
                "done": rng.random() < 0.6,
            }))
    elif rng.random() < 0.02:
        at = _moment(rng, plan.signup, now - timedelta(minutes=10))
        steps.append(Step(at, "task", {"title": f"Welcome call for {plan.data.name}", "reason": "New VIP sign-up",
                                       "due_at": at + timedelta(days=7), "source_key": f"welcome:{plan.key}",
                                       "done": at < now - timedelta(days=10)}))
    plan.steps = sorted(steps, key=lambda s: s.at)


def _order(rng: random.Random, key: str, n: int, at: datetime, now: datetime) -> Step:
    lines = []
    for sku, name, category, price in rng.sample(CATALOG, rng.choice((1, 1, 2, 2, 3))):
        lines.append(order_service.LineData(sku=sku, name=name, category=category,
                                            quantity=rng.choice((1, 1, 1, 2, 3)), unit_price=price))
    data: dict[str, Any] = {"external_id": f"{key}-{n:03d}", "channel": "pos" if rng.random() < 0.3 else "shop",
                            "lines": lines}
    roll = rng.random()
    if roll < 0.01:
        data["cancel_at"] = at + timedelta(hours=rng.randint(1, 24))
    elif roll < 0.05:
        data["refund_at"] = at + timedelta(days=rng.randint(2, 20))
        data["refund_share"] = rng.choice((1.0, 1.0, 0.5, 0.3))
    return Step(at, "order", data)


def _expand(plan: CustomerPlan, now: datetime) -> list[Step]:
    """The plan's steps with each order's later cancellation or refund as steps of their own,
    and the plugins' extra steps."""
    steps = list(plan.steps) + [Step(e.at, "plugin", {"plugin": name, "step": e}) for name, e in plan.extras]
    for step in plan.steps:
        if step.kind != "order":
            continue
        for what in ("cancel", "refund"):
            at = step.data.get(f"{what}_at")
            if at is not None and at < now:
                steps.append(Step(at, what, {"external_id": step.data["external_id"],
                                             "channel": step.data["channel"],
                                             "share": step.data.get("refund_share", 1.0)}))
    return sorted(steps, key=lambda s: s.at)


async def _ensure_staff(db: Database, now: datetime) -> list[int]:
    ids = []
    async with db.transaction() as session:
        for name, email in STAFF:
            staff = await session.scalar(select(StaffUser).where(StaffUser.email == email))
            if staff is None:
                staff = StaffUser(name=name, email=email, active=True, created_at=now - timedelta(days=365 * YEARS))
                session.add(staff)
                await session.flush()
            ids.append(staff.id)
    return ids


async def _apply(ctx: ServiceContext, plan: CustomerPlan, staff: list[int], frozen: clock.FrozenClock,
                 now: datetime, summary: DemoSummary, parts: dict[str, DemoData], runs: dict[str, DemoRun]) -> None:
    frozen.set(plan.signup)
    plan.data.owner_id = staff[plan.owner_index] if plan.owner_index is not None else None
    customer = await customer_service.create_customer(ctx, plan.data)
    orders: dict[str, Any] = {}
    for step in _expand(plan, now):
        frozen.set(step.at)
        data = step.data
        if step.kind == "order":
            order, _ = await order_service.record_order(ctx, order_service.OrderData(
                customer_id=customer.id, channel=data["channel"], external_id=data["external_id"],
                currency=ctx.settings.currency, lines=data["lines"], placed_at=step.at))
            orders[data["external_id"]] = order
            summary.orders += 1
        elif step.kind == "cancel":
            await order_service.cancel_order(ctx, orders[data["external_id"]].id)
            summary.cancellations += 1
        elif step.kind == "refund":
            order = orders[data["external_id"]]
            amount = max(1, int(order.amount * data["share"])) if data["share"] < 1 else None
            await order_service.refund_order(ctx, order.id, amount, None)
            summary.refunds += 1
        elif step.kind == "interaction":
            await interaction_service.log_interaction(
                ctx, customer.id, data["kind"], data["channel"], step.at, data["summary"],
                {"demo": True})
            summary.interactions += 1
        elif step.kind == "task":
            task, created = await task_service.open_task(
                ctx, title=data["title"], customer_id=customer.id, reason=data["reason"],
                due_at=data["due_at"], source="demo", source_key=data["source_key"])
            if created and data["done"]:
                frozen.set(min(step.at + timedelta(days=2), now))
                await task_service.complete_task(ctx, task.id)
            summary.tasks += 1
        elif step.kind == "plugin":
            apply = parts[data["plugin"]].apply
            if apply is not None:
                await apply(ctx, customer.id, data["step"], runs[data["plugin"]])


async def load_demo(
    db: Database,
    settings: Settings,
    plugins: PluginManager,
    *,
    customers: int = 3000,
    seed: int = 7,
    batch: int = 200,
    progress: Callable[[int, int], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Load ``customers`` demo customers and their history into a migrated database, then
    run the plugins' periodic jobs once; ``note`` hears what is being done after the customers."""
    started = time.perf_counter()
    now = clock.now().replace(microsecond=0)
    summary = DemoSummary(plugins=[n for n in plugins.names() if n != "core"])
    parts = dict(plugins.demo_parts)
    staff = await _ensure_staff(db, now)
    summary.staff_users = len(staff)
    frozen = clock.FrozenClock(now - timedelta(days=365 * YEARS + 1))
    runs = {name: DemoRun(clock=frozen) for name in parts}

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[ServiceContext]:
        async with db.transaction() as session:
            yield ServiceContext(session, settings, plugins, actor="demo")

    try:
        with clock.use_clock(frozen):
            async with transaction() as ctx:
                for part in parts.values():
                    if part.setup is not None:
                        await part.setup(ctx)
            for first in range(1, customers + 1, batch):
                indexes = list(range(first, min(first + batch, customers + 1)))
                keys = {f"S{i:06d}": i for i in indexes}
                async with db.transaction() as session:
                    known = set(await session.scalars(select(CustomerIdentity.value).where(
                        CustomerIdentity.kind == IDENTITY_KIND, CustomerIdentity.value.in_(list(keys)))))
                    # The owners in the session's identity map (held, as it keeps only weak
                    # references): no lookup per customer.
                    _owners = list(await session.scalars(select(StaffUser)))
                    ctx = ServiceContext(session, settings, plugins, actor="demo")
                    for key, index in keys.items():
                        if key in known:
                            summary.customers_skipped += 1
                        else:
                            await _apply(ctx, plan_customer(seed, index, now, parts), staff, frozen, now, summary,
                                         parts, runs)
                            summary.customers_created += 1
                        if progress is not None and (index % PROGRESS_EVERY == 0 or index == customers):
                            progress(index, customers)
            frozen.set(now)
            if note is not None:
                note("running the plugins' periodic jobs once (points, renewals, churn rescore) ...")
            for name, part in parts.items():
                if part.finish is not None:
                    await part.finish(transaction, runs[name])
            summary.counts = {name: run.counts for name, run in runs.items()}
            summary.plugin_lines = [line for name, part in parts.items() if part.summary is not None
                                    for line in part.summary(runs[name].counts)]
    finally:
        summary.seconds = time.perf_counter() - started
    async with db.transaction() as session:
        # Work queued in the demo's past (messages, webhooks) is due from now on, not since
        # the day it was made up: it waits its turn for the first server to run it.
        await session.execute(update(OutboxEntry).where(
            OutboxEntry.status == OutboxStatus.PENDING, OutboxEntry.available_at < now).values(available_at=now))
    async with db.reader() as session:
        summary.jobs_queued = int(await session.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.status == OutboxStatus.PENDING)) or 0)
    return summary



class _InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call at once on the calling (event loop's)
    thread instead of queueing it for its worker thread: for a single loader with nothing
    else on the loop, the hand-over costs more than SQLite's work on most statements."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def demo_database(url: str) -> Database:
    """The database the demo loads into: on a SQLite file, one whose statements run inline
    (see :class:`_InlineConnection`); otherwise the usual one."""
    path = make_url(url).database
    if not is_sqlite(url) or not path or path == ":memory:" or not hasattr(aiosqlite.Connection, "_execute"):
        return Database(url)

    async def connect() -> aiosqlite.Connection:
        return await _InlineConnection(partial(sqlite3.connect, path, timeout=30, check_same_thread=False), 64)

    return Database(url, connect=connect)
