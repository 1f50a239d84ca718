"""``tenure jobs``: list the background jobs, run them now (as of a moment), and list or
retry the ones that failed for good."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from tenure.core.commands import load_enabled_plugins, load_settings, parse_moment, require_tables


@click.group()
def jobs() -> None:
    """Inspect and run background jobs."""


@jobs.command("list")
def jobs_list() -> None:
    """Every job of the enabled plugins: its plugin, its schedule (cron, UTC) and its next run."""
    from datetime import datetime

    from croniter import croniter

    from tenure.core import clock
    from tenure.core.plugins import schedule_variable

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    now = clock.now()
    click.echo(f"{'job':<30} {'plugin':<12} {'schedule':<16} {'next run (UTC)':<20} setting")
    for name, spec in sorted(plugins.jobs.items()):
        upcoming = (croniter(spec.schedule, now).get_next(datetime).strftime("%Y-%m-%d %H:%M")
                    if spec.schedule else "when queued")
        click.echo(f"{name:<30} {name.split('.')[0]:<12} {spec.schedule or '-':<16} {upcoming:<20} "
                   f"TENURE_SCHEDULE_{schedule_variable(name)}")
        if spec.description:
            click.echo(f"    {spec.description}")


@jobs.command("run")
@click.argument("name", required=False)
@click.option("--at", "at", default=None, metavar="TIME",
              help="Run as of this moment (ISO 8601 with offset): the clock stands there meanwhile.")
def jobs_run(name: str | None, at: str | None) -> None:
    """Run jobs now, in this process, and what they enqueue, until none is left.

    With NAME, that job runs once. Without, every scheduled job whose latest time has come
    and has not run yet runs, then everything due. ``--at`` moves the clock for the run, so a
    business can walk its rules through the days (``tenure jobs run --at 2027-03-02T07:00Z``).
    """
    from datetime import UTC, datetime

    from tenure.core import clock, outbox
    from tenure.core.db import Database
    from tenure.workers.scheduler import tick

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    moment = parse_moment(at)
    if moment is not None:
        clock.install(clock.FrozenClock(moment))
    if name is not None and name not in plugins.jobs:
        raise click.ClickException(f"no job named {name!r}; `tenure jobs list` shows them")

    async def run() -> dict[str, int]:
        db = Database(settings.resolved_database_url)
        try:
            await require_tables(db)
            if name is not None:
                async with db.transaction() as session:
                    await outbox.enqueue(session, name, {"scheduledFor": clock.now().isoformat()})
            else:
                await tick(db, plugins, datetime(1970, 1, 1, tzinfo=UTC), clock.now())
            return await outbox.drain(db, plugins, settings)
        finally:
            await db.dispose()

    counts = asyncio.run(run())
    click.echo(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing was due")


@jobs.command("failed")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="How many to list.")
def jobs_failed(limit: int) -> None:
    """List jobs that failed for good: id, job, attempts, and the last error."""
    from tenure.core.db import Database
    from tenure.core.outbox import dead_entries

    settings = load_settings()

    async def run() -> list[Any]:
        db = Database(settings.resolved_database_url)
        try:
            return await dead_entries(db, limit)
        finally:
            await db.dispose()

    entries = asyncio.run(run())
    for entry in entries:
        error = next(iter((entry.last_error or "").splitlines()), "")
        click.echo(f"{entry.id:<8} {entry.job:<32} {entry.attempts} attempts  {error}")
    if not entries:
        click.echo("no failed jobs")


@jobs.command("retry")
@click.argument("entry_id", type=int)
def jobs_retry(entry_id: int) -> None:
    """Run a failed job again (after fixing what made it fail), with a fresh set of attempts."""
    from tenure.core.db import Database
    from tenure.core.outbox import retry_dead

    settings = load_settings()

    async def run() -> bool:
        db = Database(settings.resolved_database_url)
        try:
            return await retry_dead(db, entry_id)
        finally:
            await db.dispose()

    if not asyncio.run(run()):
        raise click.ClickException(f"no failed job with id {entry_id}")
    click.echo(f"job {entry_id} queued again")
