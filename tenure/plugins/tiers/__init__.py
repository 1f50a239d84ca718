"""Membership tiers: defined through the API, upgraded at once in the order's transaction,
reviewed daily with a grace period before a downgrade, overridable by staff.

Order of work on a new order: the upgrade runs at priority 100, before loyalty earns (200),
so the order that lifts a member into a tier earns at that tier's points multiplier. Tiers
answer loyalty's ``loyalty_points_multiplier`` hook, and re-check on
``loyalty_points_earned`` when a tier qualifies on points; tiers offer
``tiers_qualifying_points``, which loyalty answers. With either plugin off, the hooks are
simply not called: each works alone.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import Any

from tenure.core import __version__
from tenure.core.contributions import (
    DemoData,
    EventHandler,
    JobSpec,
    PersonalData,
    PluginInfo,
    RetentionDimension,
    SchemaContribution,
)
from tenure.core.events import CustomersMerged, OrderRecorded
from tenure.core.plugins import hookimpl
from tenure.core.settings import read_dataclass
from tenure.plugins.tiers import hookspecs, service
from tenure.plugins.tiers.settings import TiersSettings

UPGRADE_PRIORITY = 100


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="tiers", version=__version__,
                      summary="Membership tiers with benefits, instant upgrades and graceful downgrades",
                      migrations="tenure.plugins.tiers:migrations", hookspecs=hookspecs)


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.tiers.schema import contribution

    return contribution()


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    cfg = read_dataclass(TiersSettings, "TENURE_TIERS_", os.environ)
    return [JobSpec("tiers.review", service.review, schedule=cfg.review_schedule,
                    description="Start grace periods and downgrade members who no longer qualify")]


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(OrderRecorded, service.on_orders_recorded, priority=UPGRADE_PRIORITY, batch=True),
        EventHandler(CustomersMerged, service.on_customers_merged, priority=UPGRADE_PRIORITY),
    ]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.tiers import privacy

    return privacy.personal_data()


@hookimpl
def tenure_retention_dimensions() -> list[RetentionDimension]:
    from tenure.plugins.tiers.retention import dimensions

    return dimensions()


@hookimpl
def loyalty_points_multipliers(ctx: Any, customer_ids: list[int]) -> Awaitable[dict[int, Any]]:
    return service.multipliers(ctx, customer_ids)


@hookimpl
def loyalty_points_earned(ctx: Any, customer_id: int) -> Awaitable[None]:
    return service.on_points_earned(ctx, customer_id)


@hookimpl
def tenure_forecasts() -> list[Any]:
    from tenure.plugins.tiers.forecast import forecasters

    return forecasters()


@hookimpl
def tenure_demo() -> DemoData:
    from tenure.plugins.tiers.demo import DEMO

    return DEMO
