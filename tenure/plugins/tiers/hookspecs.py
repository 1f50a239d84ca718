"""Hooks the tiers plugin offers other plugins (registered only while tiers is on).

.. versionadded:: 0.1
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

hookspec = pluggy.HookspecMarker("tenure")


@hookspec
def tiers_qualifying_points(  # type: ignore[empty-body]
    session: AsyncSession, customer_ids: Sequence[int], since: datetime
) -> Awaitable[dict[int, int]]:
    """Qualifying points each customer earned since ``since``, for tiers that qualify on
    points. Return an awaitable of ``{customer_id: points}``; answers of several plugins are
    added up. The loyalty plugin answers from its ledger."""
