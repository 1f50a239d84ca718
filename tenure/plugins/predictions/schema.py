"""The predictions plugin's GraphQL: ``Customer.prediction``, ``Member.prediction`` (when the
business allows it), the root ``predictionModel`` and ``customersByPrediction``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.types import Info

from tenure.core import models
from tenure.core.contributions import SchemaContribution
from tenure.core.models import Role
from tenure.plugins.predictions import service
from tenure.plugins.predictions.filters import (
    PredictionFilterInput,
    PredictionOrderBy,
    prediction_sort,
    ranked_customers,
)
from tenure.plugins.predictions.models import Fit, Prediction
from tenure.plugins.predictions.settings import predictions_settings
from tenure.schema import loaders
from tenure.schema.context import Context
from tenure.schema.permissions import BACKOFFICE, STAFF, allow
from tenure.schema.queries import counter, runner
from tenure.schema.relay import Before, Connection, Last, paginate
from tenure.schema.types.common import Long
from tenure.schema.types.core import Customer

MAX_DAYS = 3650


# Plain session reads: core.reads' compiled reads do not yet handle float columns on asyncpg.
async def predictions_by_customer(context: Context, keys: Sequence[int]) -> list[Prediction | None]:
    async with context.db() as session:
        found = {row.customer_id: row for row in
                 await session.scalars(select(Prediction).where(Prediction.customer_id.in_(keys)))}
    return [found.get(k) for k in keys]


async def fits_by_id(context: Context, keys: Sequence[int]) -> list[Fit | None]:
    async with context.db() as session:
        found = {row.id: row for row in await session.scalars(select(Fit).where(Fit.id.in_(keys)))}
    return [found.get(k) for k in keys]


def _days(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise GraphQLError(f"days: from 1 to {MAX_DAYS}, got {days}", extensions={"code": "BAD_USER_INPUT",
                                                                                  "field": "days"})
    return days


@strawberry.type(description="What the buy-till-you-die models expect of this customer, as of the last fit "
                             "(BG/NBD for purchases and activity, Gamma-Gamma for their value).")
class CustomerPrediction:
    row: strawberry.Private[Prediction]
    fit: strawberry.Private[Fit]

    @strawberry.field(description="Probability that the customer is still active (has not silently left), 0-1. "
                                  "1 for a customer with a single purchase occasion (the model lets customers "
                                  "leave only after a repeat purchase).")
    def probability_active(self) -> float:
        return self.row.probability_active

    @strawberry.field(description="Purchase occasions expected in the next `days` days "
                                  "(default TENURE_PREDICTIONS_HORIZON_DAYS).")
    def expected_orders(self, info: Info, days: Annotated[int | None, strawberry.argument(
            description="How many days ahead, 1-3650; null for TENURE_PREDICTIONS_HORIZON_DAYS.")] = None) -> float:
        cfg = predictions_settings(info.context.settings)
        return service.figures(cfg, self.fit, self.row, _days(days)).expected_orders

    @strawberry.field(description="Net value, minor units, expected over the next `days` days "
                                  "(default TENURE_PREDICTIONS_HORIZON_DAYS), discounted to today at "
                                  "TENURE_PREDICTIONS_DISCOUNT_RATE a year; null if the value model is unusable.")
    def predicted_value(self, info: Info, days: Annotated[int | None, strawberry.argument(
            description="How many days ahead, 1-3650; null for TENURE_PREDICTIONS_HORIZON_DAYS.")] = None,
    ) -> Long | None:
        cfg = predictions_settings(info.context.settings)
        return service.figures(cfg, self.fit, self.row, _days(days)).predicted_value  # type: ignore[return-value]

    @strawberry.field(description="Purchase occasions so far (orders of one day are one, by default).")
    def purchases(self) -> int:
        return self.row.occasions

    @strawberry.field(description="Days from the first purchase occasion to the last.")
    def recency_days(self) -> int:
        return self.row.recency_days

    @strawberry.field(description="Days from the first purchase occasion to the end of the fit's data.")
    def age_days(self) -> int:
        return self.row.age_days

    @strawberry.field(description="Mean net value of the repeat purchase occasions, minor units; null without one.")
    def mean_value(self) -> float | None:
        return self.row.mean_value

    @strawberry.field(description="The day the figures stand on: orders before it were counted.")
    def as_of(self) -> date:
        return self.fit.as_of


async def prediction_of(info: Info, customer_id: int) -> CustomerPrediction | None:
    row = await info.context.loader(predictions_by_customer).load(customer_id)
    if row is None:
        return None
    fit = await info.context.loader(fits_by_id).load(row.fit_id)
    return CustomerPrediction(row=row, fit=fit) if fit is not None else None


@strawberry.type
class PredictionCustomerFields:
    @strawberry.field(description="Predicted purchases, activity and value (predictions plugin); null for a "
                                  "customer who never bought or before the first fit.")
    async def prediction(self: models.Customer, info: Info) -> CustomerPrediction | None:
        return await prediction_of(info, self.id)


@strawberry.type
class PredictionMemberFields:
    @strawberry.field(description="The member's own prediction; null unless the business shows it "
                                  "(TENURE_PREDICTIONS_MEMBER_VISIBLE).")
    async def prediction(self: models.Customer, info: Info) -> CustomerPrediction | None:
        if not predictions_settings(info.context.settings).member_visible:
            return None
        return await prediction_of(info, self.id)


@strawberry.type(description="BG/NBD parameters (Fader, Hardie and Lee 2005), times in weeks: purchase rates "
                             "Gamma(r, alpha), drop-out after a purchase Beta(a, b).")
class BgNbdParameters:
    r: float = strawberry.field(description="Shape of the purchase-rate distribution.")
    alpha: float = strawberry.field(description="Scale of the purchase-rate distribution, in weeks.")
    a: float = strawberry.field(description="First shape of the drop-out distribution.")
    b: float = strawberry.field(description="Second shape of the drop-out distribution.")
    log_likelihood: float = strawberry.field(description="The fit's log-likelihood: higher fits the sample better.")


@strawberry.type(description="Gamma-Gamma parameters (Fader, Hardie and Lee 2005b), minor units: the value of a "
                             "purchase Gamma(p, nu) with nu Gamma(q, v) across customers.")
class GammaGammaParameters:
    p: float = strawberry.field(description="Shape of the value of one purchase.")
    q: float = strawberry.field(description="Shape of nu across customers.")
    v: float = strawberry.field(description="Scale of nu across customers, in minor units.")
    log_likelihood: float = strawberry.field(description="The fit's log-likelihood: higher fits the sample better.")


@strawberry.type(description="Customers grouped by repeat purchases in the calibration days: purchases in the "
                             "holdout days per customer, actual and as the calibration fit predicted.")
class HoldoutRow:
    repeat_purchases: int = strawberry.field(description="0 to 7; the last group is 7 or more.")
    label: str = strawberry.field(description="The group as shown: `0` to `6`, or `7+`.")
    customers: int = strawberry.field(description="Customers in the group.")
    actual: float | None = strawberry.field(
        description="Mean purchases per customer in the holdout days; null for an empty group.")
    predicted: float | None = strawberry.field(
        description="The same as the calibration fit predicted; null for an empty group.")


@strawberry.type(description="The models fitted on the days before `calibrationEnd`, against the holdout days.")
class HoldoutCheck:
    calibration_end: date = strawberry.field(description="The first holdout day.")
    days: int = strawberry.field(description="How many holdout days.")
    customers: int = strawberry.field(description="Customers in the calibration sample.")
    repeat_buyers: int = strawberry.field(description="Of those, customers with purchases on two or more days.")
    skipped: str | None = strawberry.field(description="Why the check did not run; null when it did.")
    bgnbd: BgNbdParameters | None = strawberry.field(
        description="The purchase model fitted on the calibration days; null when the check did not run.")
    gamma_gamma: GammaGammaParameters | None = strawberry.field(
        description="The value model fitted on the calibration days; null when it did not run or was unusable.")
    rows: list[HoldoutRow] = strawberry.field(description="The comparison by group, 0 repeat purchases first.")
    actual_total: int | None = strawberry.field(
        description="Purchases in the holdout days, all customers; null when the check did not run.")
    predicted_total: float | None = strawberry.field(
        description="The same as the calibration fit predicted; null when the check did not run.")


@strawberry.type(description="A refused fit: too few buyers. The predictions of the last fit stay.")
class PredictionRefusal:
    as_of: date = strawberry.field(description="The day the refused fit stood on.")
    message: str = strawberry.field(description="Why it was refused.")


@strawberry.type(description="The last fit of the prediction models, its sample and its holdout check.")
class PredictionModel:
    fit: strawberry.Private[Fit]
    refusal: strawberry.Private[Fit | None]

    @strawberry.field(description="When it was fitted.")
    def fitted_at(self) -> datetime:
        return self.fit.fitted_at

    @strawberry.field(description="Orders before this day (in `timeZone`) were counted.")
    def as_of(self) -> date:
        return self.fit.as_of

    @strawberry.field(description="How long the fit and the scoring took.")
    def seconds(self) -> float:
        return self.fit.seconds

    @strawberry.field(description="Customers with at least one purchase occasion: the sample.")
    def customers(self) -> int:
        return self.fit.customers

    @strawberry.field(description="Customers with purchase occasions on two or more days.")
    def repeat_buyers(self) -> int:
        return self.fit.repeat_buyers

    @strawberry.field(description="Purchase occasions counted.")
    def purchases(self) -> int:
        return self.fit.occasions

    @strawberry.field(description="Orders of one customer on one day counted as one purchase occasion.")
    def same_day_merged(self) -> bool:
        return bool(self.fit.basis.get("mergeSameDay"))

    @strawberry.field(description="The time zone days are counted in (TENURE_TIMEZONE when it was fitted).")
    def time_zone(self) -> str:
        return str(self.fit.basis.get("timeZone", "UTC"))

    @strawberry.field(description="The purchase and activity model's parameters.")
    def bgnbd(self) -> BgNbdParameters:
        f = self.fit
        return BgNbdParameters(r=f.r or 0, alpha=f.alpha or 0, a=f.a or 0, b=f.b or 0,
                               log_likelihood=f.bgnbd_log_likelihood or 0)

    @strawberry.field(description="The value model's parameters.")
    def gamma_gamma(self) -> GammaGammaParameters:
        f = self.fit
        return GammaGammaParameters(p=f.p or 0, q=f.q or 0, v=f.v or 0,
                                    log_likelihood=f.gamma_gamma_log_likelihood or 0)

    @strawberry.field(description="A note on the fit, such as an unusable value model; empty if none.")
    def message(self) -> str:
        return self.fit.message

    @strawberry.field(description="The calibration/holdout check; null when switched off.")
    def holdout(self) -> HoldoutCheck | None:
        return holdout_of(self.fit.holdout)

    @strawberry.field(description="A refused fit since this one (too few buyers), if any.")
    def last_refusal(self) -> PredictionRefusal | None:
        r = self.refusal
        return PredictionRefusal(as_of=r.as_of, message=r.message) if r is not None else None


def _bgnbd(found: dict[str, Any] | None) -> BgNbdParameters | None:
    return BgNbdParameters(**found) if found else None


def _gg(found: dict[str, Any] | None) -> GammaGammaParameters | None:
    return GammaGammaParameters(**found) if found else None


def holdout_of(check: dict[str, Any] | None) -> HoldoutCheck | None:
    if not check:
        return None
    return HoldoutCheck(
        calibration_end=date.fromisoformat(check["calibrationEnd"]), days=check["days"], customers=check["customers"],
        repeat_buyers=check["repeatBuyers"], skipped=check.get("skipped"),
        bgnbd=_bgnbd(check.get("bgnbd")), gamma_gamma=_gg(check.get("gammaGamma")),
        rows=[HoldoutRow(repeat_purchases=r["purchases"], label=r["label"], customers=r["customers"],
                         actual=r["actual"], predicted=r["predicted"]) for r in check.get("rows", [])],
        actual_total=check.get("actualTotal"), predicted_total=check.get("predictedTotal"))


@strawberry.type
class PredictionsQuery:
    @strawberry.field(permission_classes=[allow(*STAFF, Role.INTEGRATION, scope="reports:read")],
                      description="The last fit of the prediction models; null before the first.")
    async def prediction_model(self, info: Info) -> PredictionModel | None:
        async with info.context.db() as session:
            fit = await service.latest_fit(session)
            refusal = await service.last_refusal(session, fit.as_of if fit else None)
        if fit is None:
            if refusal is not None:
                raise GraphQLError(f"no model yet: {refusal.message}", extensions={"code": "NOT_FOUND"})
            return None
        return PredictionModel(fit=fit, refusal=refusal)

    # Its nodes are customers, names and contacts included: the scope is the one `customers` needs.
    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="customers:read")],
                      description="Customers with a prediction, sorted and filtered by their figures as of the "
                                  "last fit (over TENURE_PREDICTIONS_HORIZON_DAYS); by default the customers most "
                                  "likely lost first. Each node's `prediction` holds its figures.")
    async def customers_by_prediction(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(
            description="How many customers, at most TENURE_MAX_PAGE_SIZE.")] = 20,
        after: Annotated[str | None, strawberry.argument(
            description="The cursor of the last customer seen: the page starts after it.")] = None,
        last: Last = None,
        before: Before = None,
        order_by: Annotated[PredictionOrderBy | None, strawberry.argument(
            description="Default: probability active, lowest first.")] = None,
        filter: Annotated[PredictionFilterInput | None, strawberry.argument(
            description="Which customers; all who have a prediction when left out.")] = None,
    ) -> Connection[Customer]:
        stmt = ranked_customers(filter)
        page = await paginate(runner(info), stmt, prediction_sort(order_by), first=first, after=after,
                              last=last, before=before,
                              cap=info.context.settings.max_page_size, count=counter(info, stmt))
        # The page's rows answer `prediction` and `order { customer }` without another query.
        by_id = info.context.loader(loaders.customers_by_id)
        predictions = info.context.loader(predictions_by_customer)
        for edge in page.edges:
            customer, prediction = edge.node
            by_id.prime(customer.id, customer)
            predictions.prime(customer.id, prediction)
            edge.node = customer
        return page


def contribution() -> SchemaContribution:
    return SchemaContribution(query=PredictionsQuery,
                              extends={"Customer": PredictionCustomerFields, "Member": PredictionMemberFields})
