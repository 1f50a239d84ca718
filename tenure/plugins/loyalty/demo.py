"""Loyalty in ``tenure demo``: orders earn points through the plugin's own handler; at the end
the periodic jobs run once as the scheduler would have, so points past their return window
are released and old ones expired, and balances are current."""

from __future__ import annotations

from tenure.core.contributions import DemoData, DemoRun, DemoTransaction
from tenure.plugins.loyalty import jobs


async def finish(transaction: DemoTransaction, run: DemoRun) -> None:
    async with transaction() as ctx:
        await jobs.release_pending(ctx, {})
        await jobs.expire_points(ctx, {})


DEMO = DemoData(finish=finish)
