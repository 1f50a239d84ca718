"""What the ``tenure`` commands share with the commands plugins add (the ``tenure_cli``
hook): the settings, the enabled plugins and times read from the command line, with a
mistake reported as a command-line error in the user's words, never a traceback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from tenure.core import clock
from tenure.core.plugins import PluginManager, load_plugins
from tenure.core.settings import Settings, SettingsError


def load_settings() -> Settings:
    """The settings from the environment; a process started with ``TENURE_NOW`` runs at
    that moment."""
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    clock.freeze_from_setting(settings.now)
    return settings


def load_enabled_plugins(settings: Settings) -> PluginManager:
    try:
        return load_plugins(settings)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def parse_moment(value: str | None) -> datetime | None:
    """An ``--at``/``--as-of`` time: ISO 8601, with its offset (``2027-03-01T09:00:00Z``)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected an ISO 8601 time such as 2027-03-01T09:00:00Z, got {value!r}") from None
    if moment.tzinfo is None:
        raise click.BadParameter(f"give the time with its offset, such as {value}Z or {value}+01:00")
    return moment


def upgrade_database(settings: Settings, plugins: Any, **options: Any) -> list[str]:
    """Migrate the database to the enabled plugins' heads; a failure is a command-line error."""
    from tenure.core.migrate import MigrationError, upgrade

    try:
        return upgrade(settings, plugins, **options)
    except MigrationError as error:
        raise click.ClickException(str(error)) from None


async def require_tables(db: Any) -> None:
    """Stop, saying to migrate, when the database has no tables yet."""
    from sqlalchemy import text

    try:
        async with db.reader() as session:
            await session.execute(text("SELECT 1 FROM customers LIMIT 1"))
    except Exception:
        raise click.ClickException("the database has no tables yet: run `tenure migrate` first") from None
