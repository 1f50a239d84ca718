"""Earn rules, configured through the API: how many points an order earns, computed from
its lines, and the fixed bonuses. ``order_points`` is a pure function, so ``simulate``
replays a candidate rule over past orders with exactly the code that earns for real."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import validation as v
from tenure.core.config_cache import CachedConfig
from tenure.core.context import ServiceContext
from tenure.core.errors import NotFound, UserError
from tenure.core.reads import Read
from tenure.core.services.customers import tag as clean_tag
from tenure.plugins.loyalty.models import EarnRule
from tenure.plugins.loyalty.settings import LoyaltySettings

RULE_KINDS = ("base", "multiplier", "bonus")
BONUS_TRIGGERS = ("first_order", "birthday", "referral")
MAX_POINTS = 1_000_000


@dataclass
class EarnRuleData:
    name: str
    kind: str
    points: int = 0
    per_amount: int = 100
    currency: str | None = None
    percent: int = 100
    tag: str | None = None
    category: str | None = None
    trigger: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True


def clean_rule(ctx: ServiceContext, data: EarnRuleData) -> dict[str, Any]:
    kind = data.kind.strip().lower()
    if kind not in RULE_KINDS:
        raise UserError("must be one of base, multiplier, bonus", "kind", "invalid_kind")
    values: dict[str, Any] = {
        "name": v.text(data.name, "name", max_length=200), "kind": kind, "active": data.active, "points": 0,
        "per_amount": 100, "currency": None, "percent": 100, "tag": None, "category": None, "trigger": None,
        "starts_at": None, "ends_at": None,
    }
    if kind in ("base", "bonus") and not 1 <= data.points <= MAX_POINTS:
        raise UserError(f"must be between 1 and {MAX_POINTS}", "points", "invalid_points")
    if kind == "base":
        if not 1 <= data.per_amount <= v.MAX_MINOR_UNITS:
            raise UserError("must be at least 1 minor unit", "perAmount", "invalid_amount")
        values.update(points=data.points, per_amount=data.per_amount,
                      currency=v.currency(data.currency or ctx.settings.currency, ctx.settings.currency))
    elif kind == "multiplier":
        if not 0 <= data.percent <= 10_000:
            raise UserError("must be between 0 and 10000 (100 is no change, 200 doubles)", "percent", "invalid_percent")
        starts = v.aware(data.starts_at, "startsAt") if data.starts_at else None
        ends = v.aware(data.ends_at, "endsAt") if data.ends_at else None
        if starts and ends and ends <= starts:
            raise UserError("must be after startsAt", "endsAt", "invalid_window")
        values.update(percent=data.percent, tag=clean_tag(data.tag, "tag") if data.tag else None,
                      category=v.text(data.category, "category", max_length=100, required=False) or None,
                      starts_at=starts, ends_at=ends)
    else:
        trigger = (data.trigger or "").strip().lower()
        if trigger not in BONUS_TRIGGERS:
            raise UserError("must be one of first_order, birthday, referral", "trigger", "invalid_trigger")
        values.update(points=data.points, trigger=trigger)
    return values


async def create_rule(ctx: ServiceContext, data: EarnRuleData) -> EarnRule:
    rule = EarnRule(**clean_rule(ctx, data), created_at=ctx.now())
    ctx.session.add(rule)
    await ctx.session.flush()
    return rule


async def update_rule(ctx: ServiceContext, rule_id: int, data: EarnRuleData) -> EarnRule:
    rule = await ctx.session.get(EarnRule, rule_id)
    if rule is None:
        raise NotFound("earn rule", rule_id, "id")
    for name, value in clean_rule(ctx, data).items():
        setattr(rule, name, value)
    await ctx.session.flush()
    return rule


@dataclass
class RuleSet:
    rules: list[EarnRule] = field(default_factory=list)
    _bases: dict[str, tuple[int, int, str]] = field(default_factory=dict, repr=False)

    def base(self, currency: str, settings: LoyaltySettings) -> tuple[int, int, str]:
        """Points, per minor units, and the rule's name (the newest active base rule wins);
        worked out once per currency (a batch of orders asks once per order)."""
        found = self._bases.get(currency)
        if found is None:
            bases = [r for r in self.rules if r.kind == "base" and r.currency in (None, currency)]
            if not bases:
                found = settings.default_points, settings.default_per_amount, "default rate"
            else:
                rule = max(bases, key=lambda r: (r.created_at, r.id or 0))
                found = rule.points, rule.per_amount, rule.name
            self._bases[currency] = found
        return found

    def bonus(self, trigger: str) -> EarnRule | None:
        found = [r for r in self.rules if r.kind == "bonus" and r.trigger == trigger]
        return max(found, key=lambda r: (r.created_at, r.id or 0)) if found else None

    @cached_property
    def multipliers(self) -> list[EarnRule]:
        return [r for r in self.rules if r.kind == "multiplier"]

    @property
    def needs_tags(self) -> bool:
        return any(r.kind == "multiplier" and r.tag for r in self.rules)


_ACTIVE_RULES = CachedConfig("loyalty.earn_rules", EarnRule, Read(
    lambda _keys: select(EarnRule).where(EarnRule.active.is_(True)).order_by(EarnRule.id)))


async def load_rules(session: AsyncSession) -> RuleSet:
    """The active earn rules, kept per process until they change."""
    return RuleSet(await _ACTIVE_RULES.get(session))


def order_points(rules: RuleSet, settings: LoyaltySettings, *, amount: int, currency: str,
                 lines: list[tuple[int, str | None]], tags: set[str], at: datetime,
                 extra_percents: list[tuple[int, str]] = ()) -> tuple[int, dict[str, Any]]:  # type: ignore[assignment]
    """Points for an order of ``amount`` placed ``at``: the base rate on each line's share of
    the amount (so discounts spread over the lines), times every multiplier that applies to
    that line, times ``extra_percents`` (the tier's). Rounded down once, at the end."""
    points, per_amount, base_name = rules.base(currency, settings)
    if not rules.multipliers:
        # No rule multiplies a line, so the lines' shares add up to the amount exactly:
        # the same rounded-down figure in integers, without a Fraction per line.
        numerator, denominator = amount * points, per_amount
        for percent, _ in extra_percents:
            numerator, denominator = numerator * percent, denominator * 100
        detail = {"rate": f"{points} per {per_amount} ({base_name})", "multipliers": [],
                  "extra": [f"{p}% {why}" for p, why in extra_percents]}
        return numerator // denominator, detail
    total_lines = sum(a for a, _ in lines)
    shares = [(Fraction(amount * a, total_lines), c) for a, c in lines] if total_lines else [(Fraction(amount), None)]
    applied: set[str] = set()
    total = Fraction(0)
    for share, category in shares:
        value = share * points / per_amount
        for rule in rules.rules:
            if rule.kind != "multiplier":
                continue
            if (rule.tag and rule.tag not in tags) or (rule.category and rule.category != category):
                continue
            if (rule.starts_at and at < rule.starts_at) or (rule.ends_at and at >= rule.ends_at):
                continue
            value = value * rule.percent / 100
            applied.add(rule.name)
        total += value
    for percent, _ in extra_percents:
        total = total * percent / 100
    detail = {"rate": f"{points} per {per_amount} ({base_name})", "multipliers": sorted(applied),
              "extra": [f"{p}% {why}" for p, why in extra_percents]}
    return int(total), detail
