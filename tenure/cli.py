"""The ``tenure`` command: serve, migrate, worker, scheduler, plugins, schema, apikey,
check, and whatever sub-commands the enabled plugins add; ``jobs`` (``tenure/cli_jobs.py``)
and ``import``/``export`` (``tenure/cli_data.py``) are added from their own modules."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from tenure.cli_data import export_command, import_command
from tenure.cli_jobs import jobs
from tenure.core.commands import load_enabled_plugins, load_settings, require_tables, upgrade_database
from tenure.core.settings import Settings, SettingsError


class _WaitSeconds(click.ParamType):
    """``--wait`` alone waits without end; ``--wait 120`` at most 120 seconds."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        if value == "forever":
            return float("inf")
        try:
            seconds = float(value)
        except ValueError:
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        if seconds < 0:
            self.fail("expected a number of seconds of 0 or more", param, ctx)
        return seconds


def _wait_option(command: Any) -> Any:
    return click.option(
        "--wait", "wait", type=_WaitSeconds(), is_flag=False, flag_value="forever", default=None,
        metavar="[SECONDS]",
        help="When the database or the broker does not answer yet, or the database is not migrated yet, "
             "try again (at most SECONDS) instead of stopping.")(command)


def _preflight(settings: Settings, plugins: Any, wait: float | None, *, migrated: bool = True,
               broker: bool = True) -> None:
    """Stop with one line naming the setting and the fix when the database or the broker
    cannot serve this process (see core/startup.py)."""
    from tenure.core.startup import StartupError, preflight

    try:
        preflight(settings, plugins, wait=wait, migrated=migrated, broker=broker)
    except StartupError as error:
        raise click.ClickException(str(error)) from None


def _logging(settings: Settings) -> None:
    """Log lines as TENURE_LOG_FORMAT says (json or text), each with its request id."""
    from tenure.core.logging import configure

    configure(settings)


class TenureCLI(click.Group):
    """Adds the enabled plugins' commands (``tenure churn rescore``) to the built-in ones."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        try:
            settings = Settings.from_env()
            return {c.name or "": c for c in load_enabled_plugins(settings).cli_commands()}
        except (SettingsError, click.ClickException):
            return {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands().get(name)


@click.group(cls=TenureCLI)
@click.version_option(package_name="tenure")
def main() -> None:
    """Tenure: a headless CRM for customer retention, served over GraphQL.

    Settings come from TENURE_* environment variables and a .env file here.
    """


@main.command()
@click.option("--host", default=None, help="Address to listen on (TENURE_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (TENURE_PORT, default 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="API processes.")
@click.option("--migrate/--no-migrate", default=None,
              help="Bring the database up to date first (default: yes on SQLite, no on PostgreSQL).")
@_wait_option
def serve(host: str | None, port: int | None, workers: int, migrate: bool | None, wait: float | None) -> None:
    """Serve the GraphQL API at /graphql (GraphiQL in a browser).

    With no TENURE_BROKER_URL, jobs and the scheduler run inside this process.
    """
    import uvicorn

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    _logging(settings)
    if migrate is None:
        migrate = settings.resolved_database_url.startswith("sqlite")
    _preflight(settings, plugins, wait, migrated=not migrate)
    if migrate:
        upgrade_database(settings, plugins)
    if not _has_api_key(settings):
        click.echo("No API key yet: create one with `tenure apikey create --name me --role admin` "
                   "and send it as 'Authorization: Bearer <key>'.")
    click.echo(f"Tenure on http://{host or settings.host}:{port or settings.port}/graphql "
               f"({', '.join(plugins.names())}; database {settings.resolved_database_url.split('://')[0]}; "
               f"jobs {'via ' + settings.broker_url.split('://')[0] if settings.broker_url else 'in-process'})")
    from tenure.schema.metrics import multiprocess_folder

    with multiprocess_folder(workers):  # one /metrics scrape adds up every worker process
        uvicorn.run("tenure.schema.server:create_app", factory=True, host=host or settings.host,
                    port=port or settings.port, workers=workers, log_level=settings.log_level.lower(),
                    access_log=False, log_config=None)


def _has_api_key(settings: Settings) -> bool:
    """Whether any key exists (``False`` also when the tables are not there yet)."""
    from sqlalchemy import select

    from tenure.core.db import Database
    from tenure.core.models import ApiKey

    async def run() -> bool:
        db = Database(settings.resolved_database_url)
        try:
            async with db.reader() as session:
                return await session.scalar(select(ApiKey.id).limit(1)) is not None
        except Exception:  # no tables yet: `tenure migrate` has not run
            return False
        finally:
            await db.dispose()

    return asyncio.run(run())


@main.command()
def migrate() -> None:
    """Bring the database to the latest revision of the core and every enabled plugin."""
    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    _preflight(settings, plugins, None, migrated=False, broker=False)
    for target in upgrade_database(settings, plugins):
        click.echo(f"up to date: {target}")


@main.command()
@click.option("--threads", type=int, default=4, show_default=True, help="Jobs run at once.")
@_wait_option
def worker(threads: int, wait: float | None) -> None:
    """Run background jobs from the broker (TENURE_BROKER_URL must be set)."""
    from tenure.workers.broker import run_worker

    settings = load_settings()
    if not settings.broker_url:
        raise click.ClickException("TENURE_BROKER_URL is not set: without a broker, `tenure serve` runs jobs itself")
    _logging(settings)
    _preflight(settings, load_enabled_plugins(settings), wait)
    run_worker(settings, threads=threads)


@main.command()
@_wait_option
def scheduler(wait: float | None) -> None:
    """Enqueue periodic jobs at their cron times, and re-send work whose hand-off was lost."""
    from tenure.core.db import Database
    from tenure.workers.broker import BrokerDispatcher
    from tenure.workers.scheduler import run_forever

    settings = load_settings()
    if not settings.broker_url:
        raise click.ClickException(
            "TENURE_BROKER_URL is not set: without a broker, `tenure serve` schedules jobs itself")
    _logging(settings)
    plugins = load_enabled_plugins(settings)
    _preflight(settings, plugins, wait)

    async def run() -> None:
        import signal

        db = Database(settings.resolved_database_url)
        dispatcher = BrokerDispatcher(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        for spec in plugins.jobs.values():
            if spec.schedule:
                click.echo(f"{spec.name}: {spec.schedule}")
        await run_forever(db, plugins, settings, dispatcher.dispatch, stop, backlog=dispatcher.backlog)
        await dispatcher.close()
        await db.dispose()

    asyncio.run(run())


@main.command("plugins")
def list_plugins() -> None:
    """List installed plugins: on or off, version, and what each contributes."""
    from tenure.core.plugins import installed_plugins, load_plugins

    settings = load_settings()
    try:
        enabled = load_plugins(settings)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    rows = []
    for candidate in installed_plugins():
        name = candidate.info.name
        on = enabled.is_enabled(name)
        parts = []
        if on:
            for plugin, contribution in enabled.schema_contributions:
                if plugin == name:
                    def count(cls: Any) -> int:
                        return len(cls.__strawberry_definition__.fields)

                    def field_names(cls: Any) -> list[str]:
                        from strawberry.schema.config import StrawberryConfig

                        converter = StrawberryConfig().name_converter
                        return [converter.from_field(f) for f in cls.__strawberry_definition__.fields]

                    if contribution.query:
                        parts.append(f"{count(contribution.query)} queries")
                    if contribution.mutation:
                        parts.append(f"{count(contribution.mutation)} mutations")
                    parts += [f"{t}.{{{', '.join(field_names(c))}}}" for t, c in contribution.extends.items()]
            jobs = [j for j in enabled.jobs if j.startswith(f"{name}.")]
            if jobs:
                parts.append(f"{len(jobs)} jobs")
            from tenure.core.db import plugin_tables

            tables = plugin_tables(name)
            if tables:
                parts.append(f"{len(tables)} tables")
        rows.append((name, "on" if on else "off", candidate.info.version, candidate.origin,
                     candidate.info.summary, ", ".join(parts)))
    for name, state, version, origin, summary, adds in rows:
        click.echo(f"{name:<12} {state:<4} {version:<8} {origin:<10} {summary}")
        if adds:
            click.echo(f"{'':<12} adds: {adds}")
    if not rows:
        click.echo("no plugins installed")


@main.command("schema")
def print_schema() -> None:
    """Print the GraphQL schema (SDL) of the enabled plugins, for typed clients."""
    from tenure.schema.build import build_schema

    settings = load_settings()
    click.echo(str(build_schema(load_enabled_plugins(settings), settings)))


@main.group()
def apikey() -> None:
    """Create and revoke API keys."""


def _keys_database() -> Settings:
    """The settings, with the database ready for keys. A key is made before the first
    ``tenure serve`` in a new folder, so on SQLite (the embedded default) the database is
    brought up to date first, as ``serve`` does; elsewhere one not migrated yet is a one-line
    error that says to run ``tenure migrate``."""
    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    on_sqlite = settings.resolved_database_url.startswith("sqlite")
    _preflight(settings, plugins, None, migrated=not on_sqlite, broker=False)
    if on_sqlite:
        upgrade_database(settings, plugins)
    return settings


@apikey.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--role", required=True, type=click.Choice(["admin", "staff", "integration"]))
@click.option("--staff-email", default=None, help="The staff user a staff key acts as (created if new).")
@click.option("--scope", "scopes", multiple=True, help="An integration scope (repeat); none means all.")
def apikey_create(name: str, role: str, staff_email: str | None, scopes: tuple[str, ...]) -> None:
    """Create a key and print it once: it is stored hashed and cannot be shown again."""
    from tenure.core import auth
    from tenure.core.db import Database

    settings = _keys_database()

    async def run() -> auth.CreatedKey:
        db = Database(settings.resolved_database_url)
        try:
            async with db.transaction() as session:
                return await auth.create_api_key(session, name=name, role=role, staff_email=staff_email,
                                                 scopes=list(scopes))
        finally:
            await db.dispose()

    created = asyncio.run(run())
    click.echo(created.key)
    click.echo(f"key {created.record.prefix} ({role}) created; keep it now, it is not shown again", err=True)


@apikey.command("revoke")
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int) -> None:
    """Revoke a key by its id: requests with it fail from now on."""
    from tenure.core import auth
    from tenure.core.db import Database

    settings = _keys_database()

    async def run() -> bool:
        db = Database(settings.resolved_database_url)
        try:
            async with db.transaction() as session:
                return await auth.revoke_api_key(session, key_id)
        finally:
            await db.dispose()

    if not asyncio.run(run()):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"key {key_id} revoked")


@main.command()
def check() -> None:
    """Verify the invariants (balances equal ledgers, figures match orders, no stuck work,
    models match migrations); exits non-zero and says what is wrong."""
    from tenure.core.checks import outbox_summary, run_checks

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    _preflight(settings, plugins, None, broker=False)
    problems = run_checks(settings, plugins)
    click.echo(outbox_summary(settings))
    for problem in problems:
        click.echo(f"- {problem}")
    if problems:
        click.echo(f"{len(problems)} problems found", err=True)
        sys.exit(1)
    click.echo("all checks passed")


@main.group("retention")
def retention_group() -> None:
    """The order months rollup that the retention figures read."""


@retention_group.command("rebuild")
@click.option("--batch", type=click.IntRange(1000), default=50_000, show_default=True,
              help="Customers per transaction.")
def retention_rebuild(batch: int) -> None:
    """Rebuild the order months from the orders, set-based, with a progress line: after
    orders were loaded around the services (COPY, a restore), or when `tenure check` finds drift.
    The retention figures are partial until it ends; run it while no orders are being written."""
    from tenure.core.services.order_months import rebuild_url

    rows = rebuild_url(load_settings().resolved_database_url, batch=batch)
    click.echo(f"{rows:,} customer months written")


@main.command()
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True, help="How many days ahead.")
def forecast(days: int) -> None:
    """Say, day by day from today, what the scheduled rules will do if nothing changes:
    renewal reminders and lapses, points expiring and their value, members leaving a tier,
    survey invitations and journey steps due, customers reaching the no-order rule. Nothing
    is done. With TENURE_NOW, from that day."""
    from tenure.core.db import Database
    from tenure.core.forecast import read_forecast

    settings = load_settings()
    plugins = load_enabled_plugins(settings)

    async def run() -> Any:
        db = Database(settings.resolved_database_url)
        try:
            await require_tables(db)
            return await read_forecast(db, settings, plugins, days)
        finally:
            await db.dispose()

    found = asyncio.run(run())
    for day in found:
        click.echo(day.day.isoformat())
        for planned in day.items:
            click.echo(f"  {planned.plugin:<10} {planned.item.summary}")
    if not found:
        click.echo(f"nothing is scheduled to happen in the next {days} days")


@main.command()
@click.option("--customers", type=click.IntRange(1, 1_000_000), default=3000, show_default=True,
              help="How many demo customers.")
@click.option("--seed", type=int, default=7, show_default=True, help="The same seed gives the same people.")
def demo(customers: int, seed: int) -> None:
    """Load a realistic demo data set (customers, orders over two years, interactions, refunds,
    tasks) through the services, so the enabled plugins act on it. Running it again adds nothing."""
    from tenure.core.migrate import upgrade
    from tenure.demo import demo_database, load_demo

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    _preflight(settings, plugins, None, migrated=False, broker=False)
    upgrade(settings, plugins)
    click.echo(f"loading {customers} demo customers into {settings.resolved_database_url.split('://')[0]} ...")

    def progress(done: int, total: int) -> None:
        click.echo(f"\r  {done}/{total} customers", nl=False)

    def note(text: str) -> None:
        click.echo(f"\n  {text}", nl=False)

    async def run() -> Any:
        db = demo_database(settings.resolved_database_url)
        try:
            return await load_demo(db, settings, plugins, customers=customers, seed=seed, progress=progress,
                                   note=note)
        finally:
            await db.dispose()

    runner: Any = asyncio.run
    try:  # uvloop (installed with uvicorn[standard]) makes the many small statements quicker
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    summary = runner(run())
    click.echo("")
    for line in summary.lines():
        click.echo(line)


@main.group()
def migrations() -> None:
    """Write migrations (for plugin authors)."""


@migrations.command("new")
@click.argument("plugin")
@click.option("-m", "--message", required=True, help="What the revision changes.")
def migrations_new(plugin: str, message: str) -> None:
    """Autogenerate a revision of PLUGIN's tables on its own branch."""
    from tenure.core.migrate import new_revision

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    upgrade_database(settings, plugins, skip_unstarted=True)
    click.echo(new_revision(settings, plugins, plugin, message))

@main.group("plugin")
def plugin_group() -> None:
    """Start a plugin of your own (for partners)."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--path", "where", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to create the project in.")
@click.option("--summary", default=None, help="One line saying what the plugin does.")
def plugin_new(name: str, where: Path, summary: str | None) -> None:
    """Create tenure-NAME/: a plugin package with its entry point, hooks, models, first migration,
    GraphQL type, Customer field, query, mutation, job and passing tests."""
    from tenure.core.scaffold import ScaffoldError, new_plugin

    try:
        root = new_plugin(name, where, summary)
    except ScaffoldError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"created {root}")
    click.echo(f"next: cd {root} && pip install -e . && python -m pytest")


main.add_command(jobs)
main.add_command(import_command)
main.add_command(export_command)


if __name__ == "__main__":
    main()
