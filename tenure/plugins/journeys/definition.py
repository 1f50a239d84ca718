"""A journey's definition, checked before anything is written: the trigger and its
parameters, the conditions, the steps (wait, time of day, action and its parameters) and
the exits. Every refusal names the input field at fault (``steps[1].wait``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.errors import UserError
from tenure.core.services.customers import tag as clean_tag
from tenure.plugins.journeys import catalog
from tenure.plugins.journeys.settings import journeys_settings
from tenure.plugins.journeys.timing import parse_at, parse_wait

EXITS = {"ordered": None, "warning_resolved": "churn"}
CONSENTS = ("email", "sms", "push")
MAX_STEPS = 20


@dataclass
class StepData:
    action: str
    wait: str = "P0D"
    at: str | None = None
    params: Any = field(default_factory=dict)  # checked to be an object


@dataclass
class JourneyData:
    """What a caller gives; ``None`` leaves a field as it is when editing."""

    name: str | None = None
    description: str | None = None
    trigger: str | None = None
    trigger_params: Any = None  # checked to be an object
    conditions: dict[str, Any] | None = None
    steps: list[StepData] | None = None
    exits: list[str] | None = None
    holdout_percent: int | None = None
    conversion_days: int | None = None


def _list_of_text(value: Any, field: str, *, lower: bool = True, max_length: int = 100) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise UserError("must be a list of texts", field, "invalid")
    if len(value) > 50:
        raise UserError("at most 50 values", field, "too_many")
    cleaned = [v.text(x, field, max_length=max_length) for x in value]
    return list(dict.fromkeys(x.lower() if lower else x for x in cleaned))


async def clean_conditions(ctx: ServiceContext, conditions: dict[str, Any]) -> dict[str, Any]:
    allowed = ("tags", "without_tags", "tiers", "channels", "consent")
    unknown = sorted(set(conditions) - set(allowed))
    if unknown:
        raise UserError(f"unknown condition {', '.join(unknown)} (conditions: {', '.join(allowed)})",
                        "conditions", "invalid")
    out: dict[str, Any] = {}
    for name in ("tags", "without_tags"):
        tags = [clean_tag(t, f"conditions.{name}") for t in _list_of_text(conditions.get(name), f"conditions.{name}")]
        if tags:
            out[name] = tags
    both = set(out.get("tags", [])) & set(out.get("without_tags", []))
    if both:
        raise UserError(f"{', '.join(sorted(both))} is both required and excluded: nobody could enter",
                        "conditions.withoutTags", "invalid")
    channels = _list_of_text(conditions.get("channels"), "conditions.channels", max_length=50)
    if channels:
        out["channels"] = channels
    consent = _list_of_text(conditions.get("consent"), "conditions.consent")
    wrong = [c for c in consent if c not in CONSENTS]
    if wrong:
        raise UserError(f"no consent named {', '.join(wrong)} (consents: {', '.join(CONSENTS)})",
                        "conditions.consent", "invalid")
    if consent:
        out["consent"] = consent
    tiers = _list_of_text(conditions.get("tiers"), "conditions.tiers")
    if tiers:
        if not ctx.plugins.is_enabled("tiers"):
            raise UserError("a tier condition needs the tiers plugin, which is off", "conditions.tiers",
                            "plugin_off")
        from tenure.plugins.tiers.models import Tier

        known = set(await ctx.session.scalars(select(func.lower(Tier.name))))
        missing = [t for t in tiers if t not in known]
        if missing:
            raise UserError(f"no tier named {', '.join(missing)} (tiers: {', '.join(sorted(known)) or 'none yet'})",
                            "conditions.tiers", "not_found")
        out["tiers"] = tiers
    return out


async def clean_steps(ctx: ServiceContext, steps: list[StepData]) -> list[dict[str, Any]]:
    if not steps:
        raise UserError("a journey needs at least one step", "steps", "required")
    if len(steps) > MAX_STEPS:
        raise UserError(f"at most {MAX_STEPS} steps", "steps", "too_many")
    offered = catalog.actions(ctx.plugins)
    out = []
    for n, step in enumerate(steps):
        where = f"steps[{n}]"
        action = offered.get((step.action or "").strip())
        if action is None:
            raise UserError(f"no action named {step.action!r} (actions: {', '.join(offered)})", f"{where}.action",
                            "not_found")
        parse_wait(step.wait, f"{where}.wait")
        at = parse_at(step.at, f"{where}.at")
        if not isinstance(step.params, dict):
            raise UserError("must be an object", f"{where}.params", "invalid")
        try:
            params = action.check(dict(step.params))
        except UserError as error:
            raise UserError(error.message, f"{where}.{error.field or 'params'}", error.code) from None
        if action.name == "message" and not await catalog.known_template(ctx, params["template"]):
            raise UserError(f"no message template with key {params['template']!r} (built-in ones come from the "
                            "plugins; add your own with createTemplate)", f"{where}.params.template", "not_found")
        out.append({"action": action.name, "wait": step.wait.strip().upper(),
                    "at": at.strftime("%H:%M") if at else None, "params": params})
    return out


def clean_exits(ctx: ServiceContext, exits: list[str]) -> list[str]:
    out = []
    for name in exits:
        name = (name or "").strip().lower()
        if name not in EXITS:
            raise UserError(f"no exit named {name!r} (exits: {', '.join(EXITS)})", "exits", "not_found")
        needs = EXITS[name]
        if needs is not None and not ctx.plugins.is_enabled(needs):
            raise UserError(f"the exit {name} needs the {needs} plugin, which is off", "exits", "plugin_off")
        out.append(name)
    return list(dict.fromkeys(out))


def clean_trigger(ctx: ServiceContext, name: str, params: Any) -> tuple[str, dict[str, Any]]:
    offered = catalog.triggers(ctx.plugins)
    trigger = offered.get((name or "").strip())
    if trigger is None:
        raise UserError(f"no trigger named {name!r} (triggers: {', '.join(offered)})", "trigger", "not_found")
    if not isinstance(params, dict):
        raise UserError("must be an object", "triggerParams", "invalid")
    try:
        cleaned = trigger.check(dict(params)) if trigger.check else dict(params)
    except UserError as error:
        raise UserError(error.message, "triggerParams", error.code) from None
    return trigger.name, cleaned


async def _segment_exists(ctx: ServiceContext, name: str) -> None:
    from tenure.plugins.churn.models import Segment

    if await ctx.session.scalar(select(Segment.id).where(Segment.name == name)) is None:
        known = ", ".join(await ctx.session.scalars(select(Segment.name).order_by(Segment.name))) or "none yet"
        raise UserError(f"no saved segment named {name!r} (segments: {known})", "triggerParams", "not_found")


async def clean(ctx: ServiceContext, data: JourneyData, *, creating: bool) -> dict[str, Any]:
    """The fields to write, checked; on an edit only those given."""
    cfg = journeys_settings(ctx.settings)
    out: dict[str, Any] = {}
    if creating or data.name is not None:
        out["name"] = v.text(data.name, "name", max_length=200)
    if creating or data.description is not None:
        out["description"] = v.text(data.description, "description", max_length=2000, required=False)
    if creating or data.trigger is not None or data.trigger_params is not None:
        if data.trigger is None:
            raise UserError("give the trigger with its parameters", "trigger", "required")
        out["trigger"], out["trigger_params"] = clean_trigger(ctx, data.trigger, data.trigger_params or {})
        if out["trigger"] == catalog.SEGMENT_TRIGGER:
            await _segment_exists(ctx, out["trigger_params"]["segment"])
    if creating or data.conditions is not None:
        out["conditions"] = await clean_conditions(ctx, data.conditions or {})
    if creating or data.steps is not None:
        out["steps"] = await clean_steps(ctx, data.steps or [])
    if creating or data.exits is not None:
        out["exits"] = clean_exits(ctx, data.exits or [])
    if creating or data.holdout_percent is not None:
        holdout = cfg.holdout_percent if data.holdout_percent is None else data.holdout_percent
        if not 0 <= holdout <= 50:
            raise UserError("a share from 0 to 50 percent", "holdoutPercent", "invalid_range")
        out["holdout_percent"] = holdout
    if creating or data.conversion_days is not None:
        days = cfg.conversion_days if data.conversion_days is None else data.conversion_days
        if not 1 <= days <= 365:
            raise UserError("from 1 to 365 days", "conversionDays", "invalid_range")
        out["conversion_days"] = days
    return out
