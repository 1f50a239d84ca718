"""Education for Tenure: course completions (logged as interactions) move learners up a tier
when the tiers plugin is on, and learners who stop logging in get a follow-up task.

Built from docs/plugins.md alone, as a partner would; see service.py for the rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

from tenure.plugin import (
    CustomersMerged,
    EventHandler,
    InteractionLogged,
    JobSpec,
    PersonalData,
    PluginInfo,
    SchemaContribution,
    Settings,
    hookimpl,
)

from tenure_education import (
    models,  # noqa: F401  (its table joins Tenure's metadata when the plugin loads)
    service,
)

__version__ = "0.1.0"


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    # tiers is optional: without it, completions are still recorded and shown.
    return PluginInfo(name="education", version=__version__, summary="Courses and learners",
                      migrations="tenure_education:migrations")


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure_education import schema

    return SchemaContribution(query=schema.Query,
                              extends={"Customer": schema.LearnerFields, "Member": schema.LearnerFields})


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    from tenure_education import jobs

    return jobs.JOBS


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    # After the core's bookkeeping; tiers' own order handler is not involved.
    return [EventHandler(InteractionLogged, service.on_interaction, priority=150),
            EventHandler(CustomersMerged, service.move_completions)]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    return [PersonalData("education", service.export_personal, service.erase_personal)]


@hookimpl
def tiers_qualifying_points(session: Any, customer_ids: Sequence[int], since: datetime) -> Awaitable[dict[int, int]]:
    """Each course completed in the tier's window counts as qualifying points."""
    cfg = Settings.from_env().for_plugin("education", service.EducationSettings)
    return service.qualifying_points(session, customer_ids, since, cfg.points_per_course)


@hookimpl
def churn_signals() -> list[Any]:
    """No login for two weeks lowers a learner's churn health (while churn is on)."""
    from tenure_education.signals import signals

    return signals()


@hookimpl
def journeys_triggers() -> list[Any]:
    """A journey can start when a learner completes a course (only called with journeys on)."""
    from tenure_education import journeys

    return journeys.triggers()
