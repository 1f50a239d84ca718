"""The churn plugin's GraphQL types, the fields it adds to ``Customer``, and their loaders.

``Customer.churnRisk`` and ``Customer.rfm`` read through per-request loaders: a page of 100
customers costs one statement for their scores and open warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import and_, select
from strawberry.types import Info

from tenure.core import clock, models
from tenure.core.context import ServiceContext
from tenure.core.reads import Read
from tenure.plugins.churn import service
from tenure.plugins.churn.models import Score, Segment, Warning
from tenure.plugins.churn.rules import EffectiveRule, effective_rules
from tenure.plugins.churn.settings import churn_settings
from tenure.schema import loaders
from tenure.schema.context import Context
from tenure.schema.permissions import BACKOFFICE, allow
from tenure.schema.relay import After, Before, Connection, First, Last, Node, id_of, node, paginate
from tenure.schema.types.common import Long
from tenure.schema.types.core import Customer, Task

_SCORES = Read(lambda keys: (
    select(Score, Warning)
    .outerjoin(Warning, and_(Warning.customer_id == Score.customer_id, Warning.status == "open"))
    .where(keys(Score.customer_id))))


async def scores_by_customer(context: Context, keys: Sequence[int]) -> list[tuple[Score, Warning | None] | None]:
    """Each customer's score with its open warning (at most one is open), in one statement
    whether or not any customer of the page has a warning."""
    found = {score.customer_id: (score, warning) for score, warning in await loaders.fetch(context, _SCORES, keys)}
    return [found.get(k) for k in keys]


async def rules_in_use(context: Context, keys: Sequence[int]) -> list[dict[str, EffectiveRule]]:
    """The rules (read once per request): a reason's words depend on its rule's threshold."""
    async with context.db() as session:
        found = await effective_rules(ServiceContext(session, context.settings, context.plugins))
    return [found for _ in keys]


@strawberry.enum(description="How likely the customer is to leave: LOW at or above the threshold.")
class RiskLevel(Enum):
    LOW = strawberry.enum_value(
        "low", description="Healthy: the score is at or above the warning threshold (TENURE_CHURN_THRESHOLD).")
    MEDIUM = strawberry.enum_value("medium", description="Below the warning threshold: worth a look.")
    HIGH = strawberry.enum_value(
        "high", description="Below the high-risk bar (TENURE_CHURN_HIGH_RISK_BELOW): likely to leave.")


@strawberry.type(description="The customer's health as the last rescore saw it.")
class ChurnRisk:
    score: int = strawberry.field(description="Health, 0-100: 100 is nothing wrong.")
    level: RiskLevel = strawberry.field(description="The band the score falls in.")
    since: datetime | None = strawberry.field(description="When the open warning was raised; null with none open.")
    scored_at: datetime = strawberry.field(
        description="When a rescore last changed this score; one that finds it unchanged leaves it.")
    of: strawberry.Private[Score]

    @strawberry.field(description="What lowered the score, in words.")
    async def reasons(self, info: Info) -> list[str]:
        rules = await info.context.loader(rules_in_use).load(0)
        return service.reasons(self.of, clock.now(), rules)


@strawberry.type(description="Recency, frequency and monetary value over the RFM window, scored 1-5 by quintiles "
                             "of the active base; null scores for customers who did not order in the window.")
class Rfm:
    recency_days: int | None = strawberry.field(description="Days since the last order.")
    frequency: int = strawberry.field(description="Orders in the window.")
    monetary: Long = strawberry.field(description="Net spend in the window, minor units.")
    r: int | None = strawberry.field(
        description="Recency score, 1-5: 5 ordered most recently; null outside the window.")
    f: int | None = strawberry.field(description="Frequency score, 1-5: 5 ordered most often; null outside the window.")
    m: int | None = strawberry.field(description="Monetary score, 1-5: 5 spent the most; null outside the window.")
    segment: str | None = strawberry.field(
        description="The RFM segment: champions, loyal, potential, at_risk, hibernating or lost; null if never "
                    "ordered.")
    stage: str | None = strawberry.field(
        description="The lifecycle stage: new, active, silent, high_risk or lost; null if never ordered.")


def risk_of(score: Score, warning: Warning | None, info: Info) -> ChurnRisk:
    cfg = churn_settings(info.context.settings)
    return ChurnRisk(score=score.health, level=RiskLevel(service.level_of(score.health, cfg)),
                     since=warning.since if warning else None, scored_at=score.scored_at, of=score)


@strawberry.type
class ChurnCustomerFields:
    @strawberry.field(description="The health score, risk level and reasons; null before the first rescore.")
    async def churn_risk(self: models.Customer, info: Info) -> ChurnRisk | None:
        found = await info.context.loader(scores_by_customer).load(self.id)
        if found is None:
            return None
        score, warning = found
        return risk_of(score, warning, info)

    @strawberry.field(description="RFM figures, scores, segment and lifecycle stage; null before the first rescore.")
    async def rfm(self: models.Customer, info: Info) -> Rfm | None:
        found = await info.context.loader(scores_by_customer).load(self.id)
        if found is None:
            return None
        s = found[0]
        return Rfm(recency_days=s.days_since_order(clock.now()), frequency=s.frequency, monetary=s.monetary,
                   r=s.r, f=s.f, m=s.m, segment=s.segment, stage=s.stage)


@strawberry.enum(description="Whether a churn warning is still open.")
class WarningStatus(Enum):
    OPEN = strawberry.enum_value("open", description="The customer's health is still below the threshold.")
    RESOLVED = strawberry.enum_value(
        "resolved", description="Closed: the health recovered, or the customer ordered again (cameBack).")


@strawberry.type(description="A churn warning: one episode of a customer's health below the threshold.")
@node(Warning, allow(*BACKOFFICE, scope="customers:read"))
class ChurnWarning(Node):
    score: int = strawberry.field(description="The health score when the warning was raised, 0-100.")
    since: datetime = strawberry.field(description="When it was raised.")
    resolved_at: datetime | None = strawberry.field(description="When it was resolved; null while open.")
    came_back: bool = strawberry.field(description="Resolved because the customer ordered again.")

    @strawberry.field(description="Whether it is still open.")
    def status(self: Warning) -> WarningStatus:
        return WarningStatus(self.status)

    @strawberry.field(description="The risk level when it was raised.")
    def level(self: Warning) -> RiskLevel:
        return RiskLevel(self.level)

    @strawberry.field(description="Why it was raised, in words.")
    def reasons(self: Warning) -> list[str]:
        return list(self.reasons)

    task_id: strawberry.ID | None = id_of("Task", "task_id", deprecation_reason="Use `task`, the task itself.",
                                          description="The global id of the follow-up task opened for the owner.")

    @strawberry.field(description="The follow-up task opened for the owner, when one was.")
    async def task(self: Warning, info: Info) -> Task | None:
        if self.task_id is None:
            return None
        return await info.context.loader(loaders.by_id_cached(models.Task)).load(self.task_id)

    @strawberry.field(description="The customer it is about.")
    async def customer(self: Warning, info: Info) -> Customer:
        return await info.context.loader(loaders.customers_by_id).load(self.customer_id)


@strawberry.type(description="A warning rule and its current settings.")
class ChurnRule:
    kind: str = strawberry.field(description="The rule's name: the churn plugin's own, or a plugin's signal.")
    enabled: bool = strawberry.field(description="Whether the rule takes part in scoring.")
    threshold: float = strawberry.field(description="Where the rule fires; `means` says in what.")
    means: str = strawberry.field(description="What the threshold measures, in words.")
    plugin: str = strawberry.field(description="The plugin whose signal this is (churn for its own rules).")
    weight: int = strawberry.field(description="Points taken from the health score when the rule fires.")
    customised: bool = strawberry.field(description="Changed through the API (else the settings' defaults).")


@strawberry.type(description="A saved filter over the churn scores.")
class SegmentFilter:
    segments: list[str] | None = strawberry.field(
        description="RFM segments to include, such as `at_risk`; null for any.")
    stages: list[str] | None = strawberry.field(
        description="Lifecycle stages to include, such as `silent`; null for any.")
    levels: list[str] | None = strawberry.field(
        description="Risk levels to include: `low`, `medium` or `high`; null for any.")
    min_health: int | None = strawberry.field(
        description="The lowest health score included, 0-100; null for no lower bound.")
    max_health: int | None = strawberry.field(
        description="The highest health score included, 0-100; null for no upper bound.")


@strawberry.type(description="A saved segment: a named filter; `customers` lists who is in it now.")
@node(Segment, allow(*BACKOFFICE, scope="customers:read"))
class ChurnSegment(Node):
    name: str = strawberry.field(description="The segment's name.")
    created_at: datetime = strawberry.field(description="When it was saved.")

    @strawberry.field(description="Which customers the segment holds.")
    def filter(self: Segment) -> SegmentFilter:
        f: dict[str, Any] = self.filter
        return SegmentFilter(segments=f.get("segments"), stages=f.get("stages"), levels=f.get("levels"),
                             min_health=f.get("minHealth"), max_health=f.get("maxHealth"))

    @strawberry.field(description="Customers in the segment, by id.")
    async def customers(self: Segment, info: Info, first: First = 20, after: After = None, last: Last = None,
                        before: Before = None) -> Connection[Customer]:
        cfg = churn_settings(info.context.settings)
        stmt = (select(models.Customer).join(Score, Score.customer_id == models.Customer.id)
                .where(service.segment_condition(self.filter, cfg)))

        async def run(query: Any) -> list[Any]:
            async with info.context.db() as session:
                return list((await session.execute(query)).all())

        async def count() -> int:
            from tenure.schema.relay import count_of

            async with info.context.db() as session:
                return int(await session.scalar(count_of(stmt)) or 0)

        return await paginate(run, stmt, [(models.Customer.id, False)], first=first, after=after,
                              last=last, before=before,
                              cap=info.context.settings.max_page_size, count=count)


@strawberry.type(description="Level and how many warnings were raised at it.")
class LevelCount:
    level: RiskLevel = strawberry.field(description="The risk level.")
    count: int = strawberry.field(description="How many warnings were raised at it.")


@strawberry.type(description="Warnings raised in a period and what became of them.")
class ChurnReport:
    warned: int = strawberry.field(description="Warnings raised in the period.")
    came_back: int = strawberry.field(description="Resolved because the customer ordered again.")
    recovered: int = strawberry.field(description="Resolved because the score recovered without an order.")
    still_open: int = strawberry.field(description="Of those, warnings still open.")
    came_back_rate: float | None = strawberry.field(description="CameBack / warned x 100; null when none was warned.")
    by_level: list[LevelCount] = strawberry.field(description="Warnings raised in the period, by risk level.")
