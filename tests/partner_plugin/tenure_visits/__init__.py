"""Store visits: the hook implementations Tenure calls (see core/hookspecs.py)."""

from __future__ import annotations

from tenure.plugin import CustomersMerged, EventHandler, JobSpec, PersonalData, PluginInfo, SchemaContribution, hookimpl
from tenure_visits import models  # noqa: F401  (its table joins Tenure's metadata when the plugin loads)

NAME = "visits"
__version__ = "1.0.0"


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name=NAME, version=__version__, summary="Store visits and a thank-you after each",
                      migrations="tenure_visits:migrations")


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure_visits import schema

    return SchemaContribution(mutation=schema.Mutation, extends={"Customer": schema.CustomerVisits})


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    from tenure_visits import service

    return [JobSpec("visits.thank", service.thank, description="Thank the customer for a visit, once")]


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    from tenure_visits import service

    return [EventHandler(CustomersMerged, service.move_visits)]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure_visits import privacy

    return privacy.personal_data()
