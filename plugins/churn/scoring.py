"""Rescoring in the database: set-based statements, a batch of customers at a time.

A full rescore makes two passes, so the Python process holds nothing but batch bounds
whatever the number of customers:

1. ``quintiles``: one statement aggregates the orders of the RFM window per customer and
   takes NTILE(5) of recency, frequency and monetary value over that active base; the bounds
   of the first four fifths are stored in ``churn_cutpoints``.
2. ``score_batch``, per batch of customer ids: one ``INSERT ... SELECT ... ON CONFLICT DO
   UPDATE`` aggregates the batch's orders (RFM window, cancellations) and interactions
   (recent, previous, complaints), scores R, F and M on the bounds, names the segment, fires
   the rules and writes the rule bits, health score and lifecycle stage; then three
   statements resolve the warnings of customers whose score recovered, refresh the others,
   and open warnings for those who fell below the threshold (not for customers already
   lost: a year without an order is a win-back campaign's matter, not an early warning).

Rescoring a few customers after an event runs pass 2 for their ids alone, on the stored
bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, bindparam, delete, func, select, text

from core.context import ServiceContext
from core.db import Json, UTCDateTime
from core.models import Customer
from plugins.churn.models import Cutpoints
from plugins.churn.rules import BIT, EffectiveRule, effective_rules
from plugins.churn.settings import ChurnSettings, churn_settings

TIMES = ("now", "rfm_from", "orders_from", "complaint_from", "recent_from", "previous_from", "inter_from")


@dataclass(frozen=True)
class Scope:
    """Which customers a statement covers: an id range, or a list of ids."""

    lo: int | None = None
    hi: int | None = None
    ids: tuple[int, ...] | None = None

    def sql(self, column: str) -> str:
        if self.ids is not None:
            return f"{column} IN :ids"
        return f"{column} >= :lo AND {column} < :hi"

    def params(self) -> dict[str, Any]:
        return {"ids": list(self.ids)} if self.ids is not None else {"lo": self.lo, "hi": self.hi}

    def bind(self, stmt: Any) -> Any:
        return stmt.bindparams(bindparam("ids", expanding=True)) if self.ids is not None else stmt


def _days(column: str, dialect: str) -> str:
    """Whole days from ``column`` to ``:now``."""
    if dialect == "sqlite":
        return f"CAST(julianday(:now) - julianday({column}) AS INTEGER)"
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM (CAST(:now AS TIMESTAMPTZ) - {column})) / 86400) AS INTEGER)"


def _span_days(later: str, earlier: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"(julianday({later}) - julianday({earlier}))"
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


def _times(cfg: ChurnSettings, rules: dict[str, EffectiveRule], now: datetime) -> dict[str, datetime]:
    period = timedelta(days=cfg.interactions_period_days)
    complaint_from = now - timedelta(days=cfg.complaints_window_days)
    rfm_from = now - timedelta(days=cfg.rfm_window_days)
    return {"now": now, "rfm_from": rfm_from, "orders_from": min(rfm_from, complaint_from),
            "complaint_from": complaint_from, "recent_from": now - period, "previous_from": now - 2 * period,
            "inter_from": min(now - 2 * period, complaint_from)}


def _rfm_sql(bounds: dict[str, list[float]] | None, cfg: ChurnSettings) -> tuple[str, str, str, str]:
    """Expressions of R, F, M and the segment over ``rec``, ``freq``, ``mon`` (no bounds yet:
    scores stay empty)."""
    if bounds is None:
        return "NULL", "NULL", "NULL", "CASE WHEN rec IS NOT NULL AND freq = 0 THEN 'lost' END"
    r = _score_case("rec", bounds["recency"], descending=True)
    f = _score_case("freq", bounds["frequency"], descending=False)
    m = _score_case("mon", bounds["monetary"], descending=False)
    segment = f"""CASE WHEN freq = 0 THEN CASE WHEN rec IS NOT NULL THEN 'lost' END
  WHEN ({r}) >= {cfg.champion_min_recency} AND ({f}) >= {cfg.champion_min_frequency} THEN 'champions'
  WHEN ({r}) >= 3 AND ({f}) >= {cfg.loyal_min_frequency} THEN 'loyal'
  WHEN ({r}) >= {cfg.potential_min_recency} THEN 'potential'
  WHEN ({f}) >= {cfg.loyal_min_frequency} THEN 'at_risk'
  WHEN ({r}) > {cfg.lost_max_recency} THEN 'hibernating'
  ELSE 'lost' END"""
    only = "CASE WHEN freq > 0 THEN {} END"
    return only.format(r), only.format(f), only.format(m), segment


def _score_sql(dialect: str, scope: Scope, cfg: ChurnSettings, rules: dict[str, EffectiveRule],
               survey: bool, renewal: bool, bounds: dict[str, list[float]] | None) -> str:
    on = {k: r.enabled for k, r in rules.items()}
    kinds = ", ".join(f"'{k}'" for k in cfg.complaint_kinds) or "''"
    flags = {
        "no_order": "rec IS NOT NULL AND rec >= CAST(:t_no_order AS FLOAT)",
        "long_gap": "gap IS NOT NULL AND rec >= CAST(:gap_min AS FLOAT) AND rec > CAST(:t_long_gap AS FLOAT) * gap",
        "interactions_falling": ("previous >= CAST(:int_min AS FLOAT) "
                                 "AND recent <= previous * (1 - CAST(:t_interactions_falling AS FLOAT))"),
        "complaints": "complaints + canc >= CAST(:t_complaints AS FLOAT)",
        "low_survey": "cid IN :survey_ids" if survey else "1 = 0",
        "renewal_lapse": "cid IN :renewal_ids" if renewal else "1 = 0",
    }
    fired = " + ".join(f"(CASE WHEN {flags[k]} THEN {BIT[k]} ELSE 0 END)" if on[k] else "0" for k in BIT)
    penalty = " + ".join(f"(CASE WHEN {flags[k]} THEN :w_{k} ELSE 0 END)" if on[k] else "0" for k in BIT)
    last_activity = ("CASE WHEN c.last_interaction_at IS NOT NULL AND (c.last_order_at IS NULL OR "
                     "c.last_interaction_at > c.last_order_at) THEN c.last_interaction_at ELSE c.last_order_at END")
    # PostgreSQL would fold the layers into one and compute each day count once per use;
    # OFFSET 0 keeps each layer computed once per row.
    fence = "OFFSET 0" if dialect == "postgresql" else ""
    health = "CASE WHEN penalty >= 100 THEN 0 ELSE 100 - penalty END"
    r, f, m, segment = _rfm_sql(bounds, cfg)
    return f"""
INSERT INTO churn_scores (customer_id, recency_days, frequency, monetary, r, f, m, segment, usual_gap_days,
  interactions_recent, interactions_previous, complaints, cancellations, fired, health, stage, scored_at)
SELECT cid, rec, freq, mon, {r}, {f}, {m}, {segment}, CAST(gap AS INTEGER), recent, previous, complaints, canc,
  fired, {health},
  CASE WHEN rec IS NULL THEN NULL
       WHEN rec >= :lost_days THEN 'lost'
       WHEN first_days < :new_days THEN 'new'
       WHEN {health} < :threshold THEN 'high_risk'
       WHEN idle IS NOT NULL AND idle >= :silent_days THEN 'silent'
       ELSE 'active' END,
  :now
FROM (
  SELECT base.*, {fired} AS fired, {penalty} AS penalty
  FROM (
    SELECT c.id AS cid,
           {_days('c.last_order_at', dialect)} AS rec,
           {_days('c.first_order_at', dialect)} AS first_days,
           {_days(last_activity, dialect)} AS idle,
           CASE WHEN c.order_count >= 2 THEN
             {_span_days('c.last_order_at', 'c.first_order_at', dialect)} / (c.order_count - 1) END AS gap,
           COALESCE(o.freq, 0) AS freq, COALESCE(o.mon, 0) AS mon, COALESCE(o.canc, 0) AS canc,
           COALESCE(i.recent, 0) AS recent, COALESCE(i.previous, 0) AS previous,
           COALESCE(i.complaints, 0) AS complaints
    FROM customers c
    LEFT JOIN (
      SELECT customer_id,
             SUM(CASE WHEN status <> 'cancelled' AND placed_at >= :rfm_from THEN 1 ELSE 0 END) AS freq,
             SUM(CASE WHEN status <> 'cancelled' AND placed_at >= :rfm_from
                      THEN amount - refunded_amount ELSE 0 END) AS mon,
             SUM(CASE WHEN status = 'cancelled' AND placed_at >= :complaint_from THEN 1 ELSE 0 END) AS canc
      FROM orders WHERE {scope.sql('customer_id')} AND placed_at >= :orders_from GROUP BY customer_id
    ) o ON o.customer_id = c.id
    LEFT JOIN (
      SELECT customer_id,
             SUM(CASE WHEN occurred_at >= :recent_from THEN 1 ELSE 0 END) AS recent,
             SUM(CASE WHEN occurred_at < :recent_from AND occurred_at >= :previous_from THEN 1 ELSE 0 END)
               AS previous,
             SUM(CASE WHEN kind IN ({kinds}) AND occurred_at >= :complaint_from THEN 1 ELSE 0 END) AS complaints
      FROM interactions WHERE {scope.sql('customer_id')} AND occurred_at >= :inter_from GROUP BY customer_id
    ) i ON i.customer_id = c.id
    WHERE {scope.sql('c.id')}
    {fence}
  ) base
  {fence}
) scored
WHERE 1 = 1
ON CONFLICT (customer_id) DO UPDATE SET recency_days = excluded.recency_days, frequency = excluded.frequency,
  monetary = excluded.monetary, r = excluded.r, f = excluded.f, m = excluded.m, segment = excluded.segment,
  usual_gap_days = excluded.usual_gap_days,
  interactions_recent = excluded.interactions_recent, interactions_previous = excluded.interactions_previous,
  complaints = excluded.complaints, cancellations = excluded.cancellations, fired = excluded.fired,
  health = excluded.health, stage = excluded.stage, scored_at = excluded.scored_at
"""


def _level_sql() -> str:
    return "CASE WHEN s.health < :high_below THEN 'high' ELSE 'medium' END"


async def _outside_signals(ctx: ServiceContext, scope: Scope, cfg: ChurnSettings,
                           rules: dict[str, EffectiveRule]) -> tuple[list[int] | None, list[int] | None]:
    """Customers of the batch with a low latest survey score (nps) or a subscription ending
    without renewal (renewals), asked through those plugins' own functions."""
    survey = renewal = None
    if not (rules["low_survey"].enabled or rules["renewal_lapse"].enabled):
        return None, None
    if scope.ids is not None:
        ids = list(scope.ids)
    else:
        ids = list(await ctx.session.scalars(
            select(Customer.id).where(Customer.id >= scope.lo, Customer.id < scope.hi)))
    if rules["low_survey"].enabled:
        from plugins.nps.service import latest_scores

        limit = rules["low_survey"].threshold
        scores = await latest_scores(ctx.session, ids)
        survey = [cid for cid, s in scores.items()
                  if (s.scale == "nps" and s.score <= limit) or (s.scale != "nps" and s.category == "dissatisfied")]
    if rules["renewal_lapse"].enabled:
        from plugins.renewals.service import ending_without_renewal

        endings = await ending_without_renewal(ctx.session, ids, today=ctx.now().date(),
                                               within_days=int(rules["renewal_lapse"].threshold))
        renewal = list(endings)
    return survey, renewal


async def score_batch(ctx: ServiceContext, scope: Scope, cfg: ChurnSettings | None = None,
                      rules: dict[str, EffectiveRule] | None = None,
                      bounds: dict[str, list[float]] | None = None) -> None:
    """Pass 2 for the customers in ``scope``: figures, RFM scores and segment on the quintile
    ``bounds``, rules, health, stage; then their warnings."""
    cfg = cfg or churn_settings(ctx)
    rules = rules or await effective_rules(ctx)
    survey, renewal = await _outside_signals(ctx, scope, cfg, rules)
    survey, renewal = (survey or None), (renewal or None)
    sql = _score_sql(ctx.dialect, scope, cfg, rules, survey is not None, renewal is not None, bounds)
    params: dict[str, Any] = {**scope.params(), **_times(cfg, rules, ctx.now()),
                              "lost_days": cfg.lost_days, "new_days": cfg.new_days, "threshold": cfg.threshold,
                              "silent_days": cfg.silent_days, "gap_min": cfg.gap_min_days,
                              "int_min": cfg.interactions_min_previous}
    for kind, rule in rules.items():
        params[f"t_{kind}"], params[f"w_{kind}"] = rule.threshold, rule.active_weight
    stmt = scope.bind(text(sql)).bindparams(*[bindparam(n, type_=UTCDateTime()) for n in TIMES if f":{n}" in sql])
    if survey is not None:
        stmt, params["survey_ids"] = stmt.bindparams(bindparam("survey_ids", expanding=True)), survey
    if renewal is not None:
        stmt, params["renewal_ids"] = stmt.bindparams(bindparam("renewal_ids", expanding=True)), renewal
    used = {k: v for k, v in params.items() if f":{k}" in sql}
    await ctx.session.execute(stmt, used)
    await sync_warnings(ctx, scope, cfg)


async def sync_warnings(ctx: ServiceContext, scope: Scope, cfg: ChurnSettings) -> None:
    """Resolve the open warnings of customers now at or above the threshold (came back when
    they ordered since), refresh the others, and open one for each customer newly below."""
    base = {**scope.params(), "now": ctx.now(), "threshold": cfg.threshold, "high_below": cfg.high_risk_below}
    resolve = f"""
UPDATE churn_warnings SET status = 'resolved', resolved_at = :now,
  came_back = (SELECT CASE WHEN c.last_order_at > churn_warnings.since THEN 1 ELSE 0 END = 1
               FROM customers c WHERE c.id = churn_warnings.customer_id)
WHERE status = 'open' AND {scope.sql('customer_id')}
  AND customer_id IN (SELECT s.customer_id FROM churn_scores s WHERE {scope.sql('s.customer_id')}
                      AND s.health >= :threshold)"""
    refresh = f"""
UPDATE churn_warnings SET score = s.health, fired = s.fired, level = {_level_sql()}
FROM churn_scores s
WHERE s.customer_id = churn_warnings.customer_id AND churn_warnings.status = 'open'
  AND {scope.sql('churn_warnings.customer_id')}
  AND (churn_warnings.score <> s.health OR churn_warnings.fired <> s.fired)"""
    raise_ = f"""
INSERT INTO churn_warnings (customer_id, status, level, score, fired, reasons, since, followed_up, came_back)
SELECT s.customer_id, 'open', {_level_sql()}, s.health, s.fired, :empty, :now, :false_, :false_
FROM churn_scores s
WHERE {scope.sql('s.customer_id')} AND s.health < :threshold AND s.stage <> 'lost'
  AND NOT EXISTS (SELECT 1 FROM churn_warnings w WHERE w.customer_id = s.customer_id AND w.status = 'open')"""
    types: dict[str, Any] = {"now": UTCDateTime(), "empty": Json, "false_": Boolean()}
    params = {**base, "empty": [], "false_": False}
    for sql in (resolve, refresh, raise_):
        stmt = scope.bind(text(sql)).bindparams(*[bindparam(n, type_=t) for n, t in types.items() if f":{n}" in sql])
        await ctx.session.execute(stmt, {k: v for k, v in params.items() if f":{k}" in sql})


async def quintiles(ctx: ServiceContext, cfg: ChurnSettings | None = None) -> dict[str, list[float]]:
    """Pass 1: the bounds of the first four fifths of the active base (customers with an
    order in the RFM window) for recency, frequency and monetary value, in one statement
    over the window's orders; stored for the rescoring of single customers."""
    cfg = cfg or churn_settings(ctx)
    now = ctx.now()
    sql = f"""
WITH a AS (
  SELECT {_days('MAX(placed_at)', ctx.dialect)} AS rec, COUNT(*) AS freq, SUM(amount - refunded_amount) AS mon
  FROM orders WHERE status <> 'cancelled' AND placed_at >= :rfm_from GROUP BY customer_id
), t AS (
  SELECT rec, freq, mon, NTILE(5) OVER (ORDER BY rec) AS tr, NTILE(5) OVER (ORDER BY freq) AS tf,
         NTILE(5) OVER (ORDER BY mon) AS tm
  FROM a
)
SELECT 'recency', tr, MAX(rec) FROM t GROUP BY tr
UNION ALL SELECT 'frequency', tf, MAX(freq) FROM t GROUP BY tf
UNION ALL SELECT 'monetary', tm, MAX(mon) FROM t GROUP BY tm"""
    stmt = text(sql).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("rfm_from", type_=UTCDateTime()))
    rows = (await ctx.session.execute(stmt, {"now": now, "rfm_from": now - timedelta(days=cfg.rfm_window_days)})).all()
    found: dict[str, list[float]] = {"recency": [], "frequency": [], "monetary": []}
    for metric, tile, value in sorted(rows, key=lambda row: (row[0], int(row[1]))):
        if int(tile) < 5:
            found[metric].append(float(value))
    await ctx.session.execute(delete(Cutpoints))
    for metric, bounds in found.items():
        ctx.session.add(Cutpoints(metric=metric, bounds=bounds, computed_at=now))
    await ctx.session.flush()
    return found


async def stored_quintiles(ctx: ServiceContext) -> dict[str, list[float]] | None:
    rows = {c.metric: list(c.bounds) for c in await ctx.session.scalars(select(Cutpoints))}
    return rows if len(rows) == 3 else None


def _score_case(column: str, bounds: list[float], *, descending: bool) -> str:
    """1-5 from the quintile bounds; recency scores 5 for the most recent fifth."""
    if not bounds:
        return "3"
    whens = []
    for n, bound in enumerate(bounds):
        score = 5 - n if descending else n + 1
        whens.append(f"WHEN {column} <= {float(bound)!r} THEN {score}")
    last = 5 - len(bounds) if descending else len(bounds) + 1
    return f"CASE {' '.join(whens)} ELSE {last} END"


async def id_bounds(ctx: ServiceContext) -> tuple[int, int]:
    row = (await ctx.session.execute(select(func.min(Customer.id), func.max(Customer.id)))).one()
    return int(row[0] or 0), int(row[1] or 0)
