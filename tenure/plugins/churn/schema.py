"""The churn plugin's root fields: warnings, segments, rules, the report, and their mutations."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.contributions import SchemaContribution
from tenure.core.errors import UserError as DomainUserError
from tenure.core.models import Role
from tenure.plugins.churn import rules, service
from tenure.plugins.churn.models import Segment, Warning
from tenure.plugins.churn.types import (
    ChurnCustomerFields,
    ChurnReport,
    ChurnRule,
    ChurnSegment,
    ChurnWarning,
    LevelCount,
    RiskLevel,
    WarningStatus,
)
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.relay import After, Before, Connection, First, Last, count_of, paginate
from tenure.schema.types.common import USER_ERRORS, UserError


@strawberry.input(description="Every condition given must hold.")
class ChurnWarningFilter:
    status: WarningStatus | None = strawberry.field(default=WarningStatus.OPEN, description="Null for all.")
    levels: list[RiskLevel] | None = strawberry.field(
        default=None, description="Warnings at any of these risk levels; null or empty for every level.")
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="Warnings about this customer.")


@strawberry.enum(description="What churn warnings can be sorted by.")
class ChurnWarningOrderField(Enum):
    SCORE = strawberry.enum_value("score", description="The health score when the warning was raised.")
    SINCE = strawberry.enum_value("since", description="When the warning was raised.")


@strawberry.input(description="How to sort churn warnings.")
class ChurnWarningOrderBy:
    field: ChurnWarningOrderField = strawberry.field(
        default=ChurnWarningOrderField.SCORE, description="What to sort by; SCORE unless given.")
    descending: bool = strawberry.field(default=False, description="Default: lowest score (worst) first.")


@strawberry.input(description="Change a rule; what is left out keeps its value.")
class SaveChurnRuleInput:
    kind: str = strawberry.field(description="The rule's name (ChurnRule.kind).")
    enabled: bool | None = strawberry.field(
        default=None, description="True switches the rule on, false off; null keeps it.")
    threshold: float | None = strawberry.field(
        default=None, description="Where the rule fires, in the unit ChurnRule.means says; null keeps it.")
    weight: int | None = strawberry.field(
        default=None, description="Points taken from the health score when the rule fires; null keeps it.")


@strawberry.input(description="The rule whose changes to forget.")
class DeleteChurnRuleInput:
    kind: str = strawberry.field(description="The rule's name (ChurnRule.kind).")


@strawberry.type(description="The result of saveChurnRule or deleteChurnRule.")
class ChurnRulePayload:
    rule: ChurnRule | None = strawberry.field(
        description="The rule with its settings after the change; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.input(description="Customers matching every condition given.")
class SegmentFilterInput:
    segments: list[str] | None = strawberry.field(
        default=None, description="RFM segments: champions, loyal, potential, at_risk, hibernating, lost.")
    stages: list[str] | None = strawberry.field(default=None,
                                                description="Lifecycle: new, active, silent, high_risk, lost.")
    levels: list[RiskLevel] | None = strawberry.field(default=None, description="Risk levels to include; null for any.")
    min_health: int | None = strawberry.field(
        default=None, description="The lowest health score included, 0-100; null for no lower bound.")
    max_health: int | None = strawberry.field(
        default=None, description="The highest health score included, 0-100; null for no upper bound.")

    def raw(self) -> dict[str, Any]:
        return {"segments": self.segments, "stages": self.stages,
                "levels": [lv.value for lv in self.levels] if self.levels else None,
                "minHealth": self.min_health, "maxHealth": self.max_health}


@strawberry.input(description="A saved segment: a new one, or changes to one (with id).")
class SaveSegmentInput:
    id: strawberry.ID | None = strawberry.field(default=None, description="Given: update that segment.")
    name: str = strawberry.field(description="The segment's name.")
    filter: SegmentFilterInput = strawberry.field(description="Which customers the segment holds.")


@strawberry.input(description="The saved segment to delete.")
class DeleteSegmentInput:
    id: strawberry.ID = strawberry.field(description="The segment's id.")


@strawberry.type(description="The result of saveSegment or deleteSegment.")
class SegmentPayload:
    segment: ChurnSegment | None = strawberry.field(
        description="The segment as saved; null when refused, and after deleteSegment.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


def _rule(r: rules.EffectiveRule) -> ChurnRule:
    return ChurnRule(kind=r.kind, enabled=r.enabled, threshold=r.threshold, means=r.means, plugin=r.plugin,
                     weight=r.weight, customised=r.customised)


def _input_error(error: DomainUserError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field})


@strawberry.type
class ChurnQuery:
    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")],
                      description="Churn warnings, worst score first by default.")
    async def churn_warnings(self, info: Info,
                             filter: Annotated[ChurnWarningFilter | None, strawberry.argument(
                                 description="Which warnings; null for the open ones.")] = None,
                             order_by: Annotated[ChurnWarningOrderBy | None, strawberry.argument(
                                 description="How to sort; null for the lowest score first.")] = None,
                             first: First = 20,
                             after: After = None, last: Last = None,
                             before: Before = None) -> Connection[ChurnWarning]:
        f = filter or ChurnWarningFilter()
        stmt = select(Warning)
        if f.status is not None:
            stmt = stmt.where(Warning.status == f.status.value)
        if f.levels:
            stmt = stmt.where(Warning.level.in_([lv.value for lv in f.levels]))
        if f.customer_id is not None:
            try:
                stmt = stmt.where(Warning.customer_id == parse_id(f.customer_id, "filter.customerId", "Customer"))
            except DomainUserError as error:
                raise _input_error(error) from None
        o = order_by or ChurnWarningOrderBy()
        column = Warning.score if o.field == ChurnWarningOrderField.SCORE else Warning.since

        async def run(query: Any) -> list[Any]:
            async with info.context.db() as session:
                return list((await session.execute(query)).all())

        async def count() -> int:
            async with info.context.db() as session:
                return int(await session.scalar(count_of(stmt)) or 0)

        return await paginate(run, stmt, [(column, o.descending), (Warning.id, o.descending)], first=first,
                              after=after, last=last, before=before, cap=info.context.settings.max_page_size,
                              count=count)

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")],
                      description="Saved segments, by name.")
    async def segments(self, info: Info) -> list[ChurnSegment]:
        async with info.context.db() as session:
            return list(await session.scalars(select(Segment).order_by(Segment.name)))

    @strawberry.field(permission_classes=[allow(*STAFF)], description="Every warning rule and its settings.")
    async def churn_rules(self, info: Info) -> list[ChurnRule]:
        async with info.context.db() as session:
            ctx = ServiceContext(session, info.context.settings, info.context.plugins)
            return [_rule(r) for r in (await rules.effective_rules(ctx)).values()]

    @strawberry.field(permission_classes=[allow(*STAFF, Role.INTEGRATION, scope="reports:read")],
                      description="Warnings raised from `from` to `to` and how many of those customers came back.")
    async def churn_report(self, info: Info,
                           from_: Annotated[datetime, strawberry.argument(
                               name="from", description="The start of the period, with a time zone.")],
                           to: Annotated[datetime, strawberry.argument(
                               description="The end of the period, with a time zone.")]) -> ChurnReport:
        async with info.context.db() as session:
            ctx = ServiceContext(session, info.context.settings, info.context.plugins)
            try:
                found = await service.report(ctx, from_, to)
            except DomainUserError as error:
                raise _input_error(error) from None
        return ChurnReport(warned=found.warned, came_back=found.came_back, recovered=found.recovered,
                           still_open=found.still_open, came_back_rate=found.came_back_rate,
                           by_level=[LevelCount(level=RiskLevel(k), count=v)
                                     for k, v in sorted(found.by_level.items())])


@strawberry.type
class ChurnMutation:
    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)],
                         description="Switch a warning rule on or off, or change its threshold or weight.")
    async def save_churn_rule(self, info: Info, input: Annotated[SaveChurnRuleInput, strawberry.argument(
            description="The rule and what to change.")]) -> ChurnRulePayload:
        rule, errors = await in_transaction(info, lambda ctx: rules.save_rule(
            ctx, input.kind, enabled=input.enabled, threshold=input.threshold, weight=input.weight))
        return ChurnRulePayload(rule=_rule(rule) if rule else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)],
                         description="Forget a rule's changes: it uses the settings' defaults again.")
    async def delete_churn_rule(self, info: Info, input: Annotated[DeleteChurnRuleInput, strawberry.argument(
            description="The rule.")]) -> ChurnRulePayload:
        rule, errors = await in_transaction(info, lambda ctx: rules.reset_rule(ctx, input.kind))
        return ChurnRulePayload(rule=_rule(rule) if rule else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Create or update a saved segment.")
    async def save_segment(self, info: Info, input: Annotated[SaveSegmentInput, strawberry.argument(
            description="The segment's name and filter, and its id to update one.")]) -> SegmentPayload:
        async def work(ctx: ServiceContext) -> Segment:
            segment_id = parse_id(input.id, "id", "ChurnSegment") if input.id is not None else None
            return await service.save_segment(ctx, input.name, input.filter.raw(), segment_id)

        segment, errors = await in_transaction(info, work)
        return SegmentPayload(segment=segment, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Delete a saved segment.")
    async def delete_segment(self, info: Info, input: Annotated[DeleteSegmentInput, strawberry.argument(
            description="The segment.")]) -> SegmentPayload:
        _, errors = await in_transaction(info, lambda ctx: service.delete_segment(ctx, parse_id(input.id, "id",
                                                                                                "ChurnSegment")))
        return SegmentPayload(segment=None, user_errors=errors)


def contribution() -> SchemaContribution:
    return SchemaContribution(query=ChurnQuery, mutation=ChurnMutation, extends={"Customer": ChurnCustomerFields})
