"""Rescoring in the database: set-based statements; the Python process holds no rows.

A full rescore (:func:`score_everyone`) runs in one transaction:

1. ``stage``: each customer's window figures (orders and spend of the RFM window,
   cancellations; interactions recent and previous, complaints) are joined to the customers'
   derived columns and the rules fire: figures, rule bits, health score and lifecycle stage
   per customer go into a temporary table (no WAL, dropped at the end). The figures come one
   of two ways:

   - ``recount``: aggregated from the orders and interactions of the windows, for everyone
     (the first rescore, or after the windows' settings changed, or when asked);
   - ``advance`` (every other run): the stored figures of the last run, less what left each
     window since (a day of orders and interactions, read by their time index); customers
     whose orders or interactions changed since (marked in ``churn_stale`` by the events,
     or rescored after an event) are counted afresh.

2. ``quintiles``: NTILE(5) of recency, frequency and monetary value over the active base
   (customers with an order in the RFM window) from that table; the bounds of the first four
   fifths are stored in ``churn_cutpoints``.
3. ``scores``: one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` scores R, F and M on the
   bounds, names the segment and writes each customer's row, only where something changed.
4. ``warnings``: three statements resolve the open warnings of customers whose score
   recovered, refresh the others, and open one for each customer newly below the threshold
   (not for customers already lost: a year without an order is a win-back campaign's matter,
   not an early warning).

Rescoring a few customers after an event (:func:`score_batch`) counts their figures afresh
and runs the same rules for their ids alone, inline, on the stored bounds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, Table, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql

from core.context import ServiceContext
from core.db import Json, UTCDateTime
from core.models import Customer
from plugins.churn.models import Cutpoints, Run, Score, Stale
from plugins.churn.rules import BIT, EffectiveRule, effective_rules
from plugins.churn.settings import ChurnSettings, churn_settings

WINDOW_TIMES = ("now", "rfm_from", "orders_from", "complaint_from", "recent_from", "previous_from", "inter_from")
#: The times of the window bounds, now and at the last run (``was_``).
TIMES = (*WINDOW_TIMES, *(f"was_{t}" for t in WINDOW_TIMES))
STAGE = "churn_stage"
SIGNALS = "churn_signals"
#: The customers whose figures this rescore counts afresh, with the mark it read of each.
RECOUNT = "churn_recount"
#: The score rows a full rescore changed, and (moving on) those it counted afresh.
TOUCHED = "churn_touched"
SCORE_COLUMNS = ("last_order_at", "frequency", "monetary", "r", "f", "m", "segment", "usual_gap_days",
                 "interactions_recent", "interactions_previous", "complaints", "cancellations", "fired", "health",
                 "stage")
#: The window figures and their score columns.
COUNTS = {"freq": "frequency", "mon": "monetary", "canc": "cancellations", "recent": "interactions_recent",
          "previous": "interactions_previous", "complaints": "complaints"}
#: The score columns, besides the window figures, that do not depend on the quintile bounds.
JUDGED = {"fired": "fired", "health": "health", "lstage": "stage"}
#: Every rescore, after an event or of everyone, holds this lock (PostgreSQL) for its
#: transaction: a full rescore compares its figures with the rows as they were when it read
#: them, and writes only those that changed.
LOCK = 6_386_327_683_470  # "churn"


@dataclass(frozen=True)
class Scope:
    """Which customers a statement covers: everyone, a list of ids, or those a condition on
    ``{column}`` selects (``within``)."""

    ids: tuple[int, ...] | None = None
    within: str | None = None

    def sql(self, column: str) -> str:
        if self.within is not None:
            return self.within.format(column=column)
        return "1 = 1" if self.ids is None else f"{column} IN :ids"

    def params(self) -> dict[str, Any]:
        return {} if self.ids is None else {"ids": list(self.ids)}

    def bind(self, stmt: Any) -> Any:
        return stmt.bindparams(bindparam("ids", expanding=True)) if self.ids is not None else stmt


EVERYONE = Scope()


def _age(column: str, dialect: str) -> str:
    """Days (a float) from ``column`` to ``:now`` (PostgreSQL: ``date_part`` is a double,
    where ``EXTRACT`` would be a slower numeric)."""
    if dialect == "sqlite":
        return f"(julianday(:now) - julianday({column}))"
    return f"((:now_epoch - date_part('epoch', {column})) / 86400.0)"


def _whole(days: str, dialect: str) -> str:
    """Whole days of a float (the age of a past moment: never negative)."""
    return f"CAST({days} AS INTEGER)" if dialect == "sqlite" else f"CAST(FLOOR({days}) AS INTEGER)"


def _span(later: str, earlier: str, dialect: str) -> str:
    """Days (a float) from ``earlier`` to ``later``."""
    if dialect == "sqlite":
        return f"(julianday({later}) - julianday({earlier}))"
    return f"((date_part('epoch', {later}) - date_part('epoch', {earlier})) / 86400.0)"


def _times(cfg: ChurnSettings, now: datetime) -> dict[str, datetime]:
    period = timedelta(days=cfg.interactions_period_days)
    complaint_from = now - timedelta(days=cfg.complaints_window_days)
    rfm_from = now - timedelta(days=cfg.rfm_window_days)
    return {"now": now, "rfm_from": rfm_from, "orders_from": min(rfm_from, complaint_from),
            "complaint_from": complaint_from, "recent_from": now - period, "previous_from": now - 2 * period,
            "inter_from": min(now - 2 * period, complaint_from)}


def _rfm_sql(bounds: dict[str, list[float]] | None, cfg: ChurnSettings) -> tuple[str, str, str, str]:
    """Expressions of R, F and M over ``rec``, ``freq``, ``mon``, and of the segment over
    ``freq``, ``rec`` and the scores ``r`` and ``f`` (no bounds yet: scores stay empty)."""
    if bounds is None:
        # Typed: PostgreSQL takes a bare NULL in a subquery's select list for text.
        empty = "CAST(NULL AS INTEGER)"
        return empty, empty, empty, "CASE WHEN rec IS NOT NULL AND freq = 0 THEN 'lost' END"
    only = "CASE WHEN freq > 0 THEN {} END"
    r = only.format(_score_case("rec", bounds["recency"], descending=True))
    f = only.format(_score_case("freq", bounds["frequency"], descending=False))
    m = only.format(_score_case("mon", bounds["monetary"], descending=False))
    segment = f"""CASE WHEN freq = 0 THEN CASE WHEN rec IS NOT NULL THEN 'lost' END
  WHEN r >= {cfg.champion_min_recency} AND f >= {cfg.champion_min_frequency} THEN 'champions'
  WHEN r >= 3 AND f >= {cfg.loyal_min_frequency} THEN 'loyal'
  WHEN r >= {cfg.potential_min_recency} THEN 'potential'
  WHEN f >= {cfg.loyal_min_frequency} THEN 'at_risk'
  WHEN r > {cfg.lost_max_recency} THEN 'hibernating'
  ELSE 'lost' END"""
    return r, f, m, segment


Figures = tuple[dict[str, str], str, str, str]


def _counted(scope: Scope, kinds: str) -> Figures:
    """The window figures of the customers in ``scope`` aggregated from their orders and
    interactions: each figure's expression, the other columns (``unsure``, ``counted``), the
    joins and the condition of the figures' layer."""
    counts = {"freq": "COALESCE(o.freq, 0)", "mon": "COALESCE(o.mon, 0)", "canc": "COALESCE(o.canc, 0)",
              "recent": "COALESCE(i.recent, 0)", "previous": "COALESCE(i.previous, 0)",
              "complaints": "COALESCE(i.complaints, 0)"}
    # The scope on both sides of the join to the score rows: a few customers are then found
    # by their key, not by hashing every row. Each count bounds its own period, so the
    # interactions' time bound only narrows the scan of everyone's; for a few customers it
    # would lead PostgreSQL to read the period's interactions of everyone and keep theirs.
    since = " AND occurred_at >= :inter_from" if scope == EVERYONE else ""
    joins = f"""LEFT JOIN churn_scores s ON s.customer_id = c.id AND {scope.sql('s.customer_id')}
      LEFT JOIN (
        SELECT customer_id,
               COUNT(*) FILTER (WHERE status <> 'cancelled' AND placed_at >= :rfm_from) AS freq,
               CAST(COALESCE(SUM(amount - refunded_amount)
                 FILTER (WHERE status <> 'cancelled' AND placed_at >= :rfm_from), 0) AS BIGINT) AS mon,
               COUNT(*) FILTER (WHERE status = 'cancelled' AND placed_at >= :complaint_from) AS canc
        FROM orders WHERE {scope.sql('customer_id')} AND placed_at >= :orders_from GROUP BY customer_id
      ) o ON o.customer_id = c.id
      LEFT JOIN (
        SELECT customer_id,
               COUNT(*) FILTER (WHERE occurred_at >= :recent_from) AS recent,
               COUNT(*) FILTER (WHERE occurred_at < :recent_from AND occurred_at >= :previous_from) AS previous,
               COUNT(*) FILTER (WHERE kind IN ({kinds}) AND occurred_at >= :complaint_from) AS complaints
        FROM interactions WHERE {scope.sql('customer_id')}{since} GROUP BY customer_id
      ) i ON i.customer_id = c.id"""
    return counts, "0 AS unsure, 1 AS counted", joins, scope.sql("c.id")


def _recounted(dialect: str) -> Scope:
    """The customers of :data:`RECOUNT`. On PostgreSQL their ids come as an array
    (``:recount_ids``): a statement reading a temporary table runs on one core, one with an
    array can scan in parallel."""
    if dialect == "postgresql":
        return Scope(within="{column} = ANY(:recount_ids)")
    return Scope(within=f"{{column}} IN (SELECT cid FROM {RECOUNT})")


def _moved_on(dialect: str, kinds: str, recounted: Scope) -> Figures:
    """The window figures of the customers not ``recounted``: those stored at the last
    run (``was_`` times), less the orders and interactions that left each window since. Each
    window's start moved from ``was_x_from`` to ``x_from`` (its span, ``x_span``, before the
    moment), so what left it lies between;
    interactions leaving the recent period enter the previous one. On PostgreSQL a row a
    rescore wrote after the last run (an event's) moves on from its own ``figures_at``: what
    left its windows starts at that moment less the window's span (SQLite counts those
    customers afresh). A customer without a score row, or with an order or interaction after
    their figures that no mark or rescore counted (``unsure``), is counted afresh after this
    statement."""
    def left(window: str, column: str) -> str:
        since = f":was_{window}_from"
        if dialect == "postgresql":
            since = f"GREATEST({since}, s2.figures_at - CAST(:{window}_span AS INTERVAL))"
        return f"{column} >= {since} AND {column} < :{window}_from"

    anchor = "GREATEST(s.figures_at, :was_now)" if dialect == "postgresql" else ":was_now"
    # Those rows' moments come as arrays (:anchor_ids, :anchor_ats): a hash of a few in each
    # worker, where a join to every score row would be planned above the workers.
    anchors = ("LEFT JOIN unnest(CAST(:anchor_ids AS BIGINT[]), CAST(:anchor_ats AS TIMESTAMP WITH TIME ZONE[])) "
               "AS s2 (customer_id, figures_at) ON s2.customer_id = {t}.customer_id") if dialect == "postgresql" else ""
    counts = {"freq": "s.frequency - COALESCE(o.freq, 0)", "mon": "s.monetary - COALESCE(o.mon, 0)",
              "canc": "s.cancellations - COALESCE(o.canc, 0)",
              "recent": "s.interactions_recent - COALESCE(i.recent, 0)",
              "previous": "s.interactions_previous + COALESCE(i.recent, 0) - COALESCE(i.previous, 0)",
              "complaints": "s.complaints - COALESCE(i.complaints, 0)"}
    unsure = f"""CASE WHEN s.customer_id IS NULL OR c.last_order_at > {anchor} OR c.last_interaction_at > {anchor}
                  THEN 1 ELSE 0 END AS unsure, 0 AS counted"""
    joins = f"""LEFT JOIN churn_scores s ON s.customer_id = c.id
      LEFT JOIN (
        SELECT o.customer_id,
               COUNT(*) FILTER (WHERE status <> 'cancelled' AND {left('rfm', 'placed_at')}) AS freq,
               CAST(COALESCE(SUM(amount - refunded_amount)
                 FILTER (WHERE status <> 'cancelled' AND {left('rfm', 'placed_at')}), 0) AS BIGINT) AS mon,
               COUNT(*) FILTER (WHERE status = 'cancelled' AND {left('complaint', 'placed_at')}) AS canc
        FROM orders o {anchors.format(t='o')}
        WHERE (placed_at >= :was_rfm_from AND placed_at < :rfm_from)
           OR (placed_at >= :was_complaint_from AND placed_at < :complaint_from)
        GROUP BY o.customer_id
      ) o ON o.customer_id = c.id
      LEFT JOIN (
        SELECT i.customer_id,
               COUNT(*) FILTER (WHERE {left('recent', 'occurred_at')}) AS recent,
               COUNT(*) FILTER (WHERE {left('previous', 'occurred_at')}) AS previous,
               COUNT(*) FILTER (WHERE kind IN ({kinds}) AND {left('complaint', 'occurred_at')}) AS complaints
        FROM interactions i {anchors.format(t='i')}
        WHERE (occurred_at >= :was_recent_from AND occurred_at < :recent_from)
           OR (occurred_at >= :was_previous_from AND occurred_at < :previous_from)
           OR (occurred_at >= :was_complaint_from AND occurred_at < :complaint_from)
        GROUP BY i.customer_id
      ) i ON i.customer_id = c.id"""
    return counts, unsure, joins, f"NOT ({recounted.sql('c.id')})"


def _figures_sql(dialect: str, scope: Scope, cfg: ChurnSettings, rules: dict[str, EffectiveRule],
                 survey: str, renewal: str, signals_join: str = "", moved_on: bool = False) -> str:
    """Per customer of ``scope`` (or, ``moved_on``, every customer not in it):
    the figures, rule bits (``fired``), ``health``, lifecycle stage (``lstage``) and
    ``unsure`` (see :func:`_moved_on`). ``survey`` and ``renewal`` are the conditions of the
    outside signals."""
    on = {k: r.enabled for k, r in rules.items()}
    kinds = ", ".join(f"'{k}'" for k in cfg.complaint_kinds) or "''"
    counts, others, joins, where = _moved_on(dialect, kinds, scope) if moved_on else _counted(scope, kinds)
    flags = {
        "no_order": "rec IS NOT NULL AND rec >= CAST(:t_no_order AS FLOAT)",
        "long_gap": "gap IS NOT NULL AND rec >= CAST(:gap_min AS FLOAT) AND rec > CAST(:t_long_gap AS FLOAT) * gap",
        "interactions_falling": ("previous >= CAST(:int_min AS FLOAT) "
                                 "AND recent <= previous * (1 - CAST(:t_interactions_falling AS FLOAT))"),
        "complaints": "complaints + canc >= CAST(:t_complaints AS FLOAT)",
        "low_survey": survey,
        "renewal_lapse": renewal,
    }
    fired = " + ".join(f"(CASE WHEN {flags[k]} THEN {BIT[k]} ELSE 0 END)" if on[k] else "0" for k in BIT)
    penalty = " + ".join(f"(CASE WHEN {flags[k]} THEN :w_{k} ELSE 0 END)" if on[k] else "0" for k in BIT)
    last_activity = ("CASE WHEN c.last_interaction_at IS NOT NULL AND (c.last_order_at IS NULL OR "
                     "c.last_interaction_at > c.last_order_at) THEN c.last_interaction_at ELSE c.last_order_at END")
    # PostgreSQL would fold the layers into one and compute each day count once per use;
    # OFFSET 0 keeps each layer computed once per row.
    fence = "OFFSET 0" if dialect == "postgresql" else ""
    differs = " IS DISTINCT FROM " if dialect == "postgresql" else " IS NOT "
    same = " IS NOT DISTINCT FROM " if dialect == "postgresql" else " IS "
    span = _span("c.last_order_at", "c.first_order_at", dialect)
    gap = f"CASE WHEN c.order_count >= 2 THEN {span} / (c.order_count - 1) END"
    # Whether the stored row, as this statement reads it, has these figures (told where they
    # are counted, so that only the few stored columns judged later travel up the layers).
    kept = " AND ".join((f"c.last_order_at{same}s.last_order_at", f"CAST({gap} AS INTEGER){same}s.usual_gap_days",
                         *(f"{e} = s.{COUNTS[n]}" for n, e in counts.items())))
    figures = ", ".join(f"{e} AS {n}" for n, e in counts.items())
    moved = " OR ".join(f"{c}{differs}was_{c}" for c in JUDGED)
    stored = (*JUDGED.items(), ("r", "r"), ("f", "f"), ("m", "m"), ("segment", "segment"))
    was = ", ".join(f"s.{column} AS was_{name}" for name, column in stored)
    return f"""
SELECT cid, last_at, rec, freq, mon, gap, recent, previous, complaints, canc, fired, health, lstage, unsure, counted,
  CASE WHEN kept = 1 AND NOT ({moved}) THEN 1 ELSE 0 END AS same,
  was_r, was_f, was_m, was_segment
FROM (
SELECT cid, last_at, rec, freq, mon, CAST(gap AS INTEGER) AS gap, recent, previous, complaints, canc, fired, health,
  CASE WHEN rec IS NULL THEN NULL
       WHEN rec >= :lost_days THEN 'lost'
       WHEN first_days < :new_days THEN 'new'
       WHEN health < :threshold THEN 'high_risk'
       WHEN idle IS NOT NULL AND idle >= :silent_days THEN 'silent'
       ELSE 'active' END AS lstage, unsure, counted, kept, {', '.join(f'was_{name}' for name, _ in stored)}
FROM (
  SELECT flagged.*, CASE WHEN penalty >= 100 THEN 0 ELSE 100 - penalty END AS health
  FROM (
    SELECT base.*, {fired} AS fired, {penalty} AS penalty
    FROM (
      SELECT c.id AS cid, c.last_order_at AS last_at,
             {_whole(_age('c.last_order_at', dialect), dialect)} AS rec,
             {_whole(_age('c.first_order_at', dialect), dialect)} AS first_days,
             {_whole(_age(last_activity, dialect), dialect)} AS idle,
             {gap} AS gap, {figures}, {others},
             CASE WHEN s.customer_id IS NOT NULL AND s.figures_at IS NOT NULL AND {kept} THEN 1 ELSE 0 END AS kept,
             {was}{', g.survey AS survey, g.renewal AS renewal' * bool(signals_join)}
      FROM customers c
      {joins}
      {signals_join}
      WHERE {where}
      {fence}
    ) base
    {fence}
  ) flagged
) scored
) judged"""


def _scored_sql(dialect: str, source: str, cfg: ChurnSettings, bounds: dict[str, list[float]] | None,
                touched: str | None = None) -> str:
    """The score rows of ``source`` (the figures): ``customer_id`` and :data:`SCORE_COLUMNS`.
    With ``touched`` (a condition on ``changed`` and ``counted``), only those rows, with
    ``changed``: whether the row differs from the stored one as ``source`` read it (or there
    is none), and ``counted``: whether its figures were counted afresh."""
    r, f, m, segment = _rfm_sql(bounds, cfg)
    fence = "OFFSET 0" if dialect == "postgresql" else ""
    names = ("last_at", "freq", "mon", "r", "f", "m", segment, "gap", "recent", "previous", "complaints", "canc",
             "fired", "health", "lstage")
    columns = ", ".join(f"{e} AS {c}" for e, c in zip(names, SCORE_COLUMNS, strict=True))
    extra = ", same, counted, was_r, was_f, was_m, was_segment" if touched else ""
    scored = f"""SELECT cid AS customer_id, {columns}{extra}
FROM (SELECT figures.*, {r} AS r, {f} AS f, {m} AS m FROM {source} figures {fence}) rfm"""
    if not touched:
        return scored
    differs = " IS DISTINCT FROM " if dialect == "postgresql" else " IS NOT "
    moved = " OR ".join(f"{c}{differs}was_{c}" for c in ("r", "f", "m", "segment"))
    return f"""SELECT * FROM (
  SELECT customer_id, {', '.join(SCORE_COLUMNS)}, CASE WHEN same = 0 OR {moved} THEN 1 ELSE 0 END AS changed, counted
  FROM ({scored}) q {fence}) t
WHERE {touched}"""


def _write_sql(dialect: str, source: str, cfg: ChurnSettings, bounds: dict[str, list[float]] | None,
               how: str = "upsert") -> str:
    """Write the score rows of ``source``, their figures counted at ``:now``: ``insert`` them
    (an empty table), ``upsert`` them (a few customers counted afresh: every row takes the
    new ``figures_at``, ``scored_at`` moves only where something changed), ``update`` the
    rows that changed (the stored figures of the others stand as of this run), or ``add``
    those of customers without a row. No row a later rescore wrote (``figures_at`` after
    this one's) is overwritten: its figures saw more."""
    scored = _scored_sql(dialect, source, cfg, bounds)
    differs = " IS DISTINCT FROM " if dialect == "postgresql" else " IS NOT "
    if how == "update":
        # ``source`` holds the touched rows (see score_everyone), with ``changed``.
        return f"""
UPDATE churn_scores SET {', '.join(f'{c} = n.{c}' for c in SCORE_COLUMNS)}, scored_at = :now, figures_at = :now
FROM {source} n
WHERE churn_scores.customer_id = n.customer_id AND n.changed = 1
  AND (churn_scores.figures_at IS NULL OR churn_scores.figures_at <= :now)"""
    insert = f"""
INSERT INTO churn_scores (customer_id, {', '.join(SCORE_COLUMNS)}, scored_at, figures_at)
SELECT n.*, :now, :now FROM ({scored}) n
WHERE 1 = 1"""
    if how == "insert":
        return insert
    if how == "add":
        # NOT IN over the key: one hash of the rows there before (an anti-join planned on
        # stale statistics could rescan the growing table for every row).
        return f"""{insert} AND n.customer_id NOT IN (SELECT customer_id FROM churn_scores)
ON CONFLICT (customer_id) DO NOTHING"""
    changed = " OR ".join(f"churn_scores.{c}{differs}excluded.{c}" for c in SCORE_COLUMNS)
    return f"""{insert}
ON CONFLICT (customer_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in SCORE_COLUMNS)},
  scored_at = CASE WHEN {changed} THEN excluded.scored_at ELSE churn_scores.scored_at END,
  figures_at = excluded.figures_at
WHERE churn_scores.figures_at IS NULL OR churn_scores.figures_at <= excluded.figures_at"""


def _params(cfg: ChurnSettings, rules: dict[str, EffectiveRule], now: datetime,
            was: datetime | None = None) -> dict[str, Any]:
    """The statements' parameters; ``was``: the moment of the run whose figures move on."""
    moved: dict[str, Any] = {f"was_{k}": v for k, v in _times(cfg, was).items()} if was is not None else {}
    if was is not None:
        period = timedelta(days=cfg.interactions_period_days)
        moved.update(rfm_span=timedelta(days=cfg.rfm_window_days), recent_span=period, previous_span=2 * period,
                     complaint_span=timedelta(days=cfg.complaints_window_days))
    params: dict[str, Any] = {**_times(cfg, now), **moved, "now_epoch": now.timestamp(),
                              "lost_days": cfg.lost_days, "new_days": cfg.new_days,
                              "threshold": cfg.threshold, "silent_days": cfg.silent_days,
                              "gap_min": cfg.gap_min_days, "int_min": cfg.interactions_min_previous}
    for kind, rule in rules.items():
        params[f"t_{kind}"], params[f"w_{kind}"] = rule.threshold, rule.active_weight
    return params


async def _run(ctx: ServiceContext, sql: str, params: dict[str, Any], scope: Scope = EVERYONE,
               lists: tuple[str, ...] = ()) -> Any:
    """Execute ``sql`` with the parameters it names (times as UTC datetimes)."""
    named = set(re.findall(r"(?<!:):(\w+)", sql))
    stmt = scope.bind(text(sql)).bindparams(*[bindparam(n, type_=UTCDateTime()) for n in TIMES if n in named])
    for name in ("recount_ids", "anchor_ids"):
        if name in named:
            stmt = stmt.bindparams(bindparam(name, type_=postgresql.ARRAY(BigInteger)))
    if "anchor_ats" in named:
        stmt = stmt.bindparams(bindparam("anchor_ats", type_=postgresql.ARRAY(postgresql.TIMESTAMP(timezone=True))))
    for name in lists:
        stmt = stmt.bindparams(bindparam(name, expanding=True))
    return await ctx.session.execute(stmt, {k: v for k, v in params.items() if k in named})


async def _outside_signals(ctx: ServiceContext, ids: list[int],
                           rules: dict[str, EffectiveRule]) -> tuple[list[int], list[int]]:
    """Customers among ``ids`` with a low latest survey score (nps) or a subscription ending
    without renewal (renewals), asked through those plugins' own functions."""
    survey: list[int] = []
    renewal: list[int] = []
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


def _outside(rules: dict[str, EffectiveRule]) -> bool:
    return rules["low_survey"].enabled or rules["renewal_lapse"].enabled


async def score_batch(ctx: ServiceContext, scope: Scope, cfg: ChurnSettings | None = None,
                      rules: dict[str, EffectiveRule] | None = None,
                      bounds: dict[str, list[float]] | None = None) -> None:
    """The customers in ``scope`` (a few, after an event): figures, RFM scores and segment on
    the quintile ``bounds``, rules, health, stage; then their warnings."""
    cfg = cfg or churn_settings(ctx)
    rules = rules or await effective_rules(ctx)
    await _lock(ctx)
    survey: list[int] = []
    renewal: list[int] = []
    if _outside(rules) and scope.ids:
        survey, renewal = await _outside_signals(ctx, list(scope.ids), rules)
    # The marks read before the figures: the data each stands for is counted below.
    marks = [{"c": c, "m": m} for c, m in await ctx.session.execute(
        select(Stale.customer_id, Stale.marked_at).where(Stale.customer_id.in_(scope.ids or ())))]
    figures = _figures_sql(ctx.dialect, scope, cfg, rules, "cid IN :survey_ids" if survey else "1 = 0",
                           "cid IN :renewal_ids" if renewal else "1 = 0")
    params = {**scope.params(), **_params(cfg, rules, ctx.now()), "survey_ids": survey, "renewal_ids": renewal}
    lists = tuple(n for n, v in (("survey_ids", survey), ("renewal_ids", renewal)) if v)
    await _run(ctx, _write_sql(ctx.dialect, f"({figures})", cfg, bounds), params, scope, lists)
    if marks:
        stale = cast(Table, Stale.__table__)
        await ctx.session.execute(delete(stale).where(stale.c.customer_id == bindparam("c"),
                                                      stale.c.marked_at == bindparam("m")), marks)
    source = ("(SELECT customer_id AS cid, health, fired, stage AS lstage FROM churn_scores "
              f"WHERE {scope.sql('customer_id')})")
    await sync_warnings(ctx, scope, cfg, source)


Step = Callable[[str], None]


def pg_settings(cfg: ChurnSettings) -> tuple[str, ...]:
    """What the full rescore's transaction sets on PostgreSQL: room for the sorts and hash
    tables of a million customers in memory, no JIT compiling (the statements are simple and
    long), and parallel workers for the interactions' aggregate too, not only the orders'."""
    return f"work_mem = '{int(cfg.work_mem_mb)}MB'", "jit = off", "parallel_tuple_cost = 0.01"


def basis_of(cfg: ChurnSettings) -> dict[str, Any]:
    """The settings the stored figures were counted under, and those that turn a score into
    a warning: under others the figures are counted afresh and every warning checked."""
    return {"rfm_window_days": cfg.rfm_window_days, "complaints_window_days": cfg.complaints_window_days,
            "interactions_period_days": cfg.interactions_period_days,
            "complaint_kinds": sorted(cfg.complaint_kinds), "threshold": cfg.threshold,
            "high_risk_below": cfg.high_risk_below}


async def last_run(ctx: ServiceContext) -> Run | None:
    return await ctx.session.scalar(select(Run).order_by(Run.id.desc()).limit(1))


@dataclass(frozen=True)
class Rescored:
    """What a full rescore did: customers with a score, whose figures it counted afresh,
    score rows it wrote, and how (``recount`` or ``advance``, see the module's docstring)."""

    scored: int
    recounted: int
    rewritten: int
    mode: str


async def score_everyone(ctx: ServiceContext, cfg: ChurnSettings, rules: dict[str, EffectiveRule],
                         step: Step | None = None, *, recount: bool = False) -> Rescored:
    """The full rescore in ``ctx``'s transaction (see the module's docstring): figures moved
    on from the last run where its windows are today's, else (or with ``recount``) counted
    afresh. ``step(name)`` is told after each statement."""
    started = time.perf_counter()
    dialect = ctx.dialect
    await _lock(ctx)
    if dialect == "postgresql":
        for setting in pg_settings(cfg):
            await ctx.session.execute(text(f"SET LOCAL {setting}"))
    temp = "CREATE TEMP TABLE {} ON COMMIT DROP AS" if dialect == "postgresql" else "CREATE TEMP TABLE {} AS"
    await _drop_temp(ctx)
    now = ctx.now()
    last = None if recount else await last_run(ctx)
    advance = last is not None and last.basis == basis_of(cfg) and last.scored_at <= now
    params = _params(cfg, rules, now, last.scored_at if advance and last else None)
    survey = renewal = "1 = 0"
    join = ""
    if _outside(rules):
        await _stage_signals(ctx, cfg, rules)
        survey, renewal, join = "survey = 1", "renewal = 1", f"LEFT JOIN {SIGNALS} g ON g.customer_id = c.id"
    # The marks this rescore reads: once its figures are written it deletes these, and only
    # these (a mark made meanwhile stands for data it may not have seen).
    await ctx.session.execute(text(f"{temp.format(RECOUNT)} SELECT customer_id AS cid, marked_at AS mark_at "
                                   "FROM churn_stale"))
    if advance and last is not None:
        # Rows no rescore has written since churn_0004 are counted afresh; so are, on SQLite,
        # those a rescore wrote after an event since the last run, which on PostgreSQL move on
        # from their own moment (see _moved_on). Past a share of the customers, everyone is
        # counted afresh (and no more of these rows are read).
        cap = int(cfg.recount_above * last.customers)
        marked = set(await ctx.session.scalars(text(f"SELECT cid FROM {RECOUNT}")))
        later = list(await _run(ctx, """SELECT customer_id, figures_at FROM churn_scores
WHERE figures_at IS NULL OR figures_at > :was_now LIMIT :cap""", {**params, "cap": cap + 1}))
        anchored = [(c, at) for c, at in later if at is not None and dialect == "postgresql" and c not in marked]
        afresh = [c for c, at in later if (at is None or dialect != "postgresql") and c not in marked]
        if afresh:
            await ctx.session.execute(text(f"INSERT INTO {RECOUNT} (cid, mark_at) VALUES (:c, NULL)"),
                                      [{"c": c} for c in afresh])
        counted = len(marked) + len(afresh)
        advance = counted + len(anchored) <= cap
        if advance and dialect == "postgresql":
            params["recount_ids"] = [*marked, *afresh]
            params["anchor_ids"], params["anchor_ats"] = [a[0] for a in anchored], [a[1] for a in anchored]
    if advance:
        recounted = _recounted(dialect)
        # One statement for both halves: PostgreSQL can insert into a new table with parallel
        # workers, not into one that exists.
        figures = _figures_sql(dialect, recounted, cfg, rules, survey, renewal, join, moved_on=True)
        if counted:
            figures += f" UNION ALL {_figures_sql(dialect, recounted, cfg, rules, survey, renewal, join)}"
        await _run(ctx, f"{temp.format(STAGE)} {figures}", params)
        staged, doubtful = (await ctx.session.execute(text(
            f"SELECT count(*), COALESCE(SUM(unsure), 0) FROM {STAGE}"))).one()
        customers = int(staged)
        unsure = list(await ctx.session.scalars(text(f"SELECT cid FROM {STAGE} WHERE unsure = 1"))) if doubtful else []
        if unsure:
            await ctx.session.execute(text(f"DELETE FROM {STAGE} WHERE unsure = 1"))
            await ctx.session.execute(text(f"INSERT INTO {RECOUNT} (cid, mark_at) VALUES (:c, NULL)"),
                                      [{"c": c} for c in unsure])
            for start in range(0, len(unsure), cfg.batch_size):
                batch = Scope(ids=tuple(unsure[start:start + cfg.batch_size]))
                await _run(ctx, f"INSERT INTO {STAGE} "
                                f"{_figures_sql(dialect, batch, cfg, rules, survey, renewal, join)}",
                           {**params, **batch.params()}, batch)
        counted += len(unsure)
    else:
        for name in ("recount_ids", "anchor_ids", "anchor_ats"):
            params.pop(name, None)
        await _run(ctx, f"{temp.format(STAGE)} {_figures_sql(dialect, EVERYONE, cfg, rules, survey, renewal, join)}",
                   params)
        counted = customers = await _count(ctx, STAGE)
    if step:
        step("figures")
    bounds = await _quintiles(ctx)
    if step:
        step("quintiles")
    # Into an empty table plainly; else the rows that changed (an upsert would lock every
    # existing row, changed or not), then, when the counts differ, rows for new customers and
    # none for customers that are gone (score rows carry no foreign key; the merge handler
    # deletes the merged customer's).
    empty = await ctx.session.scalar(select(Score.customer_id).limit(1)) is None
    warn_from = STAGE
    if empty:
        written = await _run(ctx, _write_sql(dialect, STAGE, cfg, bounds, "insert"), params)
    else:
        # The rows that changed are picked from the figures alone (each carries the stored
        # row as it read it, under LOCK), then found by their key. Moving on, only they and
        # the customers counted afresh can have a warning to raise, refresh or resolve:
        # every other kept the score the last run checked.
        touched = "changed = 1 OR counted = 1" if advance else "changed = 1"
        await _run(ctx, f"{temp.format(TOUCHED)} {_scored_sql(dialect, STAGE, cfg, bounds, touched)}", params)
        written = await _run(ctx, _write_sql(dialect, TOUCHED, cfg, bounds, "update"), params)
        if advance:
            warn_from = f"(SELECT customer_id AS cid, health, fired, stage AS lstage FROM {TOUCHED})"
    rewritten = int(getattr(written, "rowcount", 0) or 0)
    scored = await _count(ctx, "churn_scores")
    if scored != customers:
        await ctx.session.execute(text(
            f"DELETE FROM churn_scores WHERE customer_id NOT IN (SELECT cid FROM {STAGE})"))
        added = await _run(ctx, _write_sql(dialect, STAGE, cfg, bounds, "add"), params)
        rewritten += int(getattr(added, "rowcount", 0) or 0)
        scored = await _count(ctx, "churn_scores")
    await ctx.session.execute(text(f"""DELETE FROM churn_stale WHERE EXISTS (SELECT 1 FROM {RECOUNT} x
  WHERE x.cid = churn_stale.customer_id AND x.mark_at = churn_stale.marked_at)"""))
    if step:
        step("scores")
    await sync_warnings(ctx, EVERYONE, cfg, warn_from)
    if step:
        step("warnings")
    await _drop_temp(ctx)
    mode = "advance" if advance else "recount"
    ctx.session.add(Run(scored_at=now, mode=mode, basis=basis_of(cfg), customers=scored, recounted=counted,
                        rewritten=rewritten, took_ms=round((time.perf_counter() - started) * 1000)))
    await ctx.session.flush()
    return Rescored(scored=scored, recounted=counted, rewritten=rewritten, mode=mode)


async def _lock(ctx: ServiceContext) -> None:
    """Wait for any other rescore's transaction to end, and hold :data:`LOCK` to the end of
    this one (SQLite lets one writer at a time anyway)."""
    if ctx.dialect == "postgresql":
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})


async def _count(ctx: ServiceContext, table: str) -> int:
    return int(await ctx.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def _drop_temp(ctx: ServiceContext) -> None:
    schema = "pg_temp" if ctx.dialect == "postgresql" else "temp"
    for table in (STAGE, SIGNALS, RECOUNT, TOUCHED):
        await ctx.session.execute(text(f"DROP TABLE IF EXISTS {schema}.{table}"))


async def _stage_signals(ctx: ServiceContext, cfg: ChurnSettings, rules: dict[str, EffectiveRule]) -> None:
    """The outside signals of everyone, a batch of ids at a time, into a temporary table."""
    on_commit = " ON COMMIT DROP" if ctx.dialect == "postgresql" else ""
    await ctx.session.execute(text(
        f"CREATE TEMP TABLE {SIGNALS} (customer_id BIGINT PRIMARY KEY, survey INTEGER, renewal INTEGER){on_commit}"))
    lo, hi = await id_bounds(ctx)
    insert = text(f"INSERT INTO {SIGNALS} (customer_id, survey, renewal) VALUES (:c, :s, :r)")
    for start in range(lo, hi + 1, cfg.batch_size) if hi else ():
        ids = list(await ctx.session.scalars(
            select(Customer.id).where(Customer.id >= start, Customer.id < start + cfg.batch_size)))
        survey, renewal = await _outside_signals(ctx, ids, rules)
        flagged = set(survey) | set(renewal)
        s, r = set(survey), set(renewal)
        if flagged:
            await ctx.session.execute(insert, [{"c": c, "s": int(c in s), "r": int(c in r)} for c in sorted(flagged)])


async def sync_warnings(ctx: ServiceContext, scope: Scope, cfg: ChurnSettings, source: str) -> None:
    """Resolve the open warnings of customers now at or above the threshold (came back when
    they ordered since), refresh the others, and open one for each customer newly below.
    ``source`` gives ``cid``, ``health``, ``fired`` and ``lstage`` of the customers in ``scope``."""
    base = {**scope.params(), "now": ctx.now(), "threshold": cfg.threshold, "high_below": cfg.high_risk_below}
    level = "CASE WHEN s.health < :high_below THEN 'high' ELSE 'medium' END"
    # A join rather than IN (...): the open warnings are the smaller side to hash.
    resolve = f"""
UPDATE churn_warnings SET status = 'resolved', resolved_at = :now,
  came_back = (SELECT CASE WHEN c.last_order_at > churn_warnings.since THEN 1 ELSE 0 END = 1
               FROM customers c WHERE c.id = churn_warnings.customer_id)
FROM {source} s
WHERE s.cid = churn_warnings.customer_id AND churn_warnings.status = 'open'
  AND {scope.sql('churn_warnings.customer_id')} AND s.health >= :threshold"""
    refresh = f"""
UPDATE churn_warnings SET score = s.health, fired = s.fired, level = {level}
FROM {source} s
WHERE s.cid = churn_warnings.customer_id AND churn_warnings.status = 'open'
  AND {scope.sql('churn_warnings.customer_id')}
  AND (churn_warnings.score <> s.health OR churn_warnings.fired <> s.fired)"""
    raise_ = f"""
INSERT INTO churn_warnings (customer_id, status, level, score, fired, reasons, since, followed_up, came_back)
SELECT s.cid, 'open', {level}, s.health, s.fired, :empty, :now, :false_, :false_
FROM {source} s
WHERE s.health < :threshold AND s.lstage <> 'lost'
ON CONFLICT (customer_id) WHERE status = 'open' DO NOTHING"""
    types: dict[str, Any] = {"now": UTCDateTime(), "empty": Json, "false_": Boolean()}
    params = {**base, "empty": [], "false_": False}
    for sql in (resolve, refresh, raise_):
        stmt = scope.bind(text(sql)).bindparams(*[bindparam(n, type_=t) for n, t in types.items() if f":{n}" in sql])
        await ctx.session.execute(stmt, {k: v for k, v in params.items() if f":{k}" in sql})


async def _quintiles(ctx: ServiceContext) -> dict[str, list[float]]:
    """The bounds of the first four fifths of the active base (customers with an order in
    the RFM window) for recency, frequency and monetary value, as NTILE(5) cuts them (the
    largest value of each fifth), from the staged figures; stored for the rescoring of single
    customers. Recency and frequency take few values: their counts per value (one hash
    aggregate) place the cuts; only monetary value is sorted."""
    counts = (await ctx.session.execute(text(
        f"SELECT rec, freq, COUNT(*) FROM {STAGE} WHERE freq > 0 GROUP BY rec, freq"))).all()
    ends = tile_ends(sum(int(n) for _, _, n in counts))
    recency: Counter[float] = Counter()
    frequency: Counter[float] = Counter()
    for rec, freq, n in counts:
        recency[float(rec)] += int(n)
        frequency[float(freq)] += int(n)
    found = {"recency": _at(recency, ends), "frequency": _at(frequency, ends), "monetary": []}
    if ends:
        at = dict((int(rn), float(mon)) for mon, rn in await ctx.session.execute(
            text(f"SELECT mon, rn FROM (SELECT mon, ROW_NUMBER() OVER (ORDER BY mon) AS rn FROM {STAGE} "
                 "WHERE freq > 0) t WHERE rn IN :ends").bindparams(bindparam("ends", expanding=True)),
            {"ends": ends}))
        found["monetary"] = [at[e] for e in ends]
    await ctx.session.execute(delete(Cutpoints))
    for metric, values in found.items():
        ctx.session.add(Cutpoints(metric=metric, bounds=values, computed_at=ctx.now()))
    await ctx.session.flush()
    return found


def tile_ends(n: int) -> list[int]:
    """Where each of the first four of NTILE(5)'s tiles ends among ``n`` sorted rows (1-based;
    the first ``n % 5`` tiles take one row more; empty tiles have none)."""
    q, r = divmod(n, 5)
    return [k * q + min(k, r) for k in range(1, 5) if q + (k <= r) > 0]


def _at(counts: Counter[float], ends: list[int]) -> list[float]:
    """The values at the sorted positions ``ends`` of a population given as counts per value."""
    out: list[float] = []
    seen, wanted = 0, iter(ends)
    end = next(wanted, None)
    for value in sorted(counts):
        seen += counts[value]
        while end is not None and seen >= end:
            out.append(value)
            end = next(wanted, None)
    return out


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
        # The figures are whole numbers: an integer bound keeps the comparison integer.
        value = int(bound) if float(bound).is_integer() else float(bound)
        whens.append(f"WHEN {column} <= {value!r} THEN {score}")
    last = 5 - len(bounds) if descending else len(bounds) + 1
    return f"CASE {' '.join(whens)} ELSE {last} END"


async def id_bounds(ctx: ServiceContext) -> tuple[int, int]:
    row = (await ctx.session.execute(select(func.min(Customer.id), func.max(Customer.id)))).one()
    return int(row[0] or 0), int(row[1] or 0)
