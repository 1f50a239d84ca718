"""Churn signals: a reason a customer may be drifting away, measured in SQL for many
customers at once, with a threshold and a weight on the health score.

The churn plugin measures four itself from the figures of each rescore (no order, a long
gap, interactions falling, complaints). Every other signal comes from a plugin through the
``churn_signals`` hook (:mod:`tenure.plugins.churn.hookspecs`): the nps plugin's low survey score,
the renewals plugin's subscription ending without renewal, a partner's "no check-in for 14
days". A signal is a statement that selects the ids of the customers it flags, written with
the placeholders a :class:`SignalQuery` gives, so the rescore embeds it in its own statements
on PostgreSQL and SQLite alike, for one customer after an event or for a million at night.

Each signal has a bit in ``churn_scores.fired``: the four own signals and the two that moved
out of the churn plugin keep the bits they always had; the others take the free bits in the
order of their names. The bits in use are part of the rescore's basis, so a rescore after a
signal came or went counts everyone afresh.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: The signals the churn plugin measures itself, in bit order.
OWN = ("no_order", "long_gap", "interactions_falling", "complaints")
#: Signals that other plugins contribute but whose bits were fixed before they moved there.
KEPT_BITS = {"low_survey": 4, "renewal_lapse": 5}
#: ``churn_scores.fired`` is a 32-bit integer: bits 0 to 30.
MAX_BIT = 30


@dataclass(frozen=True)
class SignalQuery:
    """What a signal's statement is written with.

    ``threshold`` is the placeholder of the signal's threshold (its default, or what staff
    set with ``saveChurnRule``); ``now`` the placeholder of the moment the rescore stands
    on (a time: with ``TENURE_NOW`` or ``--as-of`` it is not the wall clock, so never use the
    database's own clock). ``among(column)`` is the condition that keeps the statement to
    the customers being rescored: put it in the WHERE clause on the customer id column, so a
    rescore of a few customers reads only their rows.
    """

    dialect: str
    threshold: str
    among: Callable[[str], str]
    now: str = ":now"

    def days_since(self, column: str) -> str:
        """Days (a fraction) from the time or date in ``column`` to now."""
        if self.dialect == "sqlite":
            return f"(julianday({self.now}) - julianday({column}))"
        return f"((:now_epoch - date_part('epoch', {column})) / 86400.0)"

    def days_until(self, column: str) -> str:
        """Days (a fraction) from now to the time or date in ``column`` (negative once past)."""
        return f"(-{self.days_since(column)})"


@dataclass(frozen=True)
class ChurnSignal:
    """One signal a plugin contributes.

    ``flagged(query)`` returns a SELECT of one column, the ids of the customers it flags as
    of ``query.now`` at ``query.threshold``. ``reason`` is what a person reads on the
    customer's page when it fires; ``{threshold}`` in it is replaced by the threshold in use.
    ``threshold`` and ``weight`` are the defaults staff may change; ``threshold_means`` says
    what the threshold measures, ``minimum`` and ``maximum`` what staff may set it to.
    ``enabled`` is whether the signal counts until staff switch it on or off. The default
    weight should be enough for the signal to raise a warning on its own (more than 100
    minus ``TENURE_CHURN_THRESHOLD``, so more than 40 by default).
    """

    name: str
    reason: str
    threshold: float
    weight: int
    flagged: Callable[[SignalQuery], str]
    threshold_means: str = ""
    minimum: float = 0.0
    maximum: float | None = None
    enabled: bool = True

    def said(self, threshold: float) -> str:
        shown = int(threshold) if float(threshold).is_integer() else threshold
        return self.reason.replace("{threshold}", str(shown))


def contributed(hook: Any) -> dict[str, tuple[str, ChurnSignal]]:
    """The signals of the enabled plugins and who gave each, by name; two of one name are a
    plugin error."""
    found: dict[str, tuple[str, ChurnSignal]] = {}
    for impl in hook.churn_signals.get_hookimpls():
        for signal in impl.function() or ():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", signal.name):
                raise ValueError(f"churn signal {signal.name!r}: name it in lower case letters, digits and _")
            if signal.name in found or signal.name in OWN:
                raise ValueError(f"two churn signals are named {signal.name!r}")
            found[signal.name] = (impl.plugin_name, signal)
    return found


def bits(names: Mapping[str, Any] | list[str]) -> dict[str, int]:
    """The bit of each signal in ``fired``: the own and kept ones fixed, others by name."""
    out = {name: n for n, name in enumerate(OWN)}
    taken = set(out.values()) | set(KEPT_BITS.values())
    free = (b for b in range(MAX_BIT + 1) if b not in taken)
    for name in sorted(n for n in names if n not in out):
        if name in KEPT_BITS:
            out[name] = KEPT_BITS[name]
            continue
        bit = next(free, None)
        if bit is None:
            raise ValueError(f"too many churn signals: no bit left for {name!r}")
        out[name] = bit
    return out
