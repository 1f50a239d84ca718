"""What a journey can start on and do: the built-in triggers and actions, and those other
plugins add through :mod:`tenure.plugins.journeys.hookspecs`, for the plugins that are on.

Built-in triggers: ``first_order`` and ``order_recorded`` (answered in the order's own
transaction, so an import of history, ``ctx.history``, starts nothing), ``birthday``,
``signing_anniversary`` (the day the customer was created, a year on and every year) and
``days_after_signup`` (``{"days": N}``), and, when their plugin is on, ``tier_changed``
(``tiers.changed``; ``{"tier": "Gold"}`` for one tier), ``churn_warned`` (``churn.warned``;
``{"level": "high"}``), ``survey_answered`` (``nps.answered``; ``{"category":
"detractor"}``) and ``entered_segment`` (``{"segment": name}``: a saved segment of the churn
plugin, which is where Tenure keeps saved segments; the core has none).

Built-in actions: ``message`` (a template, to the customer or the owner; consent and
quiet hours hold), ``task`` (for the customer's owner), ``points`` (through loyalty),
``tag`` and ``webhook`` (an event ``journeys.<name>`` to webhook subscribers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, extract, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import validation as v
from tenure.core.clock import as_utc
from tenure.core.context import ServiceContext
from tenure.core.errors import UserError
from tenure.core.messages import send_message
from tenure.core.messages.templates import defaults as template_defaults
from tenure.core.models import Customer, Message
from tenure.core.services.customers import tag as clean_tag
from tenure.core.services.customers import tag_customers
from tenure.core.services.tasks import NewTask, open_tasks
from tenure.plugins.journeys.hookspecs import Action, Params, StepTarget, Trigger

ORDER_TRIGGERS = ("first_order", "order_recorded")
SEGMENT_TRIGGER = "entered_segment"
SOURCE = "journeys"


# -- Parameters ------------------------------------------------------------------------------


def _no_params(params: Params) -> Params:
    if params:
        raise UserError(f"takes no parameters (got {', '.join(sorted(params))})", "trigger.params", "invalid")
    return {}


def _only(params: Params, allowed: Sequence[str], field: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "nothing"
        raise UserError(f"unknown parameter {', '.join(unknown)} (this takes: {takes})", field, "invalid")


def _optional_text(params: Params, name: str, field: str, choices: Sequence[str] | None = None) -> Params:
    _only(params, [name], field)
    if name not in params:
        return {}
    value = params[name]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{name} must be a non-empty text", field, "invalid")
    value = value.strip()
    if choices is not None and value.lower() not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)} (got {value!r})", field, "invalid")
    return {name: value.lower() if choices is not None else value}


def _days_param(params: Params) -> Params:
    _only(params, ["days"], "trigger.params")
    days = params.get("days")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
        raise UserError("needs days, a whole number from 1 to 3650 (createdAt plus that many days)",
                        "trigger.params", "invalid")
    return {"days": days}


# -- Date triggers ---------------------------------------------------------------------------


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return as_utc(datetime.combine(day, time(0), tzinfo=zone))


def _same_day(a: date, b: date) -> bool:
    """``b``'s month and day fall on ``a``; 29 February falls on 28 February in other years."""
    if (a.month, a.day) == (b.month, b.day):
        return True
    leap = a.year % 4 == 0 and (a.year % 100 != 0 or a.year % 400 == 0)
    return not leap and (b.month, b.day) == (2, 29) and (a.month, a.day) == (2, 28)


def _month_day(column: Any, days: Sequence[date]) -> Any:
    return or_(*(and_(extract("month", column) == d.month, extract("day", column) == d.day) for d in days))


async def birthdays(session: AsyncSession, day: date, zone: ZoneInfo, params: Params) -> list[tuple[int, str]]:
    near = [day] + ([date(day.year, 2, 29)] if (day.month, day.day) == (2, 28) and day.year % 4 else [])
    rows = await session.execute(select(Customer.id, Customer.birthday).where(
        Customer.erased_at.is_(None), Customer.birthday.is_not(None), _month_day(Customer.birthday, near)))
    return [(cid, f"birthday:{day.year}") for cid, born in rows if born is not None and _same_day(day, born)]


async def anniversaries(session: AsyncSession, day: date, zone: ZoneInfo, params: Params) -> list[tuple[int, str]]:
    # created_at is UTC; the business day it fell on is within a day of its UTC date, so
    # the statement narrows to three UTC dates and the zone decides exactly.
    near = [day + timedelta(days=d) for d in (-1, 0, 1)]
    rows = await session.execute(select(Customer.id, Customer.created_at).where(
        Customer.erased_at.is_(None), Customer.created_at < _midnight(date(day.year, 1, 1), zone),
        _month_day(Customer.created_at, near)))
    found = []
    for cid, created in rows:
        signed = as_utc(created).astimezone(zone).date()
        if signed.year < day.year and _same_day(day, signed):
            found.append((cid, f"anniversary:{day.year}"))
    return found


async def signed_days_ago(session: AsyncSession, day: date, zone: ZoneInfo, params: Params) -> list[tuple[int, str]]:
    signed = day - timedelta(days=int(params["days"]))
    rows = await session.scalars(select(Customer.id).where(
        Customer.erased_at.is_(None), Customer.created_at >= _midnight(signed, zone),
        Customer.created_at < _midnight(signed + timedelta(days=1), zone)))
    return [(cid, f"signup+{params['days']}") for cid in rows]


def _segment_param(params: Params) -> Params:
    _only(params, ["segment"], "trigger.params")
    segment = params.get("segment")
    if not isinstance(segment, str) or not segment.strip():
        raise UserError("needs segment, the name of a saved segment (saveSegment)", "trigger.params", "required")
    return {"segment": segment.strip()}


def _tier_matches(data: dict[str, Any], params: Params) -> bool:
    wanted = params.get("tier")
    return wanted is None or str(data.get("tier") or "").lower() == wanted.lower()


def _field_matches(name: str) -> Any:
    def match(data: dict[str, Any], params: Params) -> bool:
        return name not in params or str(data.get(name) or "").lower() == params[name]

    return match


BUILT_IN_TRIGGERS = (
    Trigger("first_order", "The customer's first order is recorded.", check=_no_params),
    Trigger("order_recorded", "Any order is recorded (each order is an occurrence).", check=_no_params),
    Trigger("birthday", "The customer's birthday (business time zone); once a year.", on_day=birthdays,
            check=_no_params),
    Trigger("signing_anniversary", "A year to the day after the customer was created, and every year after.",
            on_day=anniversaries, check=_no_params),
    Trigger("days_after_signup", "createdAt plus N days: params {\"days\": N}.", on_day=signed_days_ago,
            check=_days_param),
    Trigger("tier_changed", "The customer moved to another tier; params {\"tier\": name} for one tier.",
            event_type="tiers.changed", match=_tier_matches,
            check=lambda p: _optional_text(p, "tier", "trigger.params"), requires="tiers"),
    Trigger("churn_warned", "A churn warning was raised; params {\"level\": ...} for one level.",
            event_type="churn.warned", match=_field_matches("level"),
            check=lambda p: _optional_text(p, "level", "trigger.params", ("low", "medium", "high", "critical")),
            requires="churn"),
    Trigger("survey_answered", "A survey was answered; params {\"category\": \"detractor\"} for one kind.",
            event_type="nps.answered", match=_field_matches("category"),
            check=lambda p: _optional_text(p, "category", "trigger.params",
                                           ("promoter", "passive", "detractor", "satisfied", "neutral",
                                            "dissatisfied")),
            requires="nps"),
    Trigger(SEGMENT_TRIGGER, "The customer entered a saved segment (churn plugin); params {\"segment\": name}. "
            "Who is in it when the journey starts does not count.", check=_segment_param, requires="churn"),
)


# -- Actions ---------------------------------------------------------------------------------


def _check_message(params: Params) -> Params:
    _only(params, ["template", "recipient", "channels", "data"], "params")
    template = params.get("template")
    if not isinstance(template, str) or not template.strip():
        raise UserError("a message step needs template, a template key such as journeys.welcome_tips",
                        "params.template", "required")
    recipient = params.get("recipient", "customer")
    if recipient not in ("customer", "owner"):
        raise UserError("recipient must be customer or owner", "params.recipient", "invalid")
    channels = params.get("channels")
    if channels is not None and (not isinstance(channels, list) or not all(isinstance(c, str) for c in channels)):
        raise UserError("channels must be a list of channel names", "params.channels", "invalid")
    data = params.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(k, str) and k.isidentifier() for k in data):
        raise UserError("data must be an object of placeholder values ({\"coupon\": \"WELCOME10\"})",
                        "params.data", "invalid")
    return {"template": template.strip(), "recipient": recipient, "channels": channels, "data": data}


async def _send(ctx: ServiceContext, targets: Sequence[StepTarget], params: Params) -> dict[int, str]:
    skipped: dict[int, str] = {}
    for target in targets:
        data = {"journey": target.journey_name, **params.get("data", {})}
        first = await send_message(ctx, customer_id=target.customer_id, template=params["template"], data=data,
                                   dedupe_key=target.key, channels=params.get("channels"),
                                   recipient=params.get("recipient", "customer"))
        if first is not None:
            reason = await ctx.session.scalar(select(Message.skip_reason).where(Message.id == first))
            if reason:  # recorded, but it will not go out: say why on the step
                skipped[target.entry_id] = f"message not sent: {reason}"[:300]
    return skipped


def _check_task(params: Params) -> Params:
    _only(params, ["title", "reason"], "params")
    title = v.text(params.get("title"), "params.title", max_length=200)
    reason = v.text(params.get("reason", ""), "params.reason", max_length=4000, required=False)
    return {"title": title, "reason": reason}


async def _task(ctx: ServiceContext, targets: Sequence[StepTarget], params: Params) -> dict[int, str]:
    await open_tasks(ctx, [NewTask(title=params["title"], customer_id=t.customer_id, source_key=t.key,
                                   reason=params.get("reason") or f"step {t.step + 1} of the journey "
                                                                  f"{t.journey_name}")
                           for t in targets], source=SOURCE)
    return {}


def _check_points(params: Params) -> Params:
    _only(params, ["points", "reason"], "params")
    points = params.get("points")
    if not isinstance(points, int) or isinstance(points, bool) or not 1 <= points <= 1_000_000:
        raise UserError("points must be a whole number from 1 to 1000000", "params.points", "invalid_points")
    return {"points": points, "reason": v.text(params.get("reason") or "journey bonus", "params.reason",
                                               max_length=300)}


async def _points(ctx: ServiceContext, targets: Sequence[StepTarget], params: Params) -> dict[int, str]:
    if not ctx.plugins.is_enabled("loyalty"):
        return {t.entry_id: "the loyalty plugin is off" for t in targets}
    from tenure.plugins.loyalty import service as loyalty

    for target in targets:
        await loyalty.adjust_points(ctx, target.customer_id, params["points"],
                                    f"{params['reason']} ({target.journey_name})"[:300], idempotency_key=target.key)
    return {}


def _check_tag(params: Params) -> Params:
    _only(params, ["tag"], "params")
    return {"tag": clean_tag(params.get("tag") or "", "params.tag")}


async def _tag(ctx: ServiceContext, targets: Sequence[StepTarget], params: Params) -> dict[int, str]:
    await tag_customers(ctx, sorted({t.customer_id for t in targets}), [params["tag"]], [])
    return {}


def _check_webhook(params: Params) -> Params:
    _only(params, ["event", "data"], "params")
    event = v.text(params.get("event"), "params.event", max_length=80).lower()
    if not all(part.isidentifier() for part in event.split(".")):
        raise UserError("event must be a name such as welcome_sent (sent as journeys.welcome_sent)",
                        "params.event", "invalid")
    data = params.get("data", {})
    if not isinstance(data, dict):
        raise UserError("data must be an object", "params.data", "invalid")
    return {"event": event, "data": data}


async def _webhook(ctx: ServiceContext, targets: Sequence[StepTarget], params: Params) -> dict[int, str]:
    # The event log is the outbox of webhooks: one event per customer, delivered after
    # commit to every subscriber of journeys.<event>, each delivery deduplicated by event id.
    for target in targets:
        await ctx.publish(f"journeys.{params['event']}", source=SOURCE, customer_id=target.customer_id,
                          summary=f"{target.journey_name}: {params['event']}",
                          data={"customerId": target.customer_id, "journey": target.journey_name,
                                "journeyId": target.journey_id, "step": target.step + 1, **params["data"]})
    return {}


BUILT_IN_ACTIONS = (
    Action("message", "A message from a template (consent and quiet hours hold): {template, recipient, channels, "
           "data}.", _check_message, _send),
    Action("task", "A task for the customer's owner: {title, reason}.", _check_task, _task),
    Action("points", "Points through the loyalty plugin: {points, reason}.", _check_points, _points,
           requires="loyalty"),
    Action("tag", "Tag the customer: {tag}.", _check_tag, _tag),
    Action("webhook", "An event journeys.<event> to webhook subscribers: {event, data}.", _check_webhook, _webhook),
)


# -- The catalogue of the plugins that are on --------------------------------------------------


def triggers(plugins: Any) -> dict[str, Trigger]:
    found: dict[str, Trigger] = {}
    contributed = [t for answer in plugins.hook.journeys_triggers() for t in answer or ()]
    for trigger in [*BUILT_IN_TRIGGERS, *contributed]:
        if trigger.requires is not None and not plugins.is_enabled(trigger.requires):
            continue
        if trigger.name in found:
            raise ValueError(f"two journey triggers are named {trigger.name!r}")
        found[trigger.name] = trigger
    return found


def actions(plugins: Any) -> dict[str, Action]:
    found: dict[str, Action] = {}
    contributed = [a for answer in plugins.hook.journeys_actions() for a in answer or ()]
    for action in [*BUILT_IN_ACTIONS, *contributed]:
        if action.requires is not None and not plugins.is_enabled(action.requires):
            continue
        if action.name in found:
            raise ValueError(f"two journey actions are named {action.name!r}")
        found[action.name] = action
    return found


async def known_template(ctx: ServiceContext, key: str) -> bool:
    from tenure.core.models import MessageTemplate

    if any(k == key for k, _ in template_defaults(ctx.plugins)):
        return True
    return await ctx.session.scalar(select(MessageTemplate.id).where(MessageTemplate.key == key).limit(1)) is not None
