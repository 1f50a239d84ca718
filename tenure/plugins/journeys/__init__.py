"""Journeys: automation a business designs. A trigger (an order, a date on the customer, an
event of another plugin), conditions, steps separated by waits, actions (a message, a task,
points, a tag, a webhook event) and exits, each step once per customer and trigger
occurrence, measured against a holdout. Other plugins add triggers and actions through
:mod:`tenure.plugins.journeys.hookspecs`."""

from __future__ import annotations

import os
from typing import Any

from tenure.core import __version__
from tenure.core.contributions import (
    EventHandler,
    JobSpec,
    PersonalData,
    PluginInfo,
    SchemaContribution,
    TemplateDefault,
)
from tenure.core.events import CustomersMerged, OrderRecorded
from tenure.core.plugins import hookimpl
from tenure.core.settings import read_dataclass
from tenure.plugins.journeys import engine, hookspecs
from tenure.plugins.journeys import models as models  # registers the tables with the metadata
from tenure.plugins.journeys.settings import JourneysSettings

#: Before any plugin answers a batch of orders (tiers upgrade at 100): the log's mark, for history.
HISTORY_MARK_PRIORITY = 1
#: After loyalty (200) and tiers (100) answered the orders: exits and entries see their work.
ORDERS_PRIORITY = 900


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="journeys", version=__version__,
                      summary="Journeys: triggers, waits and actions, once per customer, measured against a holdout",
                      migrations="tenure.plugins.journeys:migrations", hookspecs=hookspecs)


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.journeys.schema import contribution

    return contribution()


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    cfg = read_dataclass(JourneysSettings, "TENURE_JOURNEYS_", os.environ)
    return [JobSpec(engine.RUN_JOB, engine.run, schedule=cfg.schedule,
                    description="Let customers into journeys (events, dates) and run the steps that came due")]


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(OrderRecorded, engine.mark_history_start, priority=HISTORY_MARK_PRIORITY, batch=True),
        EventHandler(OrderRecorded, engine.on_orders, priority=ORDERS_PRIORITY, batch=True),
        EventHandler(CustomersMerged, engine.on_merge),
    ]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.journeys import privacy

    return privacy.personal_data()


@hookimpl
def tenure_message_templates() -> list[TemplateDefault]:
    from tenure.plugins.journeys.templates import MESSAGES

    return MESSAGES


@hookimpl
def tenure_forecasts() -> list[Any]:
    from tenure.plugins.journeys.forecast import forecasters

    return forecasters()
