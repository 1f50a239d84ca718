"""Splits of the core's retention figures by each customer's prediction:
``retention(by: PROBABILITY_ACTIVE_BAND)`` and ``retention(by: PREDICTED_VALUE_BAND)``.
The bands' bounds are settings; customers without a prediction are left out."""

from __future__ import annotations

from itertools import pairwise

from tenure.core.contributions import RetentionDimension
from tenure.plugins.predictions.settings import PredictionsSettings


def _bands(column: str, bounds: list[str], labels: list[str]) -> str:
    cases = " ".join(f"WHEN {column} < {bound} THEN '{label}'" for bound, label in zip(bounds, labels, strict=False))
    return (f"SELECT customer_id, CASE {cases} ELSE '{labels[-1]}' END AS label "
            f"FROM predictions_customers WHERE {column} IS NOT NULL")


def active_labels(bounds: tuple[float, ...]) -> list[str]:
    edges = [0, *(round(b * 100) for b in bounds)]
    return [f"{lo}-{hi}%" for lo, hi in pairwise(edges)] + [f"{edges[-1]}-100%"]


def value_labels(bounds: tuple[int, ...]) -> list[str]:
    edges = [0, *bounds]
    return [f"{lo}-{hi - 1}" for lo, hi in pairwise(edges)] + [f"{edges[-1]}+"]


def dimensions(cfg: PredictionsSettings) -> list[RetentionDimension]:
    return [
        RetentionDimension(
            "probability_active_band",
            _bands("probability_active", [repr(float(b)) for b in cfg.active_bands], active_labels(cfg.active_bands)),
            "The probability that the customer is still active, in bands (predictions plugin)"),
        RetentionDimension(
            "predicted_value_band",
            _bands("predicted_value", [str(int(b)) for b in cfg.value_bands], value_labels(cfg.value_bands)),
            "The predicted value over the horizon, minor units, in bands (predictions plugin)"),
    ]
