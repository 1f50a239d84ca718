"""Hooks the churn plugin offers other plugins (registered only while churn is on).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tenure.core.context import ServiceContext
    from tenure.plugins.churn.signals import ChurnSignal

hookspec = pluggy.HookspecMarker("tenure")


@hookspec
def churn_win_back(ctx: ServiceContext, customer_id: int, score: int,
                   reasons: list[str]) -> Awaitable[None] | None:
    """Called once per warning, in the transaction that raised it, when
    ``TENURE_CHURN_WIN_BACK`` is on: offer the customer something (a coupon through loyalty,
    a message through ``core.messages``). Return an awaitable (it is awaited) or ``None``.
    Every implementation is called; an exception rolls the warning back with it."""


@hookspec
def churn_signals() -> list[ChurnSignal]:  # type: ignore[empty-body]
    """The churn signals this plugin measures (:class:`tenure.plugins.churn.signals.ChurnSignal`):
    each a statement selecting the customers it flags, a reason in words, a default
    threshold and weight. Every rescore runs them, for one customer after an event or for
    everyone at night; staff tune or switch them off like the churn plugin's own rules.

    .. versionadded:: 0.2
    """
