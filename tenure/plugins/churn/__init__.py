"""Churn warnings: RFM scores and segments, lifecycle stages, rules and a health score per
customer, warnings with a follow-up task for the owner, win-back through a hook, and the
report of who came back. Rescoring is set-based SQL in batches (see :mod:`tenure.plugins.churn.scoring`).

Event handlers run at priority 300, after loyalty and tiers: an order resolves the
customer's open warning in the order's transaction; every order, cancellation, refund,
interaction and merge marks the customer for a fresh count, and one coalescing job
(``churn.rescore_marked``) rescores the marked customers a few seconds later.
"""

from __future__ import annotations

import os
from typing import Any

from tenure.core import __version__
from tenure.core.contributions import DemoData, EventHandler, JobSpec, PersonalData, PluginInfo, SchemaContribution
from tenure.core.events import CustomersMerged, InteractionLogged, OrderCancelled, OrderRecorded, OrderRefunded
from tenure.core.plugins import hookimpl
from tenure.core.settings import read_dataclass
from tenure.plugins.churn import hookspecs, jobs, service
from tenure.plugins.churn.settings import ChurnSettings

PRIORITY = 300


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="churn", version=__version__,
                      summary="Churn warnings: RFM segments, lifecycle, health score, follow-up and win-back",
                      migrations="tenure.plugins.churn:migrations", hookspecs=hookspecs)


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.churn.schema import contribution

    return contribution()


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    return jobs.jobs(read_dataclass(ChurnSettings, "TENURE_CHURN_", os.environ))


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(OrderRecorded, service.on_orders_recorded, priority=PRIORITY, batch=True),
        EventHandler(OrderCancelled, service.on_orders_changed, priority=PRIORITY, batch=True),
        EventHandler(OrderRefunded, service.on_orders_changed, priority=PRIORITY, batch=True),
        EventHandler(InteractionLogged, service.on_interactions, priority=PRIORITY, batch=True),
        EventHandler(CustomersMerged, service.on_customers_merged, priority=PRIORITY),
    ]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.churn import privacy

    return privacy.personal_data()


@hookimpl
def tenure_cli_commands() -> list[Any]:
    from tenure.plugins.churn.cli import churn

    return [churn]


@hookimpl
def tenure_forecasts() -> list[Any]:
    from tenure.plugins.churn.forecast import forecasters

    return forecasters()


@hookimpl
def tenure_demo() -> DemoData:
    from tenure.plugins.churn.demo import DEMO

    return DEMO
