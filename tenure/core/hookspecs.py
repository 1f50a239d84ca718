"""The plugin contract: every hook Tenure calls, and what it expects back.

This module is the partner SDK. A plugin is a module (or object) with functions marked
``@hookimpl`` (from :mod:`tenure.core.plugins`) whose names match the specs below. Tenure calls
the *registration* hooks once, when it starts, and assembles the server from what they
return; behaviour at run time (domain events, jobs) comes from the objects they return.

Rules that hold for every hook:

- Registration hooks are synchronous and return data (lists, dataclasses). They must not
  touch the database.
- Tenure never relies on the order in which plugins are called (pluggy leaves it undefined
  between installed packages). Where order matters, the returned data carries a
  ``priority`` and Tenure sorts by it.
- A plugin that is switched off (``TENURE_PLUGINS``) is never registered, so it contributes
  no table, GraphQL type or field, job or handler.

.. versionadded:: 0.1  every hook below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from tenure.core.contributions import (
        DemoData,
        EventHandler,
        Forecaster,
        InvariantCheck,
        JobSpec,
        MessageChannel,
        PersonalData,
        PluginInfo,
        RetentionDimension,
        SchemaContribution,
        TemplateDefault,
    )

hookspec = pluggy.HookspecMarker("tenure")


# -- Who the plugin is ----------------------------------------------------------------------


@hookspec
def tenure_plugin_info() -> PluginInfo:  # type: ignore[empty-body]
    """Name, version, summary, the plugins it needs, and where its migrations live.

    Required of every plugin. ``name`` is what ``TENURE_PLUGINS`` lists, the alembic branch
    label of its migrations, and the prefix of its job names.
    """


# -- What it adds to the server (called once at start-up) -----------------------------------


@hookspec
def tenure_schema() -> SchemaContribution:  # type: ignore[empty-body]
    """GraphQL contributions: root query, mutation and subscription fields, and fields
    spliced into core types (``extends={"Customer": CustomerPointsFields}``).

    A field name that another plugin or the core already uses on the same type stops the
    schema assembly with an error naming both. Every root field must declare who may call
    it (``permission_classes=[allow(...)]`` from :mod:`tenure.schema.permissions`).
    """


@hookspec
def tenure_jobs() -> list[JobSpec]:  # type: ignore[empty-body]
    """Background jobs: an ``async def run(ctx, payload)`` each, named ``<plugin>.<job>``,
    optionally with a cron ``schedule`` (UTC) on which ``tenure scheduler`` enqueues it.

    A job must be idempotent: running it twice does no more than running it once. A job
    runs in one transaction that commits only if it returns without error.
    """


@hookspec
def tenure_event_handlers() -> list[EventHandler]:  # type: ignore[empty-body]
    """Handlers of domain events (:mod:`tenure.core.events`), run inside the transaction that
    raised the event, in ascending ``priority`` (the core's own bookkeeping runs first).

    A handler writes through ``ctx.session``; anything slow or external (a message, a
    webhook, a rescoring) it enqueues with ``ctx.enqueue`` so it runs after commit. An
    exception in a handler rolls the whole change back and reaches the caller.
    """


@hookspec
def tenure_checks() -> list[InvariantCheck]:  # type: ignore[empty-body]
    """Invariants that ``tenure check`` verifies (a balance equals its ledger, ...): each an
    ``async def check(session) -> list[str]`` returning the problems it found, in words."""


@hookspec
def tenure_personal_data() -> list[PersonalData]:  # type: ignore[empty-body]
    """What the plugin stores about a customer, for ``exportCustomer`` and ``eraseCustomer``:
    a :class:`tenure.core.contributions.PersonalData` each (``export`` and ``erase`` over a session
    and a customer id). A plugin whose tables hold anything about a customer must return one.

    .. versionadded:: 0.1
    """


@hookspec
def tenure_retention_dimensions() -> list[RetentionDimension]:  # type: ignore[empty-body]
    """Ways to split the retention figures (``retention(by: TIER)``): a
    :class:`tenure.core.contributions.RetentionDimension` each, a unique ``name`` and a SELECT of
    ``customer_id, label`` rows giving each customer's group now. The core contributes
    ``channel`` and ``tag``; the ``by`` enum of the schema lists exactly the dimensions of the
    enabled plugins.

    .. versionadded:: 0.1
    """


@hookspec
def tenure_forecasts() -> list[Forecaster]:  # type: ignore[empty-body]
    """What the plugin's scheduled rules will do in the coming days if nothing changes
    (reminders due, points expiring, members leaving a tier), for ``tenure forecast`` and
    ``upcoming(days:)``: a :class:`tenure.core.contributions.Forecaster` each, whose ``forecast(ctx,
    first, last)`` reads (never writes) and returns :class:`tenure.core.contributions.ForecastItem`
    rows, per UTC day, the days the plugin's jobs count in.

    .. versionadded:: 0.2
    """


@hookspec
def tenure_demo() -> DemoData | None:
    """The plugin's part of ``tenure demo``: a :class:`tenure.core.contributions.DemoData`
    whose functions define what the made-up history needs, plan each customer's steps, do
    them through the plugin's services and run its periodic jobs once at the end. Without
    it, the demo still runs the plugin's event handlers on the core history (orders earn
    points, tiers move) but adds nothing of its own.

    .. versionadded:: 0.2
    """


@hookspec
def tenure_cli_commands() -> list[click.Command]:  # type: ignore[empty-body]
    """Extra ``tenure`` sub-commands (a :class:`click.Command` or group each), named after
    the plugin (``tenure churn rescore``)."""


# -- Messages (core.messages) ----------------------------------------------------------------


@hookspec
def tenure_message_channels() -> list[MessageChannel]:  # type: ignore[empty-body]
    """Ways to deliver a message besides the core's ``email`` and ``webhook``: an SMS
    gateway, a messaging app. Each a :class:`tenure.core.contributions.MessageChannel` with a
    unique ``name`` (what ``send_message(channels=[...])`` and ``TENURE_MESSAGE_CHANNELS``
    name), the consent flag it needs, how it finds the address, and ``async send``.

    .. versionadded:: 0.1
    """


@hookspec
def tenure_message_templates() -> list[TemplateDefault]:  # type: ignore[empty-body]
    """Built-in texts of the messages a plugin sends (key ``<plugin>.<what>``, one per
    locale). Staff override them with ``createTemplate``; placeholders are
    ``{customer_name}`` and whatever the plugin passes as data.

    .. versionadded:: 0.1
    """
