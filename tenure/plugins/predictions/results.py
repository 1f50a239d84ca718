"""What fitting and scoring answer, apart from the numbers' machinery (which needs numpy and
is imported only when a fit runs)."""

from __future__ import annotations

from dataclasses import dataclass


class Refused(Exception):
    """Too few buyers to fit; the message says how many there are and how many it takes."""


@dataclass(frozen=True)
class CustomerFigures:
    """A customer's figures over some days, as of the fit they were scored with."""

    probability_active: float
    expected_orders: float
    predicted_value: int | None
