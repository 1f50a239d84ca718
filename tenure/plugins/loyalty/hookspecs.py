"""Hooks the loyalty plugin offers other plugins (registered only while loyalty is on).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tenure.core.context import ServiceContext

hookspec = pluggy.HookspecMarker("tenure")


@dataclass(frozen=True)
class Multiplier:
    """``percent`` of the points an order earns (200 doubles them), and why, in words."""

    percent: int
    reason: str


@hookspec
def loyalty_points_multiplier(ctx: ServiceContext, customer_id: int) -> Awaitable[Multiplier | None]:  # type: ignore[empty-body]
    """Called while an order's points are computed, in the order's transaction (after the
    handlers of lower priority, such as a tier upgrade, have run). Return an awaitable of a
    :class:`Multiplier`, or of ``None`` for no change; every answer is applied, multiplied
    together. The tiers plugin answers with the member's tier benefit."""


@hookspec
def loyalty_points_multipliers(ctx: ServiceContext, customer_ids: list[int]) -> Awaitable[dict[int, Multiplier]]:  # type: ignore[empty-body]
    """:func:`loyalty_points_multiplier` for a batch of orders (at most one per customer),
    answered for every customer at once: an awaitable of the multiplier of each customer
    that has one. The tiers plugin answers with the members' tier benefits in one read.

    .. versionadded:: 0.2
    """


@hookspec
def loyalty_points_earned(ctx: ServiceContext, customer_id: int) -> Awaitable[None]:  # type: ignore[empty-body]
    """Called after qualifying points were credited to a customer, in the same transaction,
    so that rules based on points earned (a tier qualified by points) can act at once."""
