"""The warning rules: one per churn signal, with its threshold and weight, and how staff change it.

Each rule has a bit in ``Score.fired`` and subtracts its ``weight`` from the health score
(100 = nothing wrong) when it fires. The churn plugin's own rules, and what ``threshold``
means for each:

- ``no_order``: days without an order.
- ``long_gap``: how many times the customer's own usual gap between orders the silence is.
- ``interactions_falling``: the share by which interactions fell against the previous period.
- ``complaints``: complaints plus cancelled orders in the complaint window.

The other rules are the signals the enabled plugins contribute (:mod:`tenure.plugins.churn.signals`):
``low_survey`` from nps, ``renewal_lapse`` from renewals, and whatever partners add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import delete, select

from tenure.core.context import ServiceContext
from tenure.core.errors import UserError
from tenure.plugins.churn.models import Rule
from tenure.plugins.churn.settings import ChurnSettings, churn_settings
from tenure.plugins.churn.signals import OWN, ChurnSignal, bits, contributed

#: What the threshold of each own rule measures.
MEANS = {
    "no_order": "days without an order",
    "long_gap": "times the customer's usual gap between orders",
    "interactions_falling": "share by which interactions fell against the previous period",
    "complaints": "complaints and cancelled orders in the complaint window",
}


@dataclass(frozen=True)
class EffectiveRule:
    kind: str
    enabled: bool
    threshold: float
    weight: int
    customised: bool
    bit: int
    plugin: str = "churn"
    #: The plugin's signal behind the rule; ``None`` for the churn plugin's own.
    signal: ChurnSignal | None = None

    @property
    def active_weight(self) -> int:
        return self.weight if self.enabled else 0

    @property
    def means(self) -> str:
        return self.signal.threshold_means if self.signal else MEANS[self.kind]


def defaults(cfg: ChurnSettings) -> dict[str, tuple[float, int]]:
    return {
        "no_order": (cfg.no_order_days, cfg.no_order_weight),
        "long_gap": (cfg.gap_factor, cfg.gap_weight),
        "interactions_falling": (cfg.interactions_drop, cfg.interactions_weight),
        "complaints": (cfg.complaints_count, cfg.complaints_weight),
    }


_contributed: WeakKeyDictionary[Any, dict[str, tuple[str, ChurnSignal]]] = WeakKeyDictionary()


def signals_of(ctx: ServiceContext) -> dict[str, tuple[str, ChurnSignal]]:
    """The signals the enabled plugins contribute (asked once per plugin manager)."""
    found = _contributed.get(ctx.plugins)
    if found is None:
        found = _contributed[ctx.plugins] = contributed(ctx.plugins.hook)
    return dict(found)


async def effective_rules(ctx: ServiceContext) -> dict[str, EffectiveRule]:
    """Every rule (the own ones, then the enabled plugins' signals by name) with its stored
    override or its default."""
    cfg = churn_settings(ctx)
    stored = {r.kind: r for r in await ctx.session.scalars(select(Rule))}
    signals = signals_of(ctx)
    bit = bits([*OWN, *signals])
    given: dict[str, tuple[float, int, bool, str, ChurnSignal | None]] = {
        kind: (float(t), w, True, "churn", None) for kind, (t, w) in defaults(cfg).items()}
    for name in sorted(signals):
        plugin, s = signals[name]
        given[name] = (float(s.threshold), s.weight, s.enabled, plugin, s)
    out = {}
    for kind, (threshold, weight, enabled, plugin, signal) in given.items():
        row = stored.get(kind)
        out[kind] = EffectiveRule(kind, row.enabled if row else enabled, row.threshold if row else threshold,
                                  row.weight if row else weight, row is not None, bit[kind], plugin, signal)
    return out


def _check(rules: dict[str, EffectiveRule], kind: str, threshold: float | None, weight: int | None) -> None:
    if kind not in rules:
        raise UserError(f"unknown rule {kind!r}; one of {', '.join(rules)} (a plugin's rule exists while the "
                        "plugin is on)", "kind", "unknown_rule")
    if weight is not None and not 0 <= weight <= 100:
        raise UserError("a weight from 0 to 100", "weight", "invalid_weight")
    if threshold is None:
        return
    signal = rules[kind].signal
    if signal is not None and threshold < signal.minimum:
        raise UserError(f"must be at least {signal.minimum:g} ({signal.threshold_means})", "threshold",
                        "invalid_threshold")
    if signal is not None and signal.maximum is not None and threshold > signal.maximum:
        raise UserError(f"must be at most {signal.maximum:g} ({signal.threshold_means})", "threshold",
                        "invalid_threshold")
    if threshold < 0:
        raise UserError("must not be negative", "threshold", "invalid_threshold")
    if kind == "interactions_falling" and not 0 < threshold <= 1:
        raise UserError("a share of the previous period's interactions, above 0 and at most 1", "threshold",
                        "invalid_threshold")
    if kind in ("no_order", "complaints") and threshold < 1:
        raise UserError("must be at least 1", "threshold", "invalid_threshold")


async def save_rule(ctx: ServiceContext, kind: str, *, enabled: bool | None = None, threshold: float | None = None,
                    weight: int | None = None) -> EffectiveRule:
    """Switch a rule on or off, or change its threshold or weight; what is not given keeps
    its current value."""
    rules = await effective_rules(ctx)
    _check(rules, kind, threshold, weight)
    current = rules[kind]
    row = await ctx.session.get(Rule, kind)
    if row is None:
        row = Rule(kind=kind, enabled=current.enabled, threshold=current.threshold, weight=current.weight,
                   updated_at=ctx.now())
        ctx.session.add(row)
    if enabled is not None:
        row.enabled = enabled
    if threshold is not None:
        row.threshold = threshold
    if weight is not None:
        row.weight = weight
    row.updated_at = ctx.now()
    await ctx.session.flush()
    return (await effective_rules(ctx))[kind]


async def reset_rule(ctx: ServiceContext, kind: str) -> EffectiveRule:
    """Forget the changes made to a rule: it uses the settings' defaults again."""
    _check(await effective_rules(ctx), kind, None, None)
    await ctx.session.execute(delete(Rule).where(Rule.kind == kind))
    return (await effective_rules(ctx))[kind]
