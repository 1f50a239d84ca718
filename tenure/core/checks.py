"""``tenure check``: the invariants every plugin declares, plus models against migrations."""

from __future__ import annotations

import asyncio

from tenure.core.db import Database
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings


async def run_invariants(db: Database, plugins: PluginManager) -> list[str]:
    problems = []
    async with db.reader() as session:
        for plugin, check in plugins.checks:
            for problem in await check.check(session):
                problems.append(f"{plugin}: {check.name}: {problem}")
    return problems


async def outbox_line(db: Database) -> str:
    """How the queued work stands, for ``tenure check`` to print whether or not it passes."""
    from tenure.core.builtin import outbox_waiting

    async with db.reader() as session:
        expired, passed_over, waiting = await outbox_waiting(session)
    stuck = expired + passed_over
    return f"outbox: {waiting} entries due and waiting their turn, {stuck} stuck"


def outbox_summary(settings: Settings) -> str:
    async def run() -> str:
        db = Database(settings.resolved_database_url)
        try:
            return await outbox_line(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def run_checks(settings: Settings, plugins: PluginManager) -> list[str]:
    from tenure.core.migrate import differences

    async def run() -> list[str]:
        db = Database(settings.resolved_database_url)
        try:
            return await run_invariants(db, plugins)
        finally:
            await db.dispose()

    problems = asyncio.run(run())
    diffs = differences(settings, plugins)
    if diffs:
        problems.append(f"the database schema differs from the models ({len(diffs)} differences; "
                        "run `tenure migrate`, or write the missing migration): {diffs[:3]}")
    return problems
