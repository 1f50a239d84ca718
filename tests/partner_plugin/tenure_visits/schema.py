"""The plugin's GraphQL: the Visit type, fields on Customer, and recordVisit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import func, select
from strawberry.types import Info

from tenure.plugin import BACKOFFICE, Customer, Node, ServiceContext, allow, in_transaction, node, parse_id
from tenure.plugin import UserErrorType as UserError
from tenure_visits import service
from tenure_visits.models import Visit


@strawberry.type(name="Visit", description="A customer's visit to a venue.")
@node(Visit, allow(*BACKOFFICE))
class VisitType(Node):
    venue: str
    visited_at: datetime
    thanked_at: datetime | None = strawberry.field(description="When the thank-you went out; null until then.")


async def visits_by_customer(context: Any, customer_ids: Sequence[int]) -> list[list[Visit]]:
    async with context.db() as session:
        rows = await session.scalars(select(Visit).where(Visit.customer_id.in_(customer_ids))
                                     .order_by(Visit.visited_at.desc(), Visit.id.desc()))
    found: dict[int, list[Visit]] = defaultdict(list)
    for row in rows:
        found[row.customer_id].append(row)
    return [found[c] for c in customer_ids]


async def visit_counts(context: Any, customer_ids: Sequence[int]) -> list[int]:
    async with context.db() as session:
        rows = await session.execute(select(Visit.customer_id, func.count()).where(Visit.customer_id.in_(customer_ids))
                                     .group_by(Visit.customer_id))
        counts = {cid: int(n) for cid, n in rows}
    return [counts.get(c, 0) for c in customer_ids]


@strawberry.type
class CustomerVisits:
    @strawberry.field(description="The customer's visits, newest first.")
    async def visits(self: Customer, info: Info) -> list[VisitType]:
        return await info.context.loader(visits_by_customer).load(self.id)  # type: ignore[no-any-return]

    @strawberry.field(description="How many times the customer came.")
    async def visit_count(self: Customer, info: Info) -> int:
        return await info.context.loader(visit_counts).load(self.id)  # type: ignore[no-any-return]


@strawberry.input
class RecordVisitInput:
    customer_id: strawberry.ID
    venue: str
    external_id: str = strawberry.field(description="The door counter's id: a visit is recorded once.")
    visited_at: datetime | None = None


@strawberry.type
class RecordVisitPayload:
    visit: VisitType | None
    created: bool
    user_errors: list[UserError]


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[allow(*BACKOFFICE, scope="visits:write")],
                         description="Record a store visit (once per venue and externalId).")
    async def record_visit(self, info: Info, input: RecordVisitInput) -> RecordVisitPayload:
        async def work(ctx: ServiceContext) -> tuple[Visit, bool]:
            return await service.record_visit(ctx, parse_id(input.customer_id, "customerId", "Customer"), input.venue,
                                              input.external_id, input.visited_at)

        result, errors = await in_transaction(info, work)
        visit, created = result if result else (None, False)
        return RecordVisitPayload(visit=visit, created=created, user_errors=errors)  # type: ignore[arg-type]
