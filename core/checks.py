"""``tenure check``: the invariants every plugin declares, plus models against migrations."""

from __future__ import annotations

import asyncio

from core.db import Database
from core.plugins import PluginManager
from core.settings import Settings


async def run_invariants(db: Database, plugins: PluginManager) -> list[str]:
    problems = []
    async with db.reader() as session:
        for plugin, check in plugins.checks:
            for problem in await check.check(session):
                problems.append(f"{plugin}: {check.name}: {problem}")
    return problems


def run_checks(settings: Settings, plugins: PluginManager) -> list[str]:
    from core.migrate import differences

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
