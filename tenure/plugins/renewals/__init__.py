"""Renewal reminders for subscriptions and contracts: 90/60/30 days before the end to the
customer and the owner, one renewal task, renewals and lapses on the timeline, a report."""

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
from tenure.core.events import CustomersMerged
from tenure.core.plugins import hookimpl
from tenure.plugins.renewals import models as models  # registers the tables with the metadata


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="renewals", version="0.1.0", summary="Subscriptions, renewal reminders and lapses",
                      migrations="tenure.plugins.renewals:migrations")


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.renewals import schema

    return SchemaContribution(query=schema.RenewalsQuery, mutation=schema.RenewalsMutation,
                              extends={"Customer": schema.CustomerSubscriptions,
                                       "Member": schema.MemberSubscriptions})


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    from tenure.plugins.renewals.jobs import jobs

    return jobs()


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    from tenure.plugins.renewals import service

    return [EventHandler(CustomersMerged, service.on_merge)]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.renewals import privacy

    return privacy.personal_data()


@hookimpl
def tenure_message_templates() -> list[TemplateDefault]:
    return [
        TemplateDefault("renewals.reminder", "en", "Your {plan} renews on {renewal_date}",
                        "Hello {customer_name},\n\nyour {plan} ends on {renewal_date}, in {days_left} days "
                        "({value}).\nReply to this email or talk to us to renew.\n\nThank you for staying with us!"),
        TemplateDefault("renewals.reminder", "de", "Ihr {plan} endet am {renewal_date}",
                        "Hallo {customer_name},\n\nIhr {plan} endet am {renewal_date}, in {days_left} Tagen "
                        "({value}).\nAntworten Sie einfach, um zu verlängern.\n\nDanke für Ihre Treue!"),
        TemplateDefault("renewals.owner_reminder", "en", "Renewal due: {customer_name}, {plan} on {renewal_date}",
                        "Hello {owner_name},\n\n{customer_name}'s {plan} ends on {renewal_date}, in {days_left} "
                        "days ({value}). A renewal task is open for you."),
    ]


@hookimpl
def churn_signals() -> list[Any]:
    from tenure.plugins.renewals.signals import signals

    return signals()


@hookimpl
def tenure_forecasts() -> list[Any]:
    from tenure.plugins.renewals.forecast import forecasters

    return forecasters()


@hookimpl
def tenure_demo() -> DemoData:
    from tenure.plugins.renewals.demo import DEMO

    return DEMO
