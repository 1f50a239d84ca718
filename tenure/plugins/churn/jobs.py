"""The churn plugin's jobs: the scheduled full rescore and the rescoring of customers after
an event. Both are idempotent: a rescore writes the same scores from the same data, a warning
opens once per episode and its task once per cause."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tenure.core.context import ServiceContext
from tenure.core.contributions import JobSpec
from tenure.plugins.churn import service
from tenure.plugins.churn.settings import ChurnSettings


async def rescore_everyone(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await service.rescore_all(lambda: service.same(ctx), follow_up_now=False)
    await enqueue_follow_up(ctx)


async def enqueue_follow_up(ctx: ServiceContext) -> None:
    first = await service.first_pending_warning(ctx)
    if first is not None:
        await ctx.enqueue("churn.follow_up", {}, dedupe_key=f"churn:follow_up:{first}")


async def follow_up(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """A batch of new warnings followed up; the job queues itself again while some remain."""
    await service.follow_up(ctx)
    await enqueue_follow_up(ctx)


async def rescore_customers(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await service.rescore(ctx, [int(i) for i in payload.get("customerIds", [])])


async def rescore_marked(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await service.rescore_marked(ctx, datetime.fromisoformat(payload["since"]))


def jobs(cfg: ChurnSettings) -> list[JobSpec]:
    return [
        JobSpec("churn.rescore", rescore_everyone, schedule=cfg.rescore_schedule,
                description="Rescore every customer: RFM, lifecycle, health; raise and resolve warnings"),
        JobSpec("churn.follow_up", follow_up,
                description="Open the follow-up task (and win-back) of new warnings, a batch at a time"),
        JobSpec("churn.rescore_customers", rescore_customers,
                description="Rescore the customers named in the job"),
        JobSpec("churn.rescore_marked", rescore_marked,
                description="Rescore the customers whose orders or interactions changed in the last few seconds"),
    ]
