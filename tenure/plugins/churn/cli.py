"""``tenure churn rescore``: the full rescore from a terminal, with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import click

from tenure.core.context import ServiceContext


@click.group("churn")
def churn() -> None:
    """Churn warnings: rescoring."""


@churn.command("rescore")
@click.option("--recount", is_flag=True,
              help="Count every customer's figures afresh from their orders and interactions, rather than "
                   "moving on those of the last rescore.")
@click.option("--as-of", "as_of", default=None, metavar="TIME",
              help="Score as of this moment (ISO 8601 with offset), such as the end of an imported history: "
                   "days are counted to it and the clock stands there for the run.")
def rescore(recount: bool, as_of: str | None) -> None:
    """Rescore every customer now (RFM, lifecycle, health), raise and resolve warnings, and
    open the follow-up tasks. The figures of the last rescore move on by what left each
    window since, and customers whose orders or interactions changed are counted afresh; the
    first rescore, one after the windows' settings changed, or --recount counts everyone's.
    A history that ended long ago (a data set from 1998) is scored with --as-of its last day;
    otherwise every customer of it is lost. A run as of a moment before the last one counts
    everyone afresh.
    The scoring is one transaction (an interrupted run leaves the previous scores whole);
    the follow-ups commit a batch at a time, so an interrupted run keeps the batches it
    finished and the next run completes the rest."""
    from tenure.core import clock
    from tenure.core.commands import load_enabled_plugins, load_settings, parse_moment
    from tenure.core.db import Database
    from tenure.plugins.churn.service import rescore_all

    settings = load_settings()
    moment = parse_moment(as_of)
    if moment is not None:
        clock.install(clock.FrozenClock(moment))
    plugins = load_enabled_plugins(settings)
    if not plugins.is_enabled("churn"):
        raise click.ClickException("the churn plugin is off (TENURE_PLUGINS)")

    async def run() -> dict[str, int]:
        db = Database(settings.resolved_database_url)

        @contextlib.asynccontextmanager
        async def transaction() -> AsyncIterator[ServiceContext]:
            async with db.transaction() as session:
                yield ServiceContext(session, settings, plugins, actor="cli")

        try:
            with click.progressbar(length=1, label="rescoring", show_pos=True) as bar:
                def progress(done: int, total: int) -> None:
                    bar.length = total
                    bar.update(done - bar.pos)

                return await rescore_all(transaction, progress, recount=recount)
        finally:
            await db.dispose()

    started = time.perf_counter()
    counts = asyncio.run(run())
    when = f" as of {moment.isoformat()}" if moment is not None else ""
    how = ("every figure counted afresh" if counts["mode"] == "recount"
           else f"figures moved on, {counts['recounted']} customers counted afresh")
    click.echo(f"scored {counts['scored']} customers{when} in {time.perf_counter() - started:.1f} s ({how}, "
               f"{counts['rewritten']} rows rewritten); "
               f"{counts['open_warnings']} open warnings ({counts['new_warnings']} new, followed up)")
