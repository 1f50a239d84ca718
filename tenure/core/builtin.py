"""The core's own contributions, registered as the plugin named ``core``: the same hooks a
partner uses (pluggy's eggsample pattern)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import __version__, clock, messages
from tenure.core.contributions import (
    EventHandler,
    InvariantCheck,
    JobSpec,
    MessageChannel,
    PluginInfo,
    RetentionDimension,
    TemplateDefault,
)
from tenure.core.events import CustomersMerged
from tenure.core.messages.channels import EmailChannel, WebhookChannel
from tenure.core.models import Customer, Order, OutboxEntry, OutboxStatus
from tenure.core.plugins import hookimpl
from tenure.core.services import order_months, webhooks


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(
        name="core",
        version=__version__,
        summary="Customers, interactions, orders, tasks, webhooks and the events feed",
        migrations="tenure.migrations:versions",
    )


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    return [
        JobSpec("core.deliver_webhook", webhooks.deliver, description="POST one event to one subscriber"),
        JobSpec(messages.DELIVER_JOB, messages.deliver, description="Deliver one message over its channel"),
    ]


@hookimpl
def tenure_message_channels() -> list[MessageChannel]:
    return [EmailChannel(), WebhookChannel()]


@hookimpl
def tenure_message_templates() -> list[TemplateDefault]:
    return [
        TemplateDefault("core.member_email_verification", "en", "Confirm your e-mail address",
                        "Hello {customer_name},\n\nYou asked to add {new_email} to your account. Confirm that it "
                        "is yours: {verification_link}\n\nThis works for {valid_hours} hours. If you did not ask "
                        "for this, ignore this message: nothing changes."),
    ]


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    return [EventHandler(CustomersMerged, messages.service.move_merged, priority=10)]


async def _order_figures_match(session: AsyncSession) -> list[str]:
    counted = (
        select(Order.customer_id, func.count().label("n"),
               func.sum(Order.amount - Order.refunded_amount).label("spent"))
        .where(Order.status != "cancelled")
        .group_by(Order.customer_id)
        .subquery()
    )
    rows = await session.execute(
        select(Customer.id, Customer.order_count, Customer.total_spent, counted.c.n, counted.c.spent)
        .outerjoin(counted, counted.c.customer_id == Customer.id)
        .where(
            (Customer.order_count != func.coalesce(counted.c.n, 0))
            | (Customer.total_spent != func.coalesce(counted.c.spent, 0))
        )
        .limit(20)
    )
    return [
        f"customer {cid}: {n} orders and {spent} spent on record, but the orders add up to "
        f"{on or 0} and {os or 0}"
        for cid, n, spent, on, os in rows
    ]


#: How long an entry may be due and unclaimed while workers run other work before it counts as stuck.
STUCK_AFTER_HOURS = 1


async def outbox_waiting(session: AsyncSession) -> tuple[int, int, int]:
    """Entries (claimed past their lease, due and passed over, waiting their turn): an entry
    due for over an hour is stuck only when work finished more than an hour after it became
    due (workers ran and left it); when nothing has run since (no worker is running, or the
    data was just loaded), it is waiting its turn."""
    from datetime import timedelta

    now = clock.now()
    expired = await session.scalar(select(func.count()).select_from(OutboxEntry).where(
        OutboxEntry.status == OutboxStatus.RUNNING, OutboxEntry.locked_until < now)) or 0
    last_done = await session.scalar(select(func.max(OutboxEntry.completed_at)))
    waited = now - timedelta(hours=STUCK_AFTER_HOURS)
    passed_over = 0
    if last_done is not None:
        passed_over = await session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.status == OutboxStatus.PENDING, OutboxEntry.available_at < waited,
            OutboxEntry.available_at < last_done - timedelta(hours=STUCK_AFTER_HOURS))) or 0
    due = await session.scalar(select(func.count()).select_from(OutboxEntry).where(
        OutboxEntry.status == OutboxStatus.PENDING, OutboxEntry.available_at <= now)) or 0
    return int(expired), int(passed_over), int(due) - int(passed_over)


async def _outbox_not_stuck(session: AsyncSession) -> list[str]:
    expired, passed_over, waiting = await outbox_waiting(session)
    dead = await session.scalar(
        select(func.count()).select_from(OutboxEntry).where(OutboxEntry.status == OutboxStatus.DEAD)
    )
    problems = []
    if expired or passed_over:
        problems.append(
            f"{expired + passed_over} outbox entries are stuck ({expired} claimed past their lease, their worker "
            f"gone; {passed_over} due for over {STUCK_AFTER_HOURS} h while workers ran other work): is a "
            f"scheduler running (`tenure scheduler`, or `tenure serve` without a broker)? {waiting} more are "
            "waiting their turn")
    if dead:
        problems.append(f"{dead} outbox entries failed for good (see `tenure jobs failed`)")
    return problems


@hookimpl
def tenure_checks() -> list[InvariantCheck]:
    return [
        InvariantCheck("customer order figures match the orders", _order_figures_match),
        InvariantCheck("no outbox entry is stuck", _outbox_not_stuck),
        InvariantCheck("order months match the orders", order_months.check),
    ]


@hookimpl
def tenure_retention_dimensions() -> list[RetentionDimension]:
    return [
        RetentionDimension("channel", "SELECT id AS customer_id, COALESCE(source_channel, '') AS label FROM customers",
                           "The channel the customer came through ('' when unknown)"),
        RetentionDimension("tag", "SELECT customer_id, tag AS label FROM customer_tags",
                           "Each of the customer's tags (untagged customers are left out)"),
    ]
