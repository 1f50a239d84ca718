"""Journeys: creating, editing, pausing and resuming them, the shipped templates a business
switches on, and what other plugins may call (:func:`steps_due`, for a forecast).

The rules of entering and running live in :mod:`tenure.plugins.journeys.engine`; the figures and
the preview in :mod:`tenure.plugins.journeys.figures`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenure.core.context import ServiceContext
from tenure.core.errors import NotFound, UserError
from tenure.plugins.journeys import engine
from tenure.plugins.journeys.definition import JourneyData, StepData, clean
from tenure.plugins.journeys.figures import DueStep, steps_due
from tenure.plugins.journeys.models import ACTIVE, PAUSED, Journey
from tenure.plugins.journeys.templates import TEMPLATES

__all__ = ["DueStep", "create_journey", "pause_journey", "resume_journey", "start_template", "steps_due",
           "update_journey"]


async def _name_free(ctx: ServiceContext, name: str, journey_id: int | None = None) -> None:
    found = await ctx.session.scalar(select(Journey.id).where(Journey.name == name))
    if found is not None and found != journey_id:
        raise UserError(f"a journey named {name!r} exists (id {found})", "name", "conflict")


async def create_journey(ctx: ServiceContext, data: JourneyData, *, paused: bool = False,
                         template: str | None = None) -> Journey:
    """A new journey, active at once unless ``paused`` (then :func:`resume_journey` starts
    it; a paused journey can be previewed first). Triggers count from now on: nobody enters
    for what happened before."""
    values = await clean(ctx, data, creating=True)
    await _name_free(ctx, values["name"])
    now = ctx.now()
    journey = Journey(**values, status=PAUSED if paused else ACTIVE, template=template, active_since=now,
                      events_after=await engine.log_position(ctx), dates_through=None, version=1, created_at=now,
                      updated_at=now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(journey)
    except IntegrityError:
        raise UserError(f"a journey named {values['name']!r} exists", "name", "conflict") from None
    engine.forget_active(ctx)
    await ctx.publish("journeys.created", source="journeys", summary=f"Journey {journey.name} created",
                      data={"journeyId": journey.id, "name": journey.name, "trigger": journey.trigger,
                            "status": journey.status})
    return journey


async def _journey(ctx: ServiceContext, journey_id: int) -> Journey:
    journey = await ctx.session.get(Journey, journey_id, with_for_update=ctx.dialect == "postgresql")
    if journey is None:
        raise NotFound("journey", journey_id, "id")
    return journey


async def update_journey(ctx: ServiceContext, journey_id: int, data: JourneyData) -> Journey:
    """Change what is given. Customers already in the journey go on from the step they are
    at, under the new definition (a step they already passed is not run again); a new
    trigger counts from now on."""
    journey = await _journey(ctx, journey_id)
    values = await clean(ctx, data, creating=False)
    if "name" in values:
        await _name_free(ctx, values["name"], journey.id)
    if not values:
        return journey
    now = ctx.now()
    if values.get("trigger", journey.trigger) != journey.trigger or \
            values.get("trigger_params", journey.trigger_params) != journey.trigger_params:
        journey.active_since, journey.dates_through = now, None
        journey.events_after = await engine.log_position(ctx)
        await engine.forget_segment(ctx, journey.id)
    for name, value in values.items():
        setattr(journey, name, value)
    journey.version += 1
    journey.updated_at = now
    await ctx.session.flush()
    engine.forget_active(ctx)
    return journey


async def pause_journey(ctx: ServiceContext, journey_id: int) -> Journey:
    """Nobody enters and no step runs until it is resumed."""
    journey = await _journey(ctx, journey_id)
    if journey.status == PAUSED:
        raise UserError("this journey is paused already", "id", "invalid_status")
    journey.status, journey.updated_at = PAUSED, ctx.now()
    await ctx.session.flush()
    engine.forget_active(ctx)
    return journey


async def resume_journey(ctx: ServiceContext, journey_id: int) -> Journey:
    """Triggers count again from now (what happened during the pause starts nothing); steps
    that came due meanwhile run, unless they are more than TENURE_JOURNEYS_LATE_AFTER_HOURS
    late (then they are skipped, saying so)."""
    journey = await _journey(ctx, journey_id)
    if journey.status == ACTIVE:
        raise UserError("this journey is running already", "id", "invalid_status")
    now = ctx.now()
    journey.status, journey.updated_at, journey.active_since, journey.dates_through = ACTIVE, now, now, None
    journey.events_after = await engine.log_position(ctx)
    await engine.forget_segment(ctx, journey.id)
    await ctx.session.flush()
    engine.forget_active(ctx)
    return journey


async def start_template(ctx: ServiceContext, key: str, *, name: str | None = None,
                         holdout_percent: int | None = None, paused: bool = False) -> Journey:
    """Switch on a shipped journey (``journeyTemplates`` lists them) under ``name``."""
    template = TEMPLATES.get((key or "").strip().lower())
    if template is None:
        raise UserError(f"no journey template named {key!r} (templates: {', '.join(TEMPLATES)})", "template",
                        "not_found")
    if template.requires and not ctx.plugins.is_enabled(template.requires):
        raise UserError(f"this template needs the {template.requires} plugin, which is off", "template",
                        "plugin_off")
    data = JourneyData(name=name or template.name, description=template.description, trigger=template.trigger,
                       trigger_params=dict(template.trigger_params), conditions=dict(template.conditions),
                       steps=[StepData(**s) for s in template.steps], exits=list(template.exits),
                       holdout_percent=holdout_percent)
    return await create_journey(ctx, data, paused=paused, template=template.key)


def describe_steps(journey: Journey) -> list[dict[str, Any]]:
    return [{"position": n + 1, **step} for n, step in enumerate(journey.steps)]


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
