"""Customers ranked and filtered by their stored figures (``customersByPrediction``): the
order and filter inputs, their checks, and the statement a page is read from."""

from __future__ import annotations

from enum import Enum
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from sqlalchemy import Select, func, select

from tenure.core import models
from tenure.core.services.customers import CustomerFilter, filter_customers
from tenure.plugins.predictions.models import Prediction
from tenure.schema.queries import Direction
from tenure.schema.types.common import Long

#: More tags than this in one filter is a mistake, not a question.
MAX_TAGS = 100


@strawberry.enum(description="What `customersByPrediction` sorts on: the stored figures of the last scoring, "
                             "over TENURE_PREDICTIONS_HORIZON_DAYS.")
class PredictionOrderField(Enum):
    PROBABILITY_ACTIVE = strawberry.enum_value(
        "probability_active", description="Probability that the customer is still active, 0-1.")
    EXPECTED_ORDERS = strawberry.enum_value(
        "expected_orders", description="Purchase occasions expected over the horizon.")
    PREDICTED_VALUE = strawberry.enum_value(
        "predicted_value", description="Discounted net value expected over the horizon, minor units; customers "
                                       "without one (an unusable value model) sort below every value.")


@strawberry.input(description="The order of `customersByPrediction`; ties go by customer id in the same direction.")
class PredictionOrderBy:
    field: PredictionOrderField = strawberry.field(
        default=PredictionOrderField.PROBABILITY_ACTIVE, description="The figure to sort on.")
    direction: Direction = strawberry.field(
        default=Direction.ASC, description="ASC puts the lowest first: with PROBABILITY_ACTIVE, the customers "
                                           "most likely lost.")


@strawberry.input(description="Every condition given must hold; bounds are inclusive and apply to the stored "
                              "figures over TENURE_PREDICTIONS_HORIZON_DAYS.")
class PredictionFilterInput:
    min_probability_active: float | None = strawberry.field(
        default=None, description="Probability active at least this, 0-1.")
    max_probability_active: float | None = strawberry.field(
        default=None, description="Probability active at most this, 0-1.")
    min_predicted_value: Long | None = strawberry.field(
        default=None, description="Predicted value at least this, minor units; customers without a predicted "
                                  "value never match a value bound.")
    max_predicted_value: Long | None = strawberry.field(
        default=None, description="Predicted value at most this, minor units.")
    tags: list[str] | None = strawberry.field(
        default=None, description=f"Customers with any of these tags (at most {MAX_TAGS}).")


def _bad(field: str, message: str) -> GraphQLError:
    return GraphQLError(f"filter.{field}: {message}", extensions={"code": "BAD_USER_INPUT", "field": f"filter.{field}"})


def _bounds(low: float | None, high: float | None, name: str, ceiling: float | None) -> None:
    """Refuse a negative bound, one over ``ceiling`` and a minimum above the maximum."""
    low_name, high_name = f"min{name}", f"max{name}"
    for field, value in ((low_name, low), (high_name, high)):
        if value is not None and value < 0:
            raise _bad(field, f"must not be negative, got {value}")
        if value is not None and ceiling is not None and value > ceiling:
            raise _bad(field, f"must be at most {ceiling:g}, got {value}")
    if low is not None and high is not None and low > high:
        raise _bad(low_name, f"{low} is above filter.{high_name} ({high})")


def check_filter(f: PredictionFilterInput) -> None:
    _bounds(f.min_probability_active, f.max_probability_active, "ProbabilityActive", 1.0)
    _bounds(f.min_predicted_value, f.max_predicted_value, "PredictedValue", None)
    if f.tags is not None and len(f.tags) > MAX_TAGS:
        raise _bad("tags", f"at most {MAX_TAGS} tags, got {len(f.tags)}")


def ranked_customers(f: PredictionFilterInput | None) -> Select[Any]:
    """Customers with a prediction, each row (customer, prediction), filtered by ``f``."""
    stmt = cast("Select[Any]", select(models.Customer, Prediction).join(
        Prediction, Prediction.customer_id == models.Customer.id))
    if f is None:
        return stmt
    check_filter(f)
    if f.min_probability_active is not None:
        stmt = stmt.where(Prediction.probability_active >= f.min_probability_active)
    if f.max_probability_active is not None:
        stmt = stmt.where(Prediction.probability_active <= f.max_probability_active)
    if f.min_predicted_value is not None:
        stmt = stmt.where(Prediction.predicted_value >= f.min_predicted_value)
    if f.max_predicted_value is not None:
        stmt = stmt.where(Prediction.predicted_value <= f.max_predicted_value)
    return filter_customers(stmt, CustomerFilter(tags=f.tags) if f.tags else None)


def prediction_sort(order_by: PredictionOrderBy | None) -> list[tuple[Any, bool]]:
    """The keyset order: the figure, then the customer id, both in the direction asked."""
    o = order_by or PredictionOrderBy()
    columns: dict[PredictionOrderField, Any] = {
        PredictionOrderField.PROBABILITY_ACTIVE: Prediction.probability_active,
        PredictionOrderField.EXPECTED_ORDERS: Prediction.expected_orders,
        # Keyset cursors cannot step over NULLs: no value sorts below every value.
        PredictionOrderField.PREDICTED_VALUE: func.coalesce(Prediction.predicted_value, -1),
    }
    column = columns[o.field]
    descending = o.direction == Direction.DESC
    return [(column, descending), (models.Customer.id, descending)]
