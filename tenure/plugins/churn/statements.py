"""The SQL of the churn rescore: each customer's window figures (counted from the orders and
interactions, or moved on from the stored ones), the rules, health and lifecycle stage over
them, R, F and M on the quintile bounds, and the statements that write score rows. Text
only: :mod:`tenure.plugins.churn.scoring` runs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam

from tenure.plugins.churn.rules import EffectiveRule
from tenure.plugins.churn.settings import ChurnSettings
from tenure.plugins.churn.signals import SignalQuery

WINDOW_TIMES = ("now", "rfm_from", "orders_from", "complaint_from", "recent_from", "previous_from", "inter_from")
#: The times of the window bounds, now and at the last run (``was_``).
TIMES = (*WINDOW_TIMES, *(f"was_{t}" for t in WINDOW_TIMES))
#: The customers whose figures this rescore counts afresh, with the mark it read of each.
RECOUNT = "churn_recount"
SCORE_COLUMNS = ("last_order_at", "frequency", "monetary", "r", "f", "m", "segment", "usual_gap_days",
                 "interactions_recent", "interactions_previous", "complaints", "cancellations", "fired", "health",
                 "stage")
#: The window figures and their score columns.
COUNTS = {"freq": "frequency", "mon": "monetary", "canc": "cancellations", "recent": "interactions_recent",
          "previous": "interactions_previous", "complaints": "complaints"}
#: The score columns, besides the window figures, that do not depend on the quintile bounds.
JUDGED = {"fired": "fired", "health": "health", "lstage": "stage"}


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


def recounted_scope(dialect: str) -> Scope:
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


def figures_sql(dialect: str, scope: Scope, cfg: ChurnSettings, rules: dict[str, EffectiveRule],
                moved_on: bool = False) -> str:
    """Per customer of ``scope`` (or, ``moved_on``, every customer not in it):
    the figures, rule bits (``fired``), ``health``, lifecycle stage (``lstage``) and
    ``unsure`` (see :func:`_moved_on`). The plugins' signals select the customers they
    flag among the same customers (everyone, when moving on)."""
    on = {k: r.enabled for k, r in rules.items()}
    kinds = ", ".join(f"'{k}'" for k in cfg.complaint_kinds) or "''"
    counts, others, joins, where = _moved_on(dialect, kinds, scope) if moved_on else _counted(scope, kinds)
    flags = {
        "no_order": "rec IS NOT NULL AND rec >= CAST(:t_no_order AS FLOAT)",
        "long_gap": "gap IS NOT NULL AND rec >= CAST(:gap_min AS FLOAT) AND rec > CAST(:t_long_gap AS FLOAT) * gap",
        "interactions_falling": ("previous >= CAST(:int_min AS FLOAT) "
                                 "AND recent <= previous * (1 - CAST(:t_interactions_falling AS FLOAT))"),
        "complaints": "complaints + canc >= CAST(:t_complaints AS FLOAT)",
    }
    # Each plugin signal once per customer, as a column of the innermost layer.
    among = EVERYONE if moved_on else scope
    signalled = ""
    for kind, rule in rules.items():
        if rule.signal is not None and rule.enabled:
            query = SignalQuery(dialect, f"CAST(:t_{kind} AS FLOAT)", among.sql)
            flagged = rule.signal.flagged(query)
            signalled += f",\n             CASE WHEN c.id IN ({flagged}) THEN 1 ELSE 0 END AS sig_{kind}"
            flags[kind] = f"sig_{kind} = 1"
    fired = " + ".join(f"(CASE WHEN {flags[k]} THEN {1 << r.bit} ELSE 0 END)" for k, r in rules.items() if on[k]) or "0"
    penalty = " + ".join(f"(CASE WHEN {flags[k]} THEN :w_{k} ELSE 0 END)" for k, r in rules.items() if on[k]) or "0"
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
             {was}{signalled}
      FROM customers c
      {joins}
      WHERE {where}
      {fence}
    ) base
    {fence}
  ) flagged
) scored
) judged"""


def scored_sql(dialect: str, source: str, cfg: ChurnSettings, bounds: dict[str, list[float]] | None,
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


def write_sql(dialect: str, source: str, cfg: ChurnSettings, bounds: dict[str, list[float]] | None,
               how: str = "upsert") -> str:
    """Write the score rows of ``source``, their figures counted at ``:now``: ``insert`` them
    (an empty table), ``upsert`` them (a few customers counted afresh: every row takes the
    new ``figures_at``, ``scored_at`` moves only where something changed), ``update`` the
    rows that changed (the stored figures of the others stand as of this run), or ``add``
    those of customers without a row. No row a later rescore wrote (``figures_at`` after
    this one's) is overwritten: its figures saw more."""
    scored = scored_sql(dialect, source, cfg, bounds)
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


def statement_params(cfg: ChurnSettings, rules: dict[str, EffectiveRule], now: datetime,
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
