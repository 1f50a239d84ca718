"""NPS and CSAT surveys: invitations after an order, on a schedule or by hand, single-use
signed links, follow-up tasks for detractors, and the NPS report."""

from __future__ import annotations

from typing import Any

from tenure.core.contributions import (
    DemoData,
    EventHandler,
    JobSpec,
    PersonalData,
    PluginInfo,
    SchemaContribution,
    TemplateDefault,
)
from tenure.core.events import CustomersMerged, OrderRecorded
from tenure.core.plugins import hookimpl
from tenure.plugins.nps import models as models  # registers the tables with the metadata


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="nps", version="0.1.0", summary="NPS and CSAT surveys with follow-up tasks",
                      migrations="tenure.plugins.nps:migrations")


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.nps import schema

    return SchemaContribution(query=schema.NpsQuery, mutation=schema.NpsMutation,
                              extends={"Customer": schema.CustomerSurveys, "Member": schema.MemberSurveys})


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    from tenure.plugins.nps.jobs import jobs

    return jobs()


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    from tenure.plugins.nps import service

    return [EventHandler(OrderRecorded, service.on_orders, batch=True), EventHandler(CustomersMerged, service.on_merge)]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.nps import privacy

    return privacy.personal_data()


@hookimpl
def tenure_message_templates() -> list[TemplateDefault]:
    return [
        TemplateDefault("nps.invitation", "en", "{customer_name}, how did we do?",
                        "Hello {customer_name},\n\n{question}\n\nAnswer in one click: {survey_link}\n\nThank you!"),
        TemplateDefault("nps.invitation", "de", "{customer_name}, wie war es?",
                        "Hallo {customer_name},\n\n{question}\n\nHier antworten: {survey_link}\n\nVielen Dank!"),
    ]


@hookimpl
def churn_signals() -> list[Any]:
    from tenure.plugins.nps.signals import signals

    return signals()


@hookimpl
def tenure_forecasts() -> list[Any]:
    from tenure.plugins.nps.forecast import forecasters

    return forecasters()


@hookimpl
def tenure_demo() -> DemoData:
    from tenure.plugins.nps.demo import DEMO

    return DEMO
