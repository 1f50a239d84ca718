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
from tenure.schema.relay import Connection, count_of, paginate
from tenure.schema.types.common import UserError


@strawberry.input(description="Every condition given must hold.")
class ChurnWarningFilter:
    status: WarningStatus | None = strawberry.field(default=WarningStatus.OPEN, description="Null for all.")
    levels: list[RiskLevel] | None = None
    customer_id: strawberry.ID | None = None


@strawberry.enum
class ChurnWarningOrderField(Enum):
    SCORE = "score"
    SINCE = "since"


@strawberry.input
class ChurnWarningOrderBy:
    field: ChurnWarningOrderField = ChurnWarningOrderField.SCORE
    descending: bool = strawberry.field(default=False, description="Default: lowest score (worst) first.")


@strawberry.input(description="Change a rule; what is left out keeps its value.")
class SaveChurnRuleInput:
    kind: str
    enabled: bool | None = None
    threshold: float | None = None
    weight: int | None = None


@strawberry.input
class DeleteChurnRuleInput:
    kind: str


@strawberry.type
class ChurnRulePayload:
    rule: ChurnRule | None
    user_errors: list[UserError]


@strawberry.input(description="Customers matching every condition given.")
class SegmentFilterInput:
    segments: list[str] | None = strawberry.field(
        default=None, description="RFM segments: champions, loyal, potential, at_risk, hibernating, lost.")
    stages: list[str] | None = strawberry.field(default=None,
                                                description="Lifecycle: new, active, silent, high_risk, lost.")
    levels: list[RiskLevel] | None = None
    min_health: int | None = None
    max_health: int | None = None

    def raw(self) -> dict[str, Any]:
        return {"segments": self.segments, "stages": self.stages,
                "levels": [lv.value for lv in self.levels] if self.levels else None,
                "minHealth": self.min_health, "maxHealth": self.max_health}


@strawberry.input
class SaveSegmentInput:
    id: strawberry.ID | None = strawberry.field(default=None, description="Given: update that segment.")
    name: str
    filter: SegmentFilterInput


@strawberry.input
class DeleteSegmentInput:
    id: strawberry.ID


@strawberry.type
class SegmentPayload:
    segment: ChurnSegment | None
    user_errors: list[UserError]


def _rule(r: rules.EffectiveRule) -> ChurnRule:
    return ChurnRule(kind=r.kind, enabled=r.enabled, threshold=r.threshold, means=r.means, plugin=r.plugin,
                     weight=r.weight, customised=r.customised)


def _input_error(error: DomainUserError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field})


@strawberry.type
class ChurnQuery:
    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")],
                      description="Churn warnings, worst score first by default.")
    async def churn_warnings(self, info: Info, filter: ChurnWarningFilter | None = None,
                             order_by: ChurnWarningOrderBy | None = None, first: int = 20,
                             after: str | None = None) -> Connection[ChurnWarning]:
        f = filter or ChurnWarningFilter()
        stmt = select(Warning)
        if f.status is not None:
            stmt = stmt.where(Warning.status == f.status.value)
        if f.levels:
            stmt = stmt.where(Warning.level.in_([lv.value for lv in f.levels]))
        if f.customer_id is not None:
            try:
                stmt = stmt.where(Warning.customer_id == parse_id(f.customer_id, "filter.customerId"))
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
                              after=after, cap=info.context.settings.max_page_size, count=count)

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
    async def churn_report(self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")],
                           to: datetime) -> ChurnReport:
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
    async def save_churn_rule(self, info: Info, input: SaveChurnRuleInput) -> ChurnRulePayload:
        rule, errors = await in_transaction(info, lambda ctx: rules.save_rule(
            ctx, input.kind, enabled=input.enabled, threshold=input.threshold, weight=input.weight))
        return ChurnRulePayload(rule=_rule(rule) if rule else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(Role.ADMIN)],
                         description="Forget a rule's changes: it uses the settings' defaults again.")
    async def delete_churn_rule(self, info: Info, input: DeleteChurnRuleInput) -> ChurnRulePayload:
        rule, errors = await in_transaction(info, lambda ctx: rules.reset_rule(ctx, input.kind))
        return ChurnRulePayload(rule=_rule(rule) if rule else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Create or update a saved segment.")
    async def save_segment(self, info: Info, input: SaveSegmentInput) -> SegmentPayload:
        async def work(ctx: ServiceContext) -> Segment:
            segment_id = parse_id(input.id, "id") if input.id is not None else None
            return await service.save_segment(ctx, input.name, input.filter.raw(), segment_id)

        segment, errors = await in_transaction(info, work)
        return SegmentPayload(segment=segment, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def delete_segment(self, info: Info, input: DeleteSegmentInput) -> SegmentPayload:
        _, errors = await in_transaction(info, lambda ctx: service.delete_segment(ctx, parse_id(input.id, "id")))
        return SegmentPayload(segment=None, user_errors=errors)


def contribution() -> SchemaContribution:
    return SchemaContribution(query=ChurnQuery, mutation=ChurnMutation, extends={"Customer": ChurnCustomerFields})
