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
3. ``scores``: R, F and M on the bounds and the segment; into an empty table every row is
   inserted; otherwise the rows that differ from the stored ones (each staged row carries the
   stored one as the staging statement read it, under :data:`LOCK`) go to a second temporary
   table and are written by key.
4. ``warnings``: three statements resolve the open warnings of customers whose score
   recovered, refresh the others, and open one for each customer newly below the threshold
   (not for customers already lost: a year without an order is a win-back campaign's matter,
   not an early warning). Moving on, only the changed rows and the customers counted afresh
   are checked: every other customer kept the score the last run checked, under the same
   threshold (part of the run's basis).

The SQL itself is built in :mod:`tenure.plugins.churn.statements`.

Rescoring a few customers after an event (:func:`score_batch`) counts their figures afresh
and runs the same rules for their ids alone, inline, on the stored bounds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, Boolean, Table, bindparam, delete, func, select, text
from sqlalchemy.dialects import postgresql

from tenure.core.context import ServiceContext
from tenure.core.db import Json, UTCDateTime
from tenure.core.models import Customer
from tenure.plugins.churn.models import Cutpoints, Run, Score, Stale
from tenure.plugins.churn.rules import EffectiveRule, effective_rules
from tenure.plugins.churn.settings import ChurnSettings, churn_settings
from tenure.plugins.churn.statements import (
    EVERYONE,
    RECOUNT,
    TIMES,
    Scope,
    figures_sql,
    recounted_scope,
    scored_sql,
    statement_params,
    write_sql,
)

STAGE = "churn_stage"
#: The score rows a full rescore changed, and (moving on) those it counted afresh.
TOUCHED = "churn_touched"
#: Every rescore, after an event or of everyone, holds this lock (PostgreSQL) for its
#: transaction: a full rescore compares its figures with the rows as they were when it read
#: them, and writes only those that changed.
LOCK = 6_386_327_683_470  # "churn"


async def _run(ctx: ServiceContext, sql: str, params: dict[str, Any], scope: Scope = EVERYONE) -> Any:
    """Execute ``sql`` with the parameters it names (times as UTC datetimes)."""
    named = set(re.findall(r"(?<!:):(\w+)", sql))
    stmt = scope.bind(text(sql)).bindparams(*[bindparam(n, type_=UTCDateTime()) for n in TIMES if n in named])
    for name in ("recount_ids", "anchor_ids"):
        if name in named:
            stmt = stmt.bindparams(bindparam(name, type_=postgresql.ARRAY(BigInteger)))
    if "anchor_ats" in named:
        stmt = stmt.bindparams(bindparam("anchor_ats", type_=postgresql.ARRAY(postgresql.TIMESTAMP(timezone=True))))
    return await ctx.session.execute(stmt, {k: v for k, v in params.items() if k in named})


async def score_batch(ctx: ServiceContext, scope: Scope, cfg: ChurnSettings | None = None,
                      rules: dict[str, EffectiveRule] | None = None,
                      bounds: dict[str, list[float]] | None = None) -> None:
    """The customers in ``scope`` (a few, after an event): figures, RFM scores and segment on
    the quintile ``bounds``, rules, health, stage; then their warnings."""
    cfg = cfg or churn_settings(ctx)
    rules = rules or await effective_rules(ctx)
    await _lock(ctx)
    # The marks read before the figures: the data each stands for is counted below.
    marks = [{"c": c, "m": m} for c, m in await ctx.session.execute(
        select(Stale.customer_id, Stale.marked_at).where(Stale.customer_id.in_(scope.ids or ())))]
    figures = figures_sql(ctx.dialect, scope, cfg, rules)
    params = {**scope.params(), **statement_params(cfg, rules, ctx.now())}
    await _run(ctx, write_sql(ctx.dialect, f"({figures})", cfg, bounds), params, scope)
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


def basis_of(cfg: ChurnSettings, rules: dict[str, EffectiveRule]) -> dict[str, Any]:
    """The settings the stored figures were counted under, and those that turn a score into
    a warning, and the bit of each signal: under others the figures are counted afresh and
    every warning checked."""
    return {"bits": {kind: rule.bit for kind, rule in rules.items()},
            "rfm_window_days": cfg.rfm_window_days, "complaints_window_days": cfg.complaints_window_days,
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
    last = await last_run(ctx)
    if last is not None and last.scored_at > now:
        # Scored as of a moment before the last rescore (``--as-of``, a clock moved back):
        # every stored row counted later data, and a row a later rescore wrote is never
        # overwritten, so none is kept.
        await ctx.session.execute(delete(Score))
        last = None
    if recount:
        last = None
    advance = last is not None and last.basis == basis_of(cfg, rules)
    params = statement_params(cfg, rules, now, last.scored_at if advance and last else None)
    # The marks this rescore reads: once its figures are written it deletes these, and only
    # these (a mark made meanwhile stands for data it may not have seen).
    await ctx.session.execute(text(f"{temp.format(RECOUNT)} SELECT customer_id AS cid, marked_at AS mark_at "
                                   "FROM churn_stale"))
    counted = await _to_count_afresh(ctx, cfg, last, params) if advance and last is not None else None
    advance = counted is not None
    if counted is not None:
        recounted = recounted_scope(dialect)
        # One statement for both halves: PostgreSQL can insert into a new table with parallel
        # workers, not into one that exists.
        figures = figures_sql(dialect, recounted, cfg, rules, moved_on=True)
        if counted:
            figures += f" UNION ALL {figures_sql(dialect, recounted, cfg, rules)}"
        await _run(ctx, f"{temp.format(STAGE)} {figures}", params)
        staged, doubtful = (await ctx.session.execute(text(
            f"SELECT count(*), COALESCE(SUM(unsure), 0) FROM {STAGE}"))).one()
        customers = int(staged)
        unsure = list(await ctx.session.scalars(text(f"SELECT cid FROM {STAGE} WHERE unsure = 1"))) if doubtful else []
        if unsure:
            await ctx.session.execute(text(f"DELETE FROM {STAGE} WHERE unsure = 1"))
            await _recount_also(ctx, unsure)
            for start in range(0, len(unsure), cfg.batch_size):
                batch = Scope(ids=tuple(unsure[start:start + cfg.batch_size]))
                await _run(ctx, f"INSERT INTO {STAGE} "
                                f"{figures_sql(dialect, batch, cfg, rules)}",
                           {**params, **batch.params()}, batch)
        counted += len(unsure)
    else:
        await _run(ctx, f"{temp.format(STAGE)} {figures_sql(dialect, EVERYONE, cfg, rules)}",
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
        written = await _run(ctx, write_sql(dialect, STAGE, cfg, bounds, "insert"), params)
    else:
        # The rows that changed are picked from the figures alone (each carries the stored
        # row as it read it, under LOCK), then found by their key. Moving on, only they and
        # the customers counted afresh can have a warning to raise, refresh or resolve:
        # every other kept the score the last run checked.
        touched = "changed = 1 OR counted = 1" if advance else "changed = 1"
        await _run(ctx, f"{temp.format(TOUCHED)} {scored_sql(dialect, STAGE, cfg, bounds, touched)}", params)
        written = await _run(ctx, write_sql(dialect, TOUCHED, cfg, bounds, "update"), params)
        if advance:
            warn_from = f"(SELECT customer_id AS cid, health, fired, stage AS lstage FROM {TOUCHED})"
    rewritten = int(getattr(written, "rowcount", 0) or 0)
    scored = await _count(ctx, "churn_scores")
    if scored != customers:
        await ctx.session.execute(text(
            f"DELETE FROM churn_scores WHERE customer_id NOT IN (SELECT cid FROM {STAGE})"))
        added = await _run(ctx, write_sql(dialect, STAGE, cfg, bounds, "add"), params)
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
    ctx.session.add(Run(scored_at=now, mode=mode, basis=basis_of(cfg, rules), customers=scored, recounted=counted,
                        rewritten=rewritten, took_ms=round((time.perf_counter() - started) * 1000)))
    await ctx.session.flush()
    return Rescored(scored=scored, recounted=counted, rewritten=rewritten, mode=mode)


async def _to_count_afresh(ctx: ServiceContext, cfg: ChurnSettings, last: Run, params: dict[str, Any]) -> int | None:
    """Which customers a run moving on from ``last`` counts afresh: the marked ones (already
    in :data:`RECOUNT`), those whose rows no rescore has written since churn_0004 and, on
    SQLite, those a rescore wrote after an event since the last run; on PostgreSQL these move
    on from their own moment instead (see ``statements._moved_on``), given to the statements
    as arrays in ``params``. How many are counted afresh, or None when more than
    ``recount_above`` of the customers changed: everyone is counted afresh then (and no more
    of these rows are read)."""
    postgres = ctx.dialect == "postgresql"
    cap = int(cfg.recount_above * last.customers)
    marked = set(await ctx.session.scalars(text(f"SELECT cid FROM {RECOUNT}")))
    later = list(await _run(ctx, """SELECT customer_id, figures_at FROM churn_scores
WHERE figures_at IS NULL OR figures_at > :was_now LIMIT :cap""", {**params, "cap": cap + 1}))
    anchored = [(c, at) for c, at in later if at is not None and postgres and c not in marked]
    afresh = [c for c, at in later if (at is None or not postgres) and c not in marked]
    await _recount_also(ctx, afresh)
    counted = len(marked) + len(afresh)
    if counted + len(anchored) > cap:
        return None
    if postgres:
        params["recount_ids"] = [*marked, *afresh]
        params["anchor_ids"], params["anchor_ats"] = [a[0] for a in anchored], [a[1] for a in anchored]
    return counted


async def _recount_also(ctx: ServiceContext, ids: list[int]) -> None:
    if ids:
        await ctx.session.execute(text(f"INSERT INTO {RECOUNT} (cid, mark_at) VALUES (:c, NULL)"),
                                  [{"c": c} for c in ids])


async def _lock(ctx: ServiceContext) -> None:
    """Wait for any other rescore's transaction to end, and hold :data:`LOCK` to the end of
    this one (SQLite lets one writer at a time anyway)."""
    if ctx.dialect == "postgresql":
        await ctx.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})


async def _count(ctx: ServiceContext, table: str) -> int:
    return int(await ctx.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def _drop_temp(ctx: ServiceContext) -> None:
    schema = "pg_temp" if ctx.dialect == "postgresql" else "temp"
    for table in (STAGE, RECOUNT, TOUCHED):
        await ctx.session.execute(text(f"DROP TABLE IF EXISTS {schema}.{table}"))


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
WHERE s.health < :threshold AND (s.lstage IS NULL OR s.lstage <> 'lost')
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


async def id_bounds(ctx: ServiceContext) -> tuple[int, int]:
    row = (await ctx.session.execute(select(func.min(Customer.id), func.max(Customer.id)))).one()
    return int(row[0] or 0), int(row[1] or 0)
