"""Loyalty points: an append-only ledger with FIFO lots, earn rules configured through the
API, pending points until the return window closes, reversal on refunds, expiry with
reminders, rewards, and the liability report.

Order of work on a new order: the tiers plugin's upgrade handler runs at priority 100 and
loyalty earns at priority 200, so an order that lifts a member into a tier already earns at
that tier's multiplier (asked through the ``loyalty_points_multiplier`` hook).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import Any

from tenure.core import __version__
from tenure.core.contributions import (
    DemoData,
    EventHandler,
    InvariantCheck,
    JobSpec,
    PersonalData,
    PluginInfo,
    SchemaContribution,
    TemplateDefault,
)
from tenure.core.events import CustomersMerged, OrderCancelled, OrderRecorded, OrderRefunded
from tenure.core.plugins import hookimpl
from tenure.core.settings import read_dataclass
from tenure.plugins.loyalty import hookspecs, jobs, service
from tenure.plugins.loyalty.notify import TEMPLATES
from tenure.plugins.loyalty.settings import LoyaltySettings

EARN_PRIORITY = 200


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="loyalty", version=__version__,
                      summary="Loyalty points: ledger, earn rules, rewards, expiry and reversal on refunds",
                      migrations="tenure.plugins.loyalty:migrations", hookspecs=hookspecs)


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.loyalty.schema import contribution

    return contribution()


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    return jobs.jobs(read_dataclass(LoyaltySettings, "TENURE_LOYALTY_", os.environ))


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(OrderRecorded, service.on_orders_recorded, priority=EARN_PRIORITY, batch=True),
        EventHandler(OrderRefunded, service.on_order_refunded, priority=EARN_PRIORITY),
        EventHandler(OrderCancelled, service.on_order_cancelled, priority=EARN_PRIORITY),
        EventHandler(CustomersMerged, service.on_customers_merged, priority=EARN_PRIORITY),
    ]


@hookimpl
def tenure_checks() -> list[InvariantCheck]:
    return [InvariantCheck("every points balance equals its ledger and none is negative", jobs.ledger_matches)]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.loyalty import privacy

    return privacy.personal_data()


@hookimpl
def tenure_message_templates() -> list[TemplateDefault]:
    return list(TEMPLATES)


@hookimpl
def tiers_qualifying_points(session: Any, customer_ids: Any, since: Any) -> Awaitable[dict[int, int]]:
    """Loyalty answers the tiers plugin's question (called only while tiers is on)."""
    return service.qualifying_points(session, customer_ids, since)


@hookimpl
def tenure_forecasts() -> list[Any]:
    from tenure.plugins.loyalty.forecast import forecasters

    return forecasters()


@hookimpl
def tenure_demo() -> DemoData:
    from tenure.plugins.loyalty.demo import DEMO

    return DEMO
