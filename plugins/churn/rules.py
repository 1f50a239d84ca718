"""The warning rules: what each measures, its defaults, and how staff change it.

Each rule has a bit in ``Score.fired`` and subtracts its ``weight`` from the health score
(100 = nothing wrong) when it fires. ``threshold`` means, per rule:

- ``no_order``: days without an order.
- ``long_gap``: how many times the customer's own usual gap between orders the silence is.
- ``interactions_falling``: the share by which interactions fell against the previous period.
- ``complaints``: complaints plus cancelled orders in the complaint window.
- ``low_survey``: the highest latest survey score that counts as low (NPS 0-10; CSAT 1-5 uses
  its dissatisfied category). Only while the nps plugin is on.
- ``renewal_lapse``: days before a subscription without auto-renew ends. Only while the
  renewals plugin is on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select

from core.context import ServiceContext
from core.errors import UserError
from plugins.churn.models import Rule
from plugins.churn.settings import ChurnSettings, churn_settings

KINDS = ("no_order", "long_gap", "interactions_falling", "complaints", "low_survey", "renewal_lapse")
BIT = {kind: 1 << n for n, kind in enumerate(KINDS)}
NEEDS = {"low_survey": "nps", "renewal_lapse": "renewals"}


@dataclass(frozen=True)
class EffectiveRule:
    kind: str
    enabled: bool
    threshold: float
    weight: int
    customised: bool

    @property
    def active_weight(self) -> int:
        return self.weight if self.enabled else 0


def defaults(cfg: ChurnSettings) -> dict[str, tuple[float, int]]:
    return {
        "no_order": (cfg.no_order_days, cfg.no_order_weight),
        "long_gap": (cfg.gap_factor, cfg.gap_weight),
        "interactions_falling": (cfg.interactions_drop, cfg.interactions_weight),
        "complaints": (cfg.complaints_count, cfg.complaints_weight),
        "low_survey": (cfg.survey_max_score, cfg.survey_weight),
        "renewal_lapse": (cfg.renewal_days, cfg.renewal_weight),
    }


async def effective_rules(ctx: ServiceContext) -> dict[str, EffectiveRule]:
    """Every rule with its stored override or its default; a rule whose plugin is off is
    reported disabled."""
    cfg = churn_settings(ctx)
    stored = {r.kind: r for r in await ctx.session.scalars(select(Rule))}
    out = {}
    for kind, (threshold, weight) in defaults(cfg).items():
        row = stored.get(kind)
        enabled = row.enabled if row else True
        if kind in NEEDS and not ctx.plugins.is_enabled(NEEDS[kind]):
            enabled = False
        out[kind] = EffectiveRule(kind, enabled, row.threshold if row else float(threshold),
                                  row.weight if row else weight, row is not None)
    return out


def _check(kind: str, threshold: float | None, weight: int | None) -> None:
    if kind not in KINDS:
        raise UserError(f"unknown rule {kind!r}; one of {', '.join(KINDS)}", "kind", "unknown_rule")
    if weight is not None and not 0 <= weight <= 100:
        raise UserError("a weight from 0 to 100", "weight", "invalid_weight")
    if threshold is None:
        return
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
    _check(kind, threshold, weight)
    if kind in NEEDS and enabled and not ctx.plugins.is_enabled(NEEDS[kind]):
        raise UserError(f"the {kind} rule needs the {NEEDS[kind]} plugin, which is off", "enabled",
                        "plugin_off")
    current = (await effective_rules(ctx))[kind]
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
    _check(kind, None, None)
    await ctx.session.execute(delete(Rule).where(Rule.kind == kind))
    return (await effective_rules(ctx))[kind]
