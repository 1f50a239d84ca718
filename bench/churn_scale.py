"""Churn and retention at scale: a full rescore against the floor, and the read paths.

    python -m bench.churn_scale                                   # 100,000 customers on PostgreSQL
    python -m bench.churn_scale --customers 1000000               # the full size (takes long on 2 cores)
    python -m bench.churn_scale --url sqlite+aiosqlite:////tmp/churn.db --customers 100000
    python -m bench.churn_scale --reuse                           # measure a data set built before

The data set comes from :mod:`bench.datagen` (built in a child process, so this process's
peak memory is the rescore's own). Then, in the same run:

- **floor**: the best single hand-written SQL statement computing the same recency,
  frequency and monetary figures and their NTILE(5) quintile scores for every customer of
  the active base (fastest of three runs, warm cache; on PostgreSQL with the settings the
  rescore's transaction takes, ``plugins.churn.scoring.pg_settings``: more ``work_mem``
  makes the floor's sorts twice as fast; the floor at the server's defaults is shown too);
- **rescore**: ``tenure churn rescore``'s code path (``plugins.churn.service.rescore_all``),
  first a first-ever rescore (the churn tables are emptied first, so ``--reuse`` measures
  the same work as a fresh build): every figure counted from the orders and interactions,
  rules, health and stage staged once, quintile bounds, RFM scores and segment written,
  warnings raised. Then the follow-up wave: one task and one timeline entry for every new
  warning (the ``churn.follow_up`` job's work, a batch per transaction), timed in total; a
  second rescore at the same moment (no new warnings wanted); and the **nightly** rescore,
  the scheduled job, a day later: the customers who ordered or were in touch on the data
  set's last day are marked as those events mark them, the others' figures move on from
  the first rescore's. Ratio = nightly rescore / floor. Last, in a transaction rolled back,
  a recount at the nightly's moment (``--recount``), timed, and the number of score rows it
  would write differently from the nightly's (the check that moving on is exact);
- peak RSS of this process, ``retention`` over the whole range (month by month) and
  ``churnWarnings(first: 50)`` through GraphQL (median of five);
- planted churners warned and planted loyal customers not warned.

Targets: nightly ratio <= 2, peak RSS < 500 MB, retention < 2 s on PostgreSQL, churnWarnings < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import platform
import resource
import sqlite3
import statistics
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench"


def floor_sql(dialect: str) -> str:
    """Recency, frequency and monetary value over the window, and their quintile scores."""
    days = ("CAST(julianday(:now) - julianday(MAX(placed_at)) AS INTEGER)" if dialect == "sqlite"
            else "CAST(FLOOR(EXTRACT(EPOCH FROM (CAST(:now AS TIMESTAMPTZ) - MAX(placed_at))) / 86400) AS INTEGER)")
    return f"""
SELECT COUNT(*), SUM(r), SUM(f), SUM(m) FROM (
  SELECT 6 - NTILE(5) OVER (ORDER BY rec) AS r, NTILE(5) OVER (ORDER BY freq) AS f,
         NTILE(5) OVER (ORDER BY mon) AS m
  FROM (SELECT customer_id, {days} AS rec, COUNT(*) AS freq, SUM(amount - refunded_amount) AS mon
        FROM orders WHERE status <> 'cancelled' AND placed_at >= :since GROUP BY customer_id) a
) t"""


async def _reset(session: Any, dialect: str) -> None:
    """Empty what a rescore writes, so every run times a first-ever rescore. A data set built
    before churn_0002 still has the foreign keys of scores and warnings, one built before
    churn_0003 the day counts of scores, and one built before churn_0004 and core's 0005
    neither the tables nor the column and index of the nightly rescore: change them as those
    migrations do."""
    from sqlalchemy import text

    from tenure.plugins.churn.models import Run, Stale

    stamp = "TIMESTAMP WITH TIME ZONE" if dialect == "postgresql" else "DATETIME"
    if dialect == "postgresql":
        for table in ("churn_scores", "churn_warnings"):
            await session.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "
                                       f"fk_{table}_customer_id_customers"))
    connection = await session.connection()
    await connection.run_sync(lambda sync: [t.create(sync, checkfirst=True) for t in (Stale.__table__,
                                                                                    Run.__table__)])
    await session.execute(text("CREATE INDEX IF NOT EXISTS ix_interactions_occurred_at ON interactions (occurred_at)"))
    empty = "TRUNCATE" if dialect == "postgresql" else "DELETE FROM"
    for table in ("churn_warnings", "churn_scores", "churn_cutpoints", "churn_stale", "churn_runs"):
        await session.execute(text(f"{empty} {table}"))
    columns = set((await session.execute(text("SELECT * FROM churn_scores LIMIT 0"))).keys())
    if "recency_days" in columns:
        await session.execute(text("ALTER TABLE churn_scores DROP COLUMN recency_days"))
        await session.execute(text(f"ALTER TABLE churn_scores ADD COLUMN last_order_at {stamp}"))
    if "figures_at" not in columns:
        await session.execute(text(f"ALTER TABLE churn_scores ADD COLUMN figures_at {stamp}"))
    await session.execute(text("DELETE FROM tasks WHERE source = 'churn'"))
    await session.execute(text("DELETE FROM events WHERE type IN ('churn.warned', 'churn.came_back', 'task.created')"))


def _build(url: str, customers: int, opc: float, ipc: float, seed: int) -> None:
    from bench.datagen import generate

    planted = generate(url, customers, opc, ipc, seed=seed)
    print(f"built {customers:,} customers, {planted.orders:,} orders, {planted.interactions:,} interactions "
          f"in {planted.seconds:.0f} s", flush=True)


async def measure(url: str, now: datetime) -> dict[str, Any]:
    from sqlalchemy import bindparam, text

    from tenure.core.clock import FrozenClock, use_clock
    from tenure.core.context import ServiceContext
    from tenure.core.db import UTCDateTime
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings
    from tenure.plugins.churn.scoring import pg_settings
    from tenure.plugins.churn.service import follow_up, rescore, rescore_all
    from tenure.plugins.churn.settings import ChurnSettings
    from tenure.testing import TenureHarness

    out: dict[str, Any] = {}
    env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "churn", "TENURE_ENVIRONMENT": "test"}
    settings = Settings.from_env(env, env_file=None)
    plugins = load_plugins(settings)
    cfg = ChurnSettings()
    window = timedelta(days=cfg.rfm_window_days)
    with use_clock(FrozenClock(now)):
        async with TenureHarness.start(url, plugins=["churn"], create_tables=False) as tenure:
            db = tenure.db
            dialect = db.dialect
            async with db.transaction() as session:
                await _reset(session, dialect)
            stmt = text(floor_sql(dialect)).bindparams(bindparam("now", type_=UTCDateTime()),
                                                       bindparam("since", type_=UTCDateTime()))
            for key, settings_ in (("floor_default_s", ()), ("floor_s", pg_settings(cfg))):
                if dialect != "postgresql" and settings_:
                    out[key] = out["floor_default_s"]
                    continue
                times = []
                for _ in range(3):
                    async with db.transaction() as session:
                        for setting in settings_:  # those the rescore's transaction takes
                            await session.execute(text(f"SET LOCAL {setting}"))
                        started = time.perf_counter()
                        row = (await session.execute(stmt, {"now": now, "since": now - window})).one()
                        times.append(time.perf_counter() - started)
                out[key], out["active_base"] = min(times), int(row[0])

            @contextlib.asynccontextmanager
            async def transaction() -> AsyncIterator[ServiceContext]:
                async with db.transaction() as session:
                    yield ServiceContext(session, settings, plugins, actor="bench")

            first = await rescore_all(transaction, follow_up_now=False)
            out["rescore_s"], out["warnings"] = first["score_ms"] / 1000, first["open_warnings"]
            # The follow-up wave: every new warning gets its task and timeline entry, a batch
            # per transaction, as the churn.follow_up job does it.
            started, followed = time.perf_counter(), 0
            while True:
                async with transaction() as ctx:
                    done = await follow_up(ctx, limit=cfg.follow_up_batch)
                followed += done
                if done < cfg.follow_up_batch:
                    break
            out["follow_up_s"] = time.perf_counter() - started
            out["followed"] = followed
            async with db.reader() as session:
                out["follow_up_tasks"] = int(await session.scalar(text(
                    "SELECT count(*) FROM tasks WHERE source = 'churn'")) or 0)
            again = await rescore_all(transaction, follow_up_now=False)
            out["rescore_again_s"] = again["score_ms"] / 1000
            out["new_on_second_run"] = again["open_warnings"] - again["open_before"]
            # A day of events: the customers who ordered or were in touch on the data set's
            # last day are marked as their events mark them, and their per-event rescore jobs
            # run during the day (a batch of customers per transaction). Then the nightly
            # rescore, and a recount at its moment to compare with.
            day = await _mark_a_day(db, now, now + timedelta(hours=12))
            out["nightly_marked"] = len(day)
            started = time.perf_counter()
            with use_clock(FrozenClock(now + timedelta(hours=12))):
                for start in range(0, len(day), cfg.follow_up_batch):
                    async with transaction() as ctx:
                        await rescore(ctx, day[start:start + cfg.follow_up_batch])
            out["day_jobs_s"] = time.perf_counter() - started
            await _settle(db)
            with use_clock(FrozenClock(now + timedelta(days=1))):
                nightly = await rescore_all(transaction, follow_up_now=False)
                out["nightly_s"], out["nightly_mode"] = nightly["score_ms"] / 1000, nightly["mode"]
                out["nightly_recounted"], out["nightly_rewritten"] = nightly["recounted"], nightly["rewritten"]
                out["recount_s"], out["recount_differs"] = await _recount_and_compare(db, transaction)
            # The next night, had the workers been down all day: the same customers' events
            # marked, no job run, so the nightly counts theirs afresh.
            await _mark_a_day(db, now, now + timedelta(days=1, hours=12))
            await _settle(db)
            with use_clock(FrozenClock(now + timedelta(days=2))):
                late = await rescore_all(transaction, follow_up_now=False)
            out["late_s"], out["late_recounted"] = late["score_ms"] / 1000, late["recounted"]
            out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            retention = """query($a: Date!, $b: Date!) { retention(from: $a, to: $b, groupBy: MONTH) {
                start customersAtStart customersAtEnd retentionRate revenue predictedClv } }"""
            start = (now - timedelta(days=3 * 365)).date().replace(day=1)
            variables = {"a": start.isoformat(), "b": now.date().isoformat()}
            out["retention_s"], data = await _median(tenure, retention, variables, 3)
            out["retention_periods"] = len(data["retention"])
            warnings = "{ churnWarnings(first: 50) { edges { node { id score level reasons customer { name } } } } }"
            out["warnings_s"], data = await _median(tenure, warnings, None, 5)
            out["warnings_page"] = len(data["churnWarnings"]["edges"])
            async with db.reader() as session:
                missed = await session.scalar(text(
                    "SELECT count(*) FROM bench_planted p WHERE kind = 'churner' AND NOT EXISTS ("
                    "SELECT 1 FROM churn_warnings w WHERE w.customer_id = p.customer_id AND w.status = 'open')"))
                false = await session.scalar(text(
                    "SELECT count(*) FROM bench_planted p WHERE kind = 'loyal' AND EXISTS ("
                    "SELECT 1 FROM churn_warnings w WHERE w.customer_id = p.customer_id AND w.status = 'open')"))
                planted = (await session.execute(text(
                    "SELECT kind, count(*) FROM bench_planted WHERE customer_id > 0 GROUP BY kind"))).all()
                out["counts"] = [int(await session.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
                                 for t in ("customers", "orders", "interactions")]
                out["db_version"] = (await session.scalar(text("SELECT version()")) if dialect == "postgresql"
                                     else f"SQLite {sqlite3.sqlite_version}")
            out["planted"], out["missed"], out["false_alarms"] = dict(planted), int(missed or 0), int(false or 0)
    return out


async def _settle(db: Any) -> None:
    """What a day between two rescores gives the server: the tables the last writes touched
    vacuumed and analysed, as autovacuum does on its own schedule (the first rescore wrote a
    million score rows and the follow-up wave two hundred thousand tasks a moment ago; on 2
    cores an autovacuum worker running into the timed rescore takes one of them)."""
    from sqlalchemy import text

    if db.dialect != "postgresql":
        return
    async with db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("churn_scores", "churn_warnings", "churn_stale", "tasks", "events", "outbox"):
            await autocommit.execute(text(f"VACUUM (ANALYZE) {table}"))


async def _mark_a_day(db: Any, last: datetime, at: datetime) -> list[int]:
    """Mark, at ``at``, the customers with an order or interaction in the day before
    ``last`` (the data set's last day), as those events would have; their ids."""
    from sqlalchemy import bindparam, text

    from tenure.core.db import UTCDateTime

    async with db.transaction() as session:
        ids = list(await session.scalars(text("""
INSERT INTO churn_stale (customer_id, marked_at)
SELECT customer_id, :at FROM orders WHERE placed_at >= :day AND placed_at < :last
UNION SELECT customer_id, :at FROM interactions WHERE occurred_at >= :day AND occurred_at < :last
ON CONFLICT (customer_id) DO UPDATE SET marked_at = excluded.marked_at
RETURNING customer_id""").bindparams(*[bindparam(n, type_=UTCDateTime()) for n in ("at", "day", "last")]),
            {"at": at, "day": last - timedelta(days=1), "last": last}))
    return sorted(ids)


class _RolledBack(Exception):
    """Raised to discard a recount's writes."""


async def _recount_and_compare(db: Any, transaction: Any) -> tuple[float, int]:
    """Count every figure afresh at the same moment as the nightly rescore, then roll back:
    the seconds it took, and how many score rows it would have written differently from the
    nightly's (0 when moving the figures on loses and double-counts nothing)."""
    from sqlalchemy import text

    from tenure.plugins.churn.rules import effective_rules
    from tenure.plugins.churn.scoring import score_everyone
    from tenure.plugins.churn.settings import churn_settings
    from tenure.plugins.churn.statements import SCORE_COLUMNS

    columns = ", ".join(("customer_id", *SCORE_COLUMNS))
    found: list[float | int] = []
    with contextlib.suppress(_RolledBack):
        async with transaction() as ctx:
            await ctx.session.execute(text(f"CREATE TEMP TABLE bench_nightly AS SELECT {columns} FROM churn_scores"))
            started = time.perf_counter()
            await score_everyone(ctx, churn_settings(ctx), await effective_rules(ctx), recount=True)
            found.append(time.perf_counter() - started)
            found.append(int(await ctx.session.scalar(text(
                f"SELECT count(*) FROM (SELECT {columns} FROM churn_scores "
                f"EXCEPT SELECT {columns} FROM bench_nightly) d")) or 0))
            raise _RolledBack
    return float(found[0]), int(found[1])


async def _median(tenure: Any, query: str, variables: dict[str, Any] | None, runs: int) -> tuple[float, Any]:
    key = await tenure.key("admin")
    await tenure.ok(query, variables, key=key)  # warm: parser cache, connection
    times, data = [], None
    for _ in range(runs):
        started = time.perf_counter()
        data = await tenure.ok(query, variables, key=key)
        times.append(time.perf_counter() - started)
    return statistics.median(times), data


def report(url: str, r: dict[str, Any], built: str) -> str:
    def ratio(seconds: float, floor: float | None = None) -> str:
        floor = floor or r["floor_s"]
        return f"{seconds / floor:.2f}" if floor else "nan"

    pg = not url.startswith("sqlite")
    customers, orders, interactions = r["counts"]
    rows = [
        ("machine", f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"),
        ("database", str(r["db_version"]).split(" on ")[0]),
        ("data set", f"{customers:,} customers, {orders:,} orders, {interactions:,} interactions ({built})"),
        ("active base (ordered in 365 days)", f"{r['active_base']:,}"),
        ("floor: one SQL statement, RFM + NTILE" + (", the rescore's settings" if pg else ""),
         f"{r['floor_s']:.2f} s"),
        ("a day's events: customers rescored by their jobs", f"{r['nightly_marked']:,} in {r['day_jobs_s']:.1f} s"),
        ("nightly rescore, that night: figures moved on, rules, health, warnings, RFM",
         f"{r['nightly_s']:.2f} s; {r['nightly_recounted']:,} customers counted afresh, "
         f"{r['nightly_rewritten']:,} score rows rewritten"),
        ("ratio nightly rescore / floor (target <= 2)", ratio(r["nightly_s"])),
        ("next night, the day's jobs not run: their customers counted afresh",
         f"{r['late_s']:.2f} s (ratio {ratio(r['late_s'])}), {r['late_recounted']:,} counted afresh"),
        ("first-ever rescore: every figure counted from orders and interactions",
         f"{r['rescore_s']:.2f} s (ratio {ratio(r['rescore_s'])})"),
        ("recount at the nightly's moment (tenure churn rescore --recount)",
         f"{r['recount_s']:.2f} s (ratio {ratio(r['recount_s'])})"),
        ("nightly's score rows differing from that recount (want 0)", f"{r['recount_differs']:,}"),
    ]
    if pg:
        rows += [("floor at the server's default settings",
                  f"{r['floor_default_s']:.2f} s (nightly ratio {ratio(r['nightly_s'], r['floor_default_s'])})")]
    rows += [
        ("warnings raised", f"{r['warnings']:,}"),
        ("follow-up wave: task + timeline entry per new warning",
         f"{r['follow_up_s']:.1f} s for {r['followed']:,} ({r['followed'] / max(r['follow_up_s'], 1e-9):,.0f}/s; "
         f"{r['follow_up_tasks']:,} tasks)"),
        ("second rescore at the same moment (nothing new)",
         f"{r['rescore_again_s']:.2f} s, {r['new_on_second_run']} new warnings"),
        ("peak RSS of the process (target < 500 MB)", f"{r['rss_mb']:.0f} MB"),
        ("retention, whole range by month" + (" (target < 2 s)" if pg else ""),
         f"{r['retention_s'] * 1000:.0f} ms ({r['retention_periods']} periods)"),
        ("churnWarnings(first: 50) (target < 100 ms)", f"{r['warnings_s'] * 1000:.1f} ms"),
        ("planted churners warned", f"{r['planted'].get('churner', 0) - r['missed']:,} of "
                                    f"{r['planted'].get('churner', 0):,}"),
        ("planted loyal customers warned (want 0)", f"{r['false_alarms']} of {r['planted'].get('loyal', 0):,}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"| {'measure'.ljust(width)} | figure |", f"|{'-' * (width + 2)}|--------|"]
    lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TENURE_BENCH_URL", DEFAULT_URL))
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders-per-customer", type=float, default=10.0)
    parser.add_argument("--interactions-per-customer", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="Measure the data set already there.")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the harness logs every request; the table is the output
    built = "reused"
    if not args.reuse:
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=_build, args=(args.url, args.customers, args.orders_per_customer,
                                 args.interactions_per_customer, args.seed))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"building the data set failed (exit {child.exitcode})")
        built = f"built in {time.perf_counter() - started:.0f} s"
    from bench.datagen import read_planted

    now = read_planted(args.url).now or datetime.now(UTC)
    result = asyncio.run(measure(args.url, now))
    print(report(args.url, result, built), flush=True)


if __name__ == "__main__":
    main()
