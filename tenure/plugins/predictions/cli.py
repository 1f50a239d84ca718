"""``tenure predict fit`` and ``tenure predict report``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import click


@click.group("predict")
def predict() -> None:
    """Predicted purchases, activity and value per customer (BG/NBD and Gamma-Gamma)."""


def _setup() -> tuple[Any, Any]:
    from tenure.core.commands import load_enabled_plugins, load_settings

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    if not plugins.is_enabled("predictions"):
        raise click.ClickException("the predictions plugin is off (TENURE_PLUGINS)")
    return settings, plugins


def _clock(settings: Any) -> contextlib.AbstractContextManager[Any]:
    """TENURE_NOW, when set, is the moment the fit stands on (the core reads the setting but
    does not stop its clock for commands)."""
    from tenure.core import clock

    if settings.now is None:
        return contextlib.nullcontext()
    return clock.use_clock(clock.FrozenClock(settings.now))


@predict.command("fit")
def fit() -> None:
    """Fit both models on the orders of the whole days before today, check them on the
    holdout days and score every customer now, in one transaction (the nightly job's work).
    Exits 1, saying why, when there are too few buyers; the previous predictions stay."""
    from tenure.core.context import ServiceContext
    from tenure.core.db import Database
    from tenure.plugins.predictions import service
    from tenure.plugins.predictions.results import Refused

    settings, plugins = _setup()

    async def run() -> list[str]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.transaction() as session:
                outcome = await service.fit_and_score(ServiceContext(session, settings, plugins, actor="cli"))
            return [f"scored {outcome.scored} customers", *service.report_lines(outcome.fit)]
        finally:
            await db.dispose()

    try:
        with _clock(settings):
            lines = asyncio.run(run())
    except Refused as refused:
        raise click.ClickException(str(refused)) from None
    for line in lines:
        click.echo(line)


@predict.command("report")
def report() -> None:
    """Print the last fit: parameters, sample, fit time and the holdout check."""
    from tenure.core.db import Database
    from tenure.plugins.predictions import service

    settings, _ = _setup()

    async def run() -> list[str]:
        db = Database(settings.resolved_database_url)
        try:
            async with db.reader() as session:
                fit = await service.latest_fit(session)
                refusal = await service.last_refusal(session, fit.as_of if fit else None)
        finally:
            await db.dispose()
        lines = service.report_lines(fit) if fit is not None else ["no fit yet: run tenure predict fit"]
        if refusal is not None:
            lines.append(f"refused as of {refusal.as_of}: {refusal.message}")
        return lines

    for line in asyncio.run(run()):
        click.echo(line)
