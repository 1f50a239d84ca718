"""Worker CPU for churn after a burst of orders: the ``churn.rescore_marked`` jobs a burst
leaves, run in-process one after the other, timed by the process's CPU time (the worker's
share; the SQL's own time on the server is in the wall time).

    python -m bench.churn_burst --orders 10000 [--customers 20000] [--batch 100]

The database (default ``tenure_bench_burst``) is wiped and filled first: customers and three
years of orders loaded by the import floor's COPY (:mod:`bench.ingest_floor`), the earn rule
and tiers of :mod:`bench.ingest`, and a full rescore so the event rescores have a scale.
Then the burst: ``--orders`` new orders for random customers through ``record_orders``
(``--batch`` orders a transaction, as ``recordOrders`` takes them; 1 is ``recordOrder``),
with the server's rescore window. Then the clock moves past the last window and every
``churn.rescore_marked`` job is run. Prints a table; JSON goes to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest import RESULTS, _configure, _wipe, table
from bench.ingest_floor import load_customers, load_orders, write_files

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench_burst"


async def prepare(url: str, customers: int, history: int, say: Any) -> None:
    from tenure.testing import create_all

    await _wipe(url)
    await create_all(url)
    os.environ["TENURE_DATABASE_URL"] = url
    await _configure(url)
    with tempfile.TemporaryDirectory(prefix="tenure-burst-") as folder:
        now = datetime.now(UTC) - timedelta(days=1)
        people, orders = write_files(Path(folder), history, customers, seed=5, now=now)
        say(f"history: {customers:,} customers, {history:,} orders (COPY) ...")
        ids = await load_customers(url, people, now)
        await load_orders(url, orders, ids, now)
    from tenure.core.context import ServiceContext
    from tenure.core.db import Database
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings
    from tenure.plugins.churn.service import rescore_all

    settings = Settings.from_env()
    plugins = load_plugins(settings)
    db = Database(url)
    try:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def transaction() -> Any:
            async with db.transaction() as session:
                yield ServiceContext(session, settings, plugins, actor="bench")

        say("full rescore (the scale the event rescores use) ...")
        await rescore_all(transaction, follow_up_now=False)
    finally:
        await db.dispose()


async def burst(url: str, customers: int, orders: int, batch: int, say: Any) -> dict[str, Any]:
    from sqlalchemy import text

    from tenure.core import clock
    from tenure.core.context import ServiceContext
    from tenure.core.db import Database
    from tenure.core.outbox import run_entry
    from tenure.core.plugins import load_plugins
    from tenure.core.services.orders import LineData, OrderData, record_orders
    from tenure.core.settings import Settings

    settings = Settings.from_env()
    plugins = load_plugins(settings)
    rng = random.Random(3)
    db = Database(url)
    try:
        say(f"burst: {orders:,} orders, {batch} a transaction ...")
        began, cpu = time.perf_counter(), time.process_time()
        for start in range(0, orders, batch):
            part = [OrderData(customer_id=rng.randint(1, customers), channel="burst", external_id=f"b{start + k}",
                              currency="USD", lines=[LineData("SKU-1", 1, rng.randint(500, 9000), "Item", "coffee")])
                    for k in range(min(batch, orders - start))]
            async with db.transaction() as session:
                await record_orders(ServiceContext(session, settings, plugins, actor="bench"), part)
        burst_s, burst_cpu = time.perf_counter() - began, time.process_time() - cpu
        async with db.reader() as session:
            jobs = [(int(i), json.loads(p) if isinstance(p, str) else p) for i, p in (await session.execute(text(
                "SELECT id, payload FROM outbox WHERE job = 'churn.rescore_marked' AND status = 'pending' "
                "ORDER BY id"))).all()]
            marked = int(await session.scalar(text("SELECT count(*) FROM churn_stale WHERE marked_at >= :t"),
                                              {"t": datetime.now(UTC) - timedelta(seconds=burst_s + 60)}) or 0)
        later = clock.FrozenClock(datetime.now(UTC) + timedelta(seconds=30))
        say(f"running {len(jobs)} churn.rescore_marked job(s) ...")
        took: list[dict[str, Any]] = []
        with clock.use_clock(later):
            for entry_id, _ in jobs:
                w, c = time.perf_counter(), time.process_time()
                outcome = await run_entry(db, plugins, settings, entry_id)
                took.append({"entry": entry_id, "outcome": outcome, "wall_s": round(time.perf_counter() - w, 3),
                             "cpu_s": round(time.process_time() - c, 3)})
        return {"orders": orders, "batch": batch, "burst_s": round(burst_s, 2), "burst_cpu_s": round(burst_cpu, 2),
                "customers_marked": marked, "jobs": took,
                "cpu_s": round(sum(j["cpu_s"] for j in took), 3), "wall_s": round(sum(j["wall_s"] for j in took), 3)}
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.churn_burst", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--history", type=int, default=None, help="orders before the burst (default 5 each)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database", default=os.environ.get("TENURE_BENCH_BURST_URL", DEFAULT_URL))
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    import logging

    logging.disable(logging.INFO)
    asyncio.run(prepare(args.database, args.customers, args.history or args.customers * 5, say))
    out = asyncio.run(burst(args.database, args.customers, args.orders, args.batch, say))
    per_order = 1000 * out["cpu_s"] / out["orders"]
    rows = [(f"churn.rescore_marked after {out['orders']:,} orders ({len(out['jobs'])} jobs, "
             f"{out['customers_marked']:,} customers marked)",
             f"{per_order:.3f} ms CPU per order", "-", "-", "<= 1 ms CPU per order"),
            ("  the jobs' CPU / wall time", f"{out['cpu_s']:.2f} s / {out['wall_s']:.2f} s", "-", "-", ""),
            (f"  the burst itself ({out['batch']} orders a transaction)",
             f"{out['burst_s']:.1f} s, {1000 * out['burst_cpu_s'] / out['orders']:.2f} ms CPU per order", "-", "-", "")]
    text = table(rows)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}-churn-burst-{args.orders}.json"
    path.write_text(json.dumps({"at": stamp, "result": out, "table": text}, indent=2))
    say(f"written to {path}")


if __name__ == "__main__":
    main()
