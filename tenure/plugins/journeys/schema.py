"""The journeys plugin's GraphQL: journeys with their figures, the preview, the catalogue
of triggers, actions and templates, the mutations, and ``Customer.journeyEntries``.

Reading needs the ``journeys:read`` scope on a scoped integration key, changing
``journeys:write``; staff and admins may do both."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import clock
from tenure.core.contributions import SchemaContribution
from tenure.core.errors import UserError as DomainError
from tenure.plugins.journeys import catalog, figures, service
from tenure.plugins.journeys.definition import JourneyData, StepData
from tenure.plugins.journeys.models import Entry, Journey
from tenure.plugins.journeys.templates import TEMPLATES
from tenure.schema import loaders
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, allow
from tenure.schema.queries import to_int
from tenure.schema.relay import Node, node, to_global_id
from tenure.schema.types.common import JSON, USER_ERRORS, UserError

READ = allow(*BACKOFFICE, scope="journeys:read")
WRITE = allow(*BACKOFFICE, scope="journeys:write")


@strawberry.enum(description="Whether a journey runs.")
class JourneyStatus(Enum):
    ACTIVE = strawberry.enum_value("active", description="Customers enter and steps run.")
    PAUSED = strawberry.enum_value("paused", description="Nobody enters and no step runs until resumed.")


@strawberry.type(description="A step: a wait, then an action.")
class JourneyStep:
    position: int = strawberry.field(description="1 for the first step.")
    wait: str = strawberry.field(description="ISO 8601 duration after the previous step (or the entry): P3D.")
    at: str | None = strawberry.field(description="Time of day (HH:MM, business time zone) the step lands on.")
    action: str = strawberry.field(description="What the step does: a name from journeyActions.")
    params: JSON = strawberry.field(description="The action's settings, as a JSON object (journeyActions says which).")


@strawberry.type(description="Conditions a customer must meet to enter (all of them).")
class JourneyConditions:
    tags: list[str] = strawberry.field(description="Has every one of these tags.")
    without_tags: list[str] = strawberry.field(description="Has none of these tags.")
    tiers: list[str] = strawberry.field(description="Is in one of these tiers (tiers plugin).")
    channels: list[str] = strawberry.field(description="Came from one of these source channels.")
    consent: list[str] = strawberry.field(description="Has given each of these consents (email, sms, push).")


@strawberry.type(description="How many passed one step.")
class JourneyStepFigures:
    position: int = strawberry.field(description="The step's position, 1 for the first.")
    action: str = strawberry.field(description="What the step does.")
    done: int = strawberry.field(description="Entries for which the step's action ran.")
    skipped: int = strawberry.field(description="Reached but not acted on (no consent, late, plugin off).")


@strawberry.type(description="What a journey did, against its holdout.")
class JourneyFigures:
    entered: int = strawberry.field(description="Entries, the holdout included.")
    held_out: int = strawberry.field(description="Entries kept out on purpose: no step runs for them.")
    active: int = strawberry.field(description="Entries still on their way through the steps.")
    completed: int = strawberry.field(description="Entries that went through every step.")
    exited: int = strawberry.field(description="Left early on an exit condition.")
    steps: list[JourneyStepFigures] = strawberry.field(description="The same per step, first step first.")
    converted: int = strawberry.field(description="Treated entries that ordered within conversionDays.")
    holdout_converted: int = strawberry.field(description="Held-out entries that ordered within conversionDays.")
    conversion_rate: float | None = strawberry.field(
        description="Converted / treated entries (0-1); null without treated entries.")
    holdout_conversion_rate: float | None = strawberry.field(
        description="HoldoutConverted / heldOut (0-1); null without held-out entries.")
    lift: float | None = strawberry.field(
        description="ConversionRate minus holdoutConversionRate: the journey's effect; null when either is null.")


@strawberry.type(name="Journey", description="Automation a business designs: trigger, conditions, steps, exits.")
@node(Journey, READ)
class JourneyType(Node):
    name: str = strawberry.field(description="The journey's name.")
    description: str = strawberry.field(description="What the journey is for, in words.")
    trigger: str = strawberry.field(description="A name from journeyTriggers.")
    holdout_percent: int = strawberry.field(description="Share of entrants kept out to measure the lift.")
    conversion_days: int = strawberry.field(description="An entrant converts by ordering within this many days.")
    template: str | None = strawberry.field(description="The shipped template it was started from.")
    version: int = strawberry.field(description="1 when created; each edit adds one.")
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it was last changed.")

    @strawberry.field(description="Whether it runs.")
    def status(self: Journey) -> JourneyStatus:
        return JourneyStatus(self.status)

    @strawberry.field(description="The trigger's settings, as a JSON object.")
    def trigger_params(self: Journey) -> JSON:
        return cast(JSON, dict(self.trigger_params or {}))

    @strawberry.field(description="Who may enter.")
    def conditions(self: Journey) -> JourneyConditions:
        c = self.conditions or {}
        return JourneyConditions(tags=c.get("tags", []), without_tags=c.get("without_tags", []),
                                 tiers=c.get("tiers", []), channels=c.get("channels", []),
                                 consent=c.get("consent", []))

    @strawberry.field(description="The steps, first step first.")
    def steps(self: Journey) -> list[JourneyStep]:
        return [JourneyStep(position=n + 1, wait=s["wait"], at=s.get("at"), action=s["action"],
                            params=cast(JSON, s.get("params") or {})) for n, s in enumerate(self.steps)]

    @strawberry.field(description="Exit conditions: ordered, warning_resolved.")
    def exits(self: Journey) -> list[str]:
        return list(self.exits or [])

    @strawberry.field(description="Entries, steps done and skipped, conversions and the lift.")
    async def figures(self: Journey, info: Info) -> JourneyFigures:
        async with info.context.db() as session:
            f = await figures.figures(session, self)
        return JourneyFigures(
            entered=f.entered, held_out=f.held_out, active=f.active, completed=f.completed, exited=f.exited,
            steps=[JourneyStepFigures(position=s.position, action=s.action, done=s.done, skipped=s.skipped)
                   for s in f.steps],
            converted=f.converted, holdout_converted=f.holdout_converted, conversion_rate=f.conversion_rate,
            holdout_conversion_rate=f.holdout_conversion_rate, lift=f.lift)


@strawberry.type(description="Who would have entered over the last days; nothing was written or sent.")
class JourneyPreview:
    days: int = strawberry.field(description="How many days back it looked.")
    entries: int = strawberry.field(description="Trigger occurrences that meet the conditions now.")
    customers: int = strawberry.field(description="Different customers among those entries.")
    held_out: int = strawberry.field(description="Of those customers, how many the holdout would keep out.")
    sample_customer_ids: list[strawberry.ID] = strawberry.field(description="Up to 20, lowest id first.")


@strawberry.type(description="A way into a journey.")
class JourneyTrigger:
    name: str = strawberry.field(description="The trigger's name, for CreateJourneyInput.trigger.")
    description: str = strawberry.field(description="What starts it, in words.")
    event_type: str | None = strawberry.field(description="The event-log type it starts on, if an event.")
    kind: str = strawberry.field(description="What starts it: `order`, `event`, `date` or `segment`.")


@strawberry.type(description="What a step can do.")
class JourneyAction:
    name: str = strawberry.field(description="The action's name, for JourneyStepInput.action.")
    description: str = strawberry.field(description="What it does and the params it takes, in words.")


@strawberry.type(description="A shipped journey, switched on with startJourneyTemplate.")
class JourneyTemplate:
    key: str = strawberry.field(description="The template's key, for startJourneyTemplate.")
    name: str = strawberry.field(description="The journey's name.")
    description: str = strawberry.field(description="What the journey does, in words.")
    trigger: str = strawberry.field(description="The trigger it starts on.")
    available: bool = strawberry.field(description="False when a plugin it needs is off.")


@strawberry.type(name="JourneyEntry", description="A customer in a journey for one trigger occurrence.")
class JourneyEntryType:
    entered_at: datetime = strawberry.field(description="When the customer entered.")
    holdout: bool = strawberry.field(description="True when kept out to measure the lift: no step runs.")
    due_at: datetime | None = strawberry.field(description="When the next step is due.")
    exit_reason: str | None = strawberry.field(
        description="Why the entry left early (an exit condition); null unless exited.")
    finished_at: datetime | None = strawberry.field(description="When it completed or exited; null while active.")

    @strawberry.field(description="Where the entry stands: `active`, `completed`, `exited` or `held_out`.")
    def status(self: Entry) -> str:
        return self.status

    @strawberry.field(description="The next step's position (1 for the first) while active; else null.")
    def next_step(self: Entry) -> int | None:
        return self.next_step + 1 if self.status == "active" else None

    @strawberry.field(description="The journey.")
    async def journey(self: Entry, info: Info) -> JourneyType:
        return await info.context.loader(loaders.by_id_cached(Journey)).load(self.journey_id)


@strawberry.input(description="Every condition given must hold when the customer would enter.")
class JourneyConditionsInput:
    tags: list[str] | None = strawberry.field(default=None, description="The customer has every one of these tags.")
    without_tags: list[str] | None = strawberry.field(default=None, description="The customer has none of these tags.")
    tiers: list[str] | None = strawberry.field(
        default=None, description="The customer is in one of these tiers (tiers plugin).")
    channels: list[str] | None = strawberry.field(
        default=None, description="The customer came from one of these source channels.")
    consent: list[str] | None = strawberry.field(default=None, description="email, sms, push.")


@strawberry.input(description="A wait, then an action. journeyActions lists the actions and their params.")
class JourneyStepInput:
    action: str = strawberry.field(description="What the step does: a name from journeyActions.")
    wait: str = strawberry.field(default="P0D", description="ISO 8601 duration: P3D, PT2H, P1M.")
    at: str | None = strawberry.field(default=None, description="HH:MM in the business time zone.")
    params: JSON = strawberry.field(
        default_factory=dict, description="The action's settings, as a JSON object (journeyActions says which).")


@strawberry.input(description="A new journey.")
class CreateJourneyInput:
    name: str = strawberry.field(description="The journey's name.")
    trigger: str = strawberry.field(description="A name from journeyTriggers.")
    steps: list[JourneyStepInput] = strawberry.field(description="The steps, in order: at least one.")
    description: str = strawberry.field(default="", description="What the journey is for, in words.")
    trigger_params: JSON = strawberry.field(
        default_factory=dict, description="The trigger's settings, as a JSON object.")
    conditions: JourneyConditionsInput | None = strawberry.field(
        default=None, description="Who may enter; null for every customer the trigger finds.")
    exits: list[str] = strawberry.field(default_factory=list, description="ordered, warning_resolved.")
    holdout_percent: int | None = strawberry.field(default=None, description="0-50; TENURE_JOURNEYS_HOLDOUT_PERCENT.")
    conversion_days: int | None = strawberry.field(
        default=None, description="An entrant converts by ordering within this many days; null for the default "
                                  "(TENURE_JOURNEYS_CONVERSION_DAYS).")
    paused: bool = strawberry.field(default=False, description="Create it paused: preview it, then resume it.")


@strawberry.input(description="Fields left out stay as they are.")
class UpdateJourneyInput:
    id: strawberry.ID = strawberry.field(description="The journey's id.")
    name: str | None = strawberry.field(default=None, description="The new name.")
    description: str | None = strawberry.field(default=None, description="The new description.")
    trigger: str | None = strawberry.field(default=None, description="The new trigger, a name from journeyTriggers.")
    trigger_params: JSON | None = strawberry.field(default=None, description="The trigger's new settings.")
    conditions: JourneyConditionsInput | None = strawberry.field(default=None, description="The new conditions.")
    steps: list[JourneyStepInput] | None = strawberry.field(
        default=None, description="The new steps, replacing every step.")
    exits: list[str] | None = strawberry.field(
        default=None, description="The new exit conditions: ordered, warning_resolved.")
    holdout_percent: int | None = strawberry.field(default=None, description="The new holdout share, 0-50.")
    conversion_days: int | None = strawberry.field(default=None, description="The new conversion window in days.")


@strawberry.input(description="A shipped journey to switch on.")
class StartJourneyTemplateInput:
    template: str = strawberry.field(description="A key from journeyTemplates.")
    name: str | None = strawberry.field(default=None, description="The journey's name; null for the template's.")
    holdout_percent: int | None = strawberry.field(
        default=None, description="The holdout share, 0-50; null for TENURE_JOURNEYS_HOLDOUT_PERCENT.")
    paused: bool = strawberry.field(default=False, description="Start it paused, to preview it first.")


@strawberry.type(description="The result of createJourney, updateJourney, pauseJourney, resumeJourney or "
                             "startJourneyTemplate.")
class JourneyPayload:
    journey: JourneyType | None = strawberry.field(description="The journey after the change; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


def _conditions(given: JourneyConditionsInput | None) -> dict[str, Any] | None:
    if given is None:
        return None
    return {name: value for name in ("tags", "without_tags", "tiers", "channels", "consent")
            if (value := getattr(given, name)) is not None}


def _steps(given: list[JourneyStepInput] | None) -> list[StepData] | None:
    if given is None:
        return None
    return [StepData(action=s.action, wait=s.wait, at=s.at, params=s.params) for s in given]


def _kind(trigger: Any) -> str:
    if trigger.name in catalog.ORDER_TRIGGERS:
        return "order"
    if trigger.name == catalog.SEGMENT_TRIGGER:
        return "segment"
    return "event" if trigger.event_type else "date"


def _payload(result: tuple[Any, list[UserError]]) -> JourneyPayload:
    return JourneyPayload(journey=result[0], user_errors=result[1])


@strawberry.type
class JourneysQuery:
    @strawberry.field(permission_classes=[READ], description="Every journey, oldest first.")
    async def journeys(self, info: Info) -> list[JourneyType]:
        async with info.context.db() as session:
            return list(await session.scalars(select(Journey).order_by(Journey.id)))

    @strawberry.field(permission_classes=[READ], description="One journey; null when no journey has this id.")
    async def journey(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The journey's id.")]) -> JourneyType | None:
        async with info.context.db() as session:
            return await session.get(Journey, to_int(id, "id", "Journey"))

    @strawberry.field(permission_classes=[READ],
                      description="Who would have entered over the last `days` days (1-366), with the conditions "
                                  "as they are now; nothing is written or sent.")
    async def journey_preview(self, info: Info,
                              id: Annotated[strawberry.ID, strawberry.argument(description="The journey's id.")],
                              days: Annotated[int, strawberry.argument(
                                  description="How many days back to look, 1-366.")] = 30) -> JourneyPreview:
        journey_id = to_int(id, "id", "Journey")
        try:
            async with info.context.db() as session:
                journey = await session.get(Journey, journey_id)
                if journey is None:
                    raise DomainError(f"no journey with id {journey_id}", "id", "not_found")
                p = await figures.preview(session, info.context.plugins, info.context.settings.zone, journey,
                                          days=days, now=clock.now())
        except DomainError as error:
            raise GraphQLError(f"{error.field}: {error.message}",
                               extensions={"code": "BAD_USER_INPUT", "field": error.field}) from None
        return JourneyPreview(days=p.days, entries=p.entries, customers=p.customers, held_out=p.held_out,
                              sample_customer_ids=[to_global_id("Customer", c) for c in p.sample_customer_ids])

    @strawberry.field(permission_classes=[READ], description="Triggers of the plugins that are on.")
    def journey_triggers(self, info: Info) -> list[JourneyTrigger]:
        return [JourneyTrigger(name=t.name, description=t.description, event_type=t.event_type,
                               kind=_kind(t)) for t in catalog.triggers(info.context.plugins).values()]

    @strawberry.field(permission_classes=[READ], description="Actions of the plugins that are on.")
    def journey_actions(self, info: Info) -> list[JourneyAction]:
        return [JourneyAction(name=a.name, description=a.description)
                for a in catalog.actions(info.context.plugins).values()]

    @strawberry.field(permission_classes=[READ],
                      description="The shipped journeys, and whether the plugins each needs are on.")
    def journey_templates(self, info: Info) -> list[JourneyTemplate]:
        plugins = info.context.plugins
        return [JourneyTemplate(key=t.key, name=t.name, description=t.description, trigger=t.trigger,
                                available=t.requires is None or plugins.is_enabled(t.requires))
                for t in TEMPLATES.values()]


@strawberry.type
class JourneysMutation:
    @strawberry.mutation(permission_classes=[WRITE],
                         description="Create a journey; it runs at once unless created paused.")
    async def create_journey(self, info: Info, input: Annotated[CreateJourneyInput, strawberry.argument(
            description="The journey.")]) -> JourneyPayload:
        data = JourneyData(name=input.name, description=input.description, trigger=input.trigger,
                           trigger_params=input.trigger_params,
                           conditions=_conditions(input.conditions), steps=_steps(input.steps), exits=input.exits,
                           holdout_percent=input.holdout_percent, conversion_days=input.conversion_days)
        return _payload(await in_transaction(info, lambda ctx: service.create_journey(ctx, data,
                                                                                        paused=input.paused)))

    @strawberry.mutation(permission_classes=[WRITE],
                         description="Customers in the journey go on from their step under the new definition.")
    async def update_journey(self, info: Info, input: Annotated[UpdateJourneyInput, strawberry.argument(
            description="The journey and what to change.")]) -> JourneyPayload:
        data = JourneyData(name=input.name, description=input.description, trigger=input.trigger,
                           trigger_params=input.trigger_params,
                           conditions=_conditions(input.conditions), steps=_steps(input.steps), exits=input.exits,
                           holdout_percent=input.holdout_percent, conversion_days=input.conversion_days)
        return _payload(await in_transaction(info, lambda ctx: service.update_journey(
            ctx, parse_id(input.id, "id", "Journey"), data)))

    @strawberry.mutation(permission_classes=[WRITE], description="Nobody enters and no step runs until resumed.")
    async def pause_journey(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The journey's id.")]) -> JourneyPayload:
        return _payload(await in_transaction(
            info, lambda ctx: service.pause_journey(ctx, parse_id(id, "id", "Journey"))))

    @strawberry.mutation(permission_classes=[WRITE], description="Triggers count again from now.")
    async def resume_journey(self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(
            description="The journey's id.")]) -> JourneyPayload:
        return _payload(await in_transaction(
            info, lambda ctx: service.resume_journey(ctx, parse_id(id, "id", "Journey"))))

    @strawberry.mutation(permission_classes=[WRITE], description="Switch on a shipped journey.")
    async def start_journey_template(self, info: Info, input: Annotated[StartJourneyTemplateInput, strawberry.argument(
            description="The template, and the name and holdout to start it with.")]) -> JourneyPayload:
        return _payload(await in_transaction(info, lambda ctx: service.start_template(
            ctx, input.template, name=input.name, holdout_percent=input.holdout_percent, paused=input.paused)))


_entries_by_customer = loaders.grouped(Entry, Entry.customer_id, "journeys_entries_by_customer")


@strawberry.type
class CustomerJourneys:
    @strawberry.field(description="The journeys the customer entered, latest first.")
    async def journey_entries(self: Any, info: Info) -> list[JourneyEntryType]:
        rows = await info.context.loader(_entries_by_customer).load(self.id)
        return sorted(rows, key=lambda e: e.id, reverse=True)


def contribution() -> SchemaContribution:
    return SchemaContribution(query=JourneysQuery, mutation=JourneysMutation, extends={"Customer": CustomerJourneys})
