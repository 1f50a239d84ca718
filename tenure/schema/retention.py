"""The retention figures and the cohort triangle (see :mod:`tenure.core.services.retention`)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import date
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError
from tenure.core.models import Role
from tenure.core.services import retention as service
from tenure.schema.permissions import STAFF, allow
from tenure.schema.types.common import Long


@strawberry.enum(description="How long each period is.")
class RetentionGroupBy(Enum):
    MONTH = strawberry.enum_value("month", description="Calendar months.")
    QUARTER = strawberry.enum_value("quarter", description="Calendar quarters: January to March, and so on.")
    YEAR = strawberry.enum_value("year", description="Calendar years.")


@strawberry.type(description="Retention figures of one period (and one group, when split). Rates are percentages; "
                             "money is in minor units. A customer counts at a moment when they ordered in the "
                             "active window before it (TENURE_RETENTION_ACTIVE_WINDOW_MONTHS, default 12).")
class RetentionPeriod:
    _figures: strawberry.Private[service.PeriodFigures]
    #: The request's reading of who bought again, shared by its periods and read once.
    _repeat: strawberry.Private[Callable[[], Awaitable[service.RepeatSoFar]]]

    @strawberry.field(description="The group (channel, tag, tier ...), when split; null otherwise.")
    def group(self) -> str | None:
        return self._figures.group

    @strawberry.field(description="First day of the period.")
    def start(self) -> date:
        return self._figures.start

    @strawberry.field(description="First day after the period.")
    def end(self) -> date:
        return self._figures.end

    @strawberry.field(description="Customers who counted (had ordered in the active window) on the period's first day.")
    def customers_at_start(self) -> int:
        return self._figures.customers_at_start

    @strawberry.field(description="Customers who counted on the first day after the period.")
    def customers_at_end(self) -> int:
        return self._figures.customers_at_end

    @strawberry.field(description="First order ever in the period.")
    def new_customers(self) -> int:
        return self._figures.new_customers

    @strawberry.field(description="Did not count at the start, had ordered before, ordered in the period.")
    def returning_customers(self) -> int:
        return self._figures.returning_customers

    @strawberry.field(description="Counted at the start and still count at the end.")
    def retained_customers(self) -> int:
        return self._figures.retained

    @strawberry.field(description="Customer retention rate: (at end - new - returning) / at start x 100; null with "
                                  "nobody at the start.")
    def retention_rate(self) -> float | None:
        return self._figures.crr

    @strawberry.field(description="100 - retentionRate; null with nobody at the start.")
    def churn_rate(self) -> float | None:
        return self._figures.churn_rate

    @strawberry.field(description="Customers with 2+ orders in the period / customers with 1+, x 100; null when "
                                  "nobody ordered.")
    def repeat_purchase_rate(self) -> float | None:
        return self._figures.repeat_purchase_rate

    @strawberry.field(description="Orders placed in the period (not cancelled).")
    def orders(self) -> int:
        return self._figures.orders

    @strawberry.field(description="Net revenue of the period's orders, minor units.")
    def revenue(self) -> Long:
        return Long(self._figures.revenue)

    @strawberry.field(description="Net revenue / orders, minor units; null without orders.")
    def average_order_value(self) -> Long | None:
        return _long(self._figures.average_order_value)

    @strawberry.field(description="Orders / customers who ordered in the period; null when nobody ordered.")
    def purchase_frequency(self) -> float | None:
        return self._figures.purchase_frequency

    @strawberry.field(description="Net revenue up to the period's end / customers who had ordered by then, minor "
                                  "units; null before anyone ordered.")
    def historic_clv(self) -> Long | None:
        return _long(self._figures.historic_clv)

    @strawberry.field(description="A rule of thumb, not a forecast: averageOrderValue x purchaseFrequency x expected "
                                  "lifetime (1 / churnRate, capped at TENURE_RETENTION_MAX_LIFETIME_YEARS). It sits at "
                                  "the cap while nobody can have lapsed yet and changes with the period's length; the "
                                  "predictions plugin forecasts each customer's value from a fitted model.")
    def naive_clv(self) -> Long | None:
        return _long(self._figures.predicted_clv)

    @strawberry.field(description="The same figure as naiveClv.",
                      deprecation_reason="Named as if it were a forecast: use naiveClv, or the predictions plugin's "
                                         "Customer.prediction.predictedValue.")
    def predicted_clv(self) -> Long | None:
        return _long(self._figures.predicted_clv)

    @strawberry.field(description="Of everyone who had bought by the period's end, the share who had bought on two or "
                                  "more days, x 100 (several orders of one day are one purchase occasion). Read from "
                                  "the orders once per request, only when asked for.")
    async def all_time_repeat_purchase_rate(self) -> float | None:
        end = self._figures.end
        return (await self._repeat()).rate(self._figures.group, end.year * 12 + end.month - 1)


@strawberry.type(description="One cell of the cohort triangle.")
class CohortCell:
    offset: int = strawberry.field(description="Months after the cohort's first month (0 = that month).")
    customers: int = strawberry.field(description="Customers of the cohort who ordered in that month.")
    share: float = strawberry.field(description="Customers / cohort size x 100.")


@strawberry.type(description="Customers whose first order fell in one month, and how many ordered in each later "
                             "month: one row of a heatmap.")
class CohortRow:
    month: date = strawberry.field(description="The first day of the cohort's month.")
    size: int = strawberry.field(description="How many customers placed their first order in that month.")
    cells: list[CohortCell] = strawberry.field(
        description="One per month from the cohort's month up to the last month asked for, offset 0 first.")


def _long(value: int | None) -> Long | None:
    return None if value is None else Long(value)


def _bad(error: UserError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": "BAD_USER_INPUT", "field": error.field})


def _dimension_enum(plugins: Any) -> type[Enum]:
    """The ``by`` enum of one schema: the dimensions its enabled plugins contribute."""
    found = service.dimensions(plugins)
    return _enum(tuple((name, d.description) for name, d in found.items()))


@functools.cache
def _enum(members: tuple[tuple[str, str], ...]) -> type[Enum]:
    values = Enum("RetentionDimension", {  # type: ignore[misc]
        name.upper(): strawberry.enum_value(name, description=text or None) for name, text in members})
    return strawberry.enum(values, description="What to split the figures by.")


def retention_query(plugins: Any) -> type:
    """The ``retention`` and ``cohorts`` root fields of one schema (the ``by`` enum differs
    with the plugins: a plugin switched off leaves no value behind)."""
    return _query(_dimension_enum(plugins))


@functools.cache
def _query(dimension: type[Enum]) -> type:
    async def retention(
        self: Any, info: Info,
        from_: Annotated[date, strawberry.argument(name="from", description="The first day to report on.")],
        to: Annotated[date, strawberry.argument(description="The last day to report on.")],
        group_by: Annotated[RetentionGroupBy, strawberry.argument(
            description="How long each period is; MONTH unless given.")] = RetentionGroupBy.MONTH,
        by: Any = None,
    ) -> list[RetentionPeriod]:
        dimension_name = by.value if by is not None else None
        async with info.context.db() as session:
            ctx = ServiceContext(session, info.context.settings, info.context.plugins)
            try:
                figures = await service.retention(ctx, from_, to, service.GroupBy(str(group_by.value)), dimension_name)
            except UserError as error:
                raise _bad(error) from None

        async def read_repeat() -> service.RepeatSoFar:
            async with info.context.db() as session:
                ctx = ServiceContext(session, info.context.settings, info.context.plugins)
                return await service.repeat_so_far(ctx, dimension_name)

        reading: list[asyncio.Task[service.RepeatSoFar]] = []

        async def repeat() -> service.RepeatSoFar:
            if not reading:  # the periods' fields resolve together: the first asks, the others wait
                reading.append(asyncio.ensure_future(read_repeat()))
            return await reading[0]

        return [RetentionPeriod(_figures=f, _repeat=repeat) for f in figures]

    # The enum is made per schema, so the annotation is the class itself, not a name.
    retention.__annotations__["by"] = Annotated[dimension | None, strawberry.argument(
        description="What to split each period's figures by; null for one row per period.")]

    @strawberry.type
    class RetentionQuery:
        retention_field = strawberry.field(
            resolver=retention, name="retention", permission_classes=[allow(*STAFF, Role.INTEGRATION,
                                                                            scope="reports:read")],
            description="Retention figures for each period from `from` to `to` (rounded out to whole periods), "
                        "optionally split by a dimension (channel, tag, and what plugins add).")

        @strawberry.field(permission_classes=[allow(*STAFF, Role.INTEGRATION, scope="reports:read")],
                          description="The cohort retention triangle: customers by first-order month from `from` "
                                      "to `to`, and the share of each still ordering N months later.")
        async def cohorts(self, info: Info,
                          from_: Annotated[date, strawberry.argument(
                              name="from", description="A day of the first cohort's month.")],
                          to: Annotated[date, strawberry.argument(
                              description="A day of the last month to report on.")]) -> list[CohortRow]:
            async with info.context.db() as session:
                ctx = ServiceContext(session, info.context.settings, info.context.plugins)
                try:
                    found = await service.cohorts(ctx, from_, to)
                except UserError as error:
                    raise _bad(error) from None
            return [CohortRow(month=c.month, size=c.size,
                              cells=[CohortCell(offset=i, customers=n, share=s)
                                     for i, (n, s) in enumerate(zip(c.active, c.shares(), strict=True))])
                    for c in found]

    return RetentionQuery
