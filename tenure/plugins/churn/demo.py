"""Churn in ``tenure demo``: every order and interaction of the history queued a rescore of
its customer; at the end one full rescore covers them all, so warnings are current."""

from __future__ import annotations

from sqlalchemy import update

from tenure.core.contributions import DemoData, DemoRun, DemoTransaction
from tenure.core.models import OutboxEntry, OutboxStatus
from tenure.plugins.churn import service


async def finish(transaction: DemoTransaction, run: DemoRun) -> None:
    async with transaction() as ctx:
        # The queued rescores are closed as done, not run again: the full rescore below covers them.
        closed = await ctx.session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.job == "churn.rescore_marked", OutboxEntry.status == OutboxStatus.PENDING)
            .values(status=OutboxStatus.DONE, completed_at=ctx.now(), last_error="covered by the demo's full rescore")
            .execution_options(synchronize_session=False))
        run.counts["rescores_covered"] = int(closed.rowcount or 0)  # type: ignore[attr-defined]
    counts = await service.rescore_all(transaction)
    run.counts["open_warnings"] = counts["open_warnings"]


def summary(counts: dict[str, int]) -> list[str]:
    return [f"churn warnings open after the rescore: {counts.get('open_warnings', 0)} "
            f"(it covered the {counts.get('rescores_covered', 0)} rescores the load had queued)"]


DEMO = DemoData(finish=finish, summary=summary)
