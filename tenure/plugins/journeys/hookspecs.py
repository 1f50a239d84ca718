"""Hooks the journeys plugin offers other plugins (registered only while journeys is on):
new triggers a journey can start on, and new actions its steps can take.

Both are registration hooks: synchronous, called when a journey is validated or run, and
returning data. A plugin that implements them keeps working with journeys off (pluggy
calls nothing then); import this module's dataclasses inside the implementation, so the
import happens only when journeys is installed.

.. versionadded:: 0.2
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy.ext.asyncio import AsyncSession

    from tenure.core.context import ServiceContext

hookspec = pluggy.HookspecMarker("tenure")

#: Parameters of a trigger or action, as given in the journey's definition (JSON).
Params = dict[str, Any]


@dataclass(frozen=True)
class Trigger:
    """A way into a journey. Exactly one of ``event_type`` or ``on_day`` is set.

    - ``event_type``: a type of the event log (what ``ctx.publish`` writes, such as
      ``churn.warned``). The customer the event names enters once per event, when the
      journeys job next runs; ``match(data, params)`` may refuse an event by its data.
    - ``on_day(session, day, zone, params)``: a date on the customer. Returns the customers
      whose date falls on ``day`` (a business day in ``zone``) as ``(customer_id,
      occurrence)`` pairs; ``occurrence`` names the date (``birthday:2027``), so a customer
      enters once per occurrence however often the day is looked at.

    ``check(params)`` validates the parameters a journey gives the trigger and returns
    them cleaned; it raises :class:`tenure.core.errors.UserError` (naming ``trigger.params``)
    otherwise. ``requires`` is the plugin that must be on for the trigger to be offered.
    """

    name: str
    description: str
    event_type: str | None = None
    on_day: Callable[[AsyncSession, date, ZoneInfo, Params], Awaitable[list[tuple[int, str]]]] | None = None
    match: Callable[[dict[str, Any], Params], bool] | None = None
    check: Callable[[Params], Params] | None = None
    requires: str | None = None


@dataclass(frozen=True)
class StepTarget:
    """One customer at one step of one journey, as an action gets it. ``key`` is unique to
    the entry and step: use it as the dedupe or idempotency key of whatever the action
    writes, so the step's effect exists once."""

    entry_id: int
    customer_id: int
    journey_id: int
    journey_name: str
    step: int
    key: str


@dataclass(frozen=True)
class Action:
    """What a step does. ``check(params)`` validates the step's parameters when a journey
    is saved (raise :class:`tenure.core.errors.UserError` naming the field) and returns them
    cleaned. ``run(ctx, targets, params)`` acts for a batch of customers at the same step,
    in the transaction that marks the step done (so the effect and the mark commit
    together), and returns ``{entry_id: reason}`` for each customer it skipped, in words;
    the others count as done. Anything external it queues through the outbox."""

    name: str
    description: str
    check: Callable[[Params], Params]
    run: Callable[[ServiceContext, Sequence[StepTarget], Params], Awaitable[dict[int, str]]]
    requires: str | None = None


@hookspec
def journeys_triggers() -> list[Trigger]:  # type: ignore[empty-body]
    """Triggers this plugin adds (a :class:`Trigger` each, named ``<plugin>.<what>``).
    Every implementation's triggers are offered; two with one name stop the journey
    catalogue with an error naming it."""


@hookspec
def journeys_actions() -> list[Action]:  # type: ignore[empty-body]
    """Actions this plugin adds (an :class:`Action` each, named ``<plugin>.<what>``)."""
