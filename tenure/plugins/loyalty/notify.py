"""Reminders to members: an event on the customer's timeline (which webhook subscribers
receive after commit) and a message (email and the other configured channels) through the
outbox; each at most once per cause."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tenure.core.context import ServiceContext
from tenure.core.contributions import TemplateDefault
from tenure.core.messages import send_message
from tenure.plugins.loyalty.models import Account, Reward

TEMPLATES = [
    TemplateDefault("loyalty.points_expiring", "en", "Your points expire soon",
                    "Hello {customer_name}, {points} of your points expire on {expires_on}. Spend them before then."),
    TemplateDefault("loyalty.reward_reachable", "en", "You have enough points for {reward}",
                    "Hello {customer_name}, your {balance} points are enough for {reward} ({cost} points)."),
]


async def remind(ctx: ServiceContext, type: str, *, customer_id: int, summary: str, data: dict[str, Any],
                 template: str, placeholders: dict[str, Any], dedupe_key: str) -> None:
    """``data`` goes to the event (webhooks), ``placeholders`` fill the message template."""
    await ctx.publish(type, source="loyalty", customer_id=customer_id, summary=summary, data=data, timeline=True)
    await send_message(ctx, customer_id=customer_id, template=template, data=placeholders,
                                dedupe_key=dedupe_key)


async def reward_thresholds(ctx: ServiceContext, account: Account, before: int, cause: int) -> None:
    """Tell the member when their balance has just reached the cost of a reward."""
    if account.balance <= before:
        return
    reached = list(await ctx.session.scalars(
        select(Reward).where(Reward.active.is_(True), Reward.cost > before, Reward.cost <= account.balance)
        .order_by(Reward.cost.desc()).limit(1)))
    for reward in reached:
        await remind(
            ctx, "loyalty.reward_reachable", customer_id=account.customer_id,
            summary=f"{account.balance} points: enough for {reward.name} ({reward.cost} points)",
            data={"customerId": account.customer_id, "balance": account.balance, "rewardId": reward.id,
                  "reward": reward.name, "cost": reward.cost},
            template="loyalty.reward_reachable",
            placeholders={"balance": account.balance, "reward": reward.name, "cost": reward.cost},
            dedupe_key=f"loyalty:reward:{account.customer_id}:{reward.id}:{cause}",
        )
