"""The predictions plugin's nightly fit at scale, against a floor: the summary statement alone.

    python -m bench.predict_scale                                  # 100,000 customers, about 1M orders
    python -m bench.predict_scale --customers 1000000              # 1M customers, about 10M orders
    python -m bench.predict_scale --customers 1000000 --reuse      # measure a data set built before

The data set (PostgreSQL only; the database is created if it does not exist) is drawn from
the models themselves, so the fit can be checked against the truth: each customer's first
purchase falls in the first year of three, purchase occasions follow a Poisson process with a
Gamma(r, alpha) rate, and after each repeat occasion the customer leaves with a Beta(a, b)
probability (BG/NBD); the values of their orders are Gamma(p, nu) with nu Gamma(q, v)
across customers (Gamma-Gamma). 8% of occasions hold a second order on the same day, 2% of
orders are cancelled and 3% partly refunded. The rows go in with binary COPY through asyncpg,
built by numpy a chunk of customers at a time, in a child process (so this process's peak
memory is the fit's own), with the orders' indexes and foreign key dropped during the load.

Then, in the same run: the **floor**, the summary statement alone, aggregated on the server
so no row travels (fastest of three, under the fit's session settings); and **Tenure**,
``plugins.predictions.service.fit_and_score`` as the nightly job runs it: the summary read
into arrays, both models fitted, the holdout check (both models fitted again on the
calibration days), every customer scored and the per-customer table rewritten with COPY, in
one transaction. Printed: seconds of each, their ratio, the steps, peak RSS, and the fitted
parameters against those the data were drawn from.

Targets: Tenure's fit and score under 2 minutes and 500 MB at 1M customers and 10M orders.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import resource
import struct
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_predict"
TRUTH = {"r": 0.9, "alpha": 4.0, "a": 0.6, "b": 3.0, "p": 6.0, "q": 4.0, "v": 1500.0}
START = datetime(2023, 1, 1, tzinfo=UTC)
WEEKS = 156.0
NOW = START + timedelta(weeks=WEEKS, hours=4)
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CHUNK = 100_000


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


# -- Binary COPY, built by numpy -------------------------------------------------------------


def copy_binary(columns: list[tuple[str, np.ndarray]]) -> bytes:
    """PostgreSQL's binary COPY format for fixed-width columns: ``q`` bigint, ``i`` integer,
    ``?`` boolean, ``M`` timestamptz (given as microseconds since 2000-01-01), ``S`` text."""
    n = len(columns[0][1])
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, (kind, values) in enumerate(columns):
        wire = {"q": ">i8", "i": ">i4", "?": "?", "M": ">i8"}.get(kind) or f"S{values.dtype.itemsize}"
        fields += [(f"len{i}", ">i4"), (f"val{i}", wire)]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["count"] = len(columns)
    for i, (_kind, values) in enumerate(columns):
        rows[f"len{i}"] = rows.dtype[f"val{i}"].itemsize
        rows[f"val{i}"] = values
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rows.tobytes() + struct.pack(">h", -1)


def _micros(t: np.ndarray) -> np.ndarray:
    """Seconds since 1970 as microseconds since 2000-01-01 (PostgreSQL's timestamp epoch)."""
    return ((t - PG_EPOCH.timestamp()) * 1e6).astype(np.int64)


def _digits(ids: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal text of ``ids``, as fixed-width bytes."""
    digits = np.empty((len(ids), width), dtype=np.uint8)
    rest = ids.astype(np.int64).copy()
    for k in range(width - 1, -1, -1):
        digits[:, k] = 48 + rest % 10
        rest //= 10
    return digits.view(f"S{width}").ravel()


def _fixed(text: str, n: int) -> np.ndarray:
    return np.full(n, text.encode(), dtype=f"S{len(text)}")


# -- The data: drawn from BG/NBD and Gamma-Gamma ---------------------------------------------


def draw_chunk(rng: np.random.Generator, first_id: int, n: int, first_order_id: int) -> dict[str, Any]:
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    rate = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    leave = rng.beta(TRUTH["a"], TRUTH["b"], n)
    first = rng.uniform(0, 52, n)
    span = WEEKS - first
    arrivals = rng.poisson(rate * span)
    repeats = np.minimum(arrivals, rng.geometric(leave))
    # The first `repeats` of each customer's `arrivals` uniform times over their span.
    owner = np.repeat(np.arange(n), arrivals)
    times = first[owner] + rng.uniform(0, 1, len(owner)) * span[owner]
    order = np.lexsort((times, owner))
    owner, times = owner[order], times[order]
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < repeats[owner]
    occ_owner = np.concatenate([np.arange(n), owner[keep]])
    occ_week = np.concatenate([first, times[keep]])
    # A second order on the same day for 8% of occasions, two hours later.
    twice = rng.random(len(occ_owner)) < 0.08
    o_owner = np.concatenate([occ_owner, occ_owner[twice]])
    o_time = START.timestamp() + np.concatenate([occ_week, occ_week[twice]]) * 7 * 86400
    o_time[len(occ_owner):] += 7200
    day_start = np.floor(o_time / 86400) * 86400
    o_time = np.minimum(o_time, day_start + 86399)
    nu = rng.gamma(TRUTH["q"], 1 / TRUTH["v"], n)
    amount = np.maximum(1, np.rint(rng.gamma(TRUTH["p"], 1 / nu[o_owner]))).astype(np.int64)
    roll = rng.random(len(o_owner))
    cancelled, refunded = roll < 0.02, (roll >= 0.02) & (roll < 0.05)
    refund = np.where(refunded, amount // 3, 0)
    last = np.zeros(n)
    np.maximum.at(last, o_owner, o_time)
    count = np.bincount(o_owner, minlength=n)
    spent = np.bincount(o_owner, weights=np.where(cancelled, 0, amount - refund), minlength=n).astype(np.int64)
    first_time = START.timestamp() + first * 7 * 86400
    return {"ids": ids, "first": first_time, "last": last, "count": count, "spent": spent,
            "order_ids": np.arange(first_order_id, first_order_id + len(o_owner), dtype=np.int64),
            "order_customer": ids[o_owner], "placed": o_time, "amount": amount, "refund": refund,
            "cancelled": cancelled, "refunded": refunded}


def customer_copy(c: dict[str, Any]) -> tuple[list[str], bytes]:
    n = len(c["ids"])
    created = _micros(c["first"])
    columns = [("id", "q", c["ids"]), ("name", "S", np.char.add(b"Customer ", _digits(c["ids"], 8))),
               ("consent_email", "?", np.zeros(n, bool)), ("consent_sms", "?", np.zeros(n, bool)),
               ("consent_push", "?", np.zeros(n, bool)), ("created_at", "M", created), ("updated_at", "M", created),
               ("first_order_at", "M", created), ("last_order_at", "M", _micros(c["last"])),
               ("order_count", "i", c["count"].astype(np.int32)), ("total_spent", "q", c["spent"])]
    return [name for name, _, _ in columns], copy_binary([(kind, values) for _, kind, values in columns])


def order_copies(c: dict[str, Any]) -> list[tuple[list[str], bytes]]:
    """One COPY per status (text columns are fixed width within one)."""
    out = []
    groups = (("paid", ~c["cancelled"] & ~c["refunded"]), ("cancelled", c["cancelled"]),
              ("partially_refunded", c["refunded"]))
    for status, rows in groups:
        n = int(rows.sum())
        if not n:
            continue
        placed = _micros(c["placed"][rows])
        columns = [("id", "q", c["order_ids"][rows]), ("customer_id", "q", c["order_customer"][rows]),
                   ("channel", "S", _fixed("web", n)), ("external_id", "S", _digits(c["order_ids"][rows], 10)),
                   ("currency", "S", _fixed("USD", n)), ("amount", "q", c["amount"][rows]),
                   ("refunded_amount", "q", c["refund"][rows]), ("status", "S", _fixed(status, n)),
                   ("placed_at", "M", placed), ("created_at", "M", placed), ("updated_at", "M", placed)]
        out.append(([name for name, _, _ in columns], copy_binary([(kind, values) for _, kind, values in columns])))
    return out


async def _ensure_database(url: str) -> None:
    import asyncpg

    base, _, name = _dsn(url).rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _build(url: str, customers: int, seed: int) -> dict[str, Any]:
    import io

    import asyncpg
    from sqlalchemy.schema import AddConstraint, CreateIndex

    from tenure.core.db import Base, Database, enabled_tables
    from tenure.core.models import Order

    await _ensure_database(url)
    import tenure.plugins.predictions.models  # noqa: F401  (its tables join the metadata)

    db = Database(url)
    tables = enabled_tables(["predictions"])
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.drop_all(c, tables=list(reversed(tables))))
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=tables))
    dialect = db.engine.dialect
    restore = [str(CreateIndex(i).compile(dialect=dialect)) for i in Order.__table__.indexes]
    restore += [str(AddConstraint(c).compile(dialect=dialect)) for c in Order.__table__.constraints
                if c.name != "pk_orders"]
    await db.dispose()
    conn = await asyncpg.connect(_dsn(url))
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    orders = 0
    try:
        for index in Order.__table__.indexes:
            await conn.execute(f"DROP INDEX {index.name}")
        for constraint in Order.__table__.constraints:
            if constraint.name != "pk_orders":
                await conn.execute(f"ALTER TABLE orders DROP CONSTRAINT {constraint.name}")
        for first in range(1, customers + 1, CHUNK):
            part = draw_chunk(rng, first, min(CHUNK, customers + 1 - first), orders + 1)
            names, data = customer_copy(part)
            await conn.copy_to_table("customers", source=io.BytesIO(data), columns=names, format="binary")
            for names, data in order_copies(part):
                await conn.copy_to_table("orders", source=io.BytesIO(data), columns=names, format="binary")
            orders += len(part["order_ids"])
            sys.stderr.write(f"\r  {first + CHUNK - 1:,} customers, {orders:,} orders "
                             f"({time.perf_counter() - started:.0f} s)")
        sys.stderr.write("\n")
        loaded = time.perf_counter() - started
        for statement in restore:
            await conn.execute(statement)
        for table in ("customers", "orders"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        await conn.execute("VACUUM ANALYZE customers")
        await conn.execute("VACUUM ANALYZE orders")
    finally:
        await conn.close()
    return {"customers": customers, "orders": orders, "load_s": loaded, "build_s": time.perf_counter() - started}


def _build_in_child(url: str, customers: int, seed: int, out: Any) -> None:
    out.put(asyncio.run(_build(url, customers, seed)))


def build(url: str, customers: int, seed: int) -> dict[str, Any]:
    queue: Any = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(target=_build_in_child, args=(url, customers, seed, queue))
    child.start()
    found = queue.get()
    child.join()
    return found  # type: ignore[no-any-return]


# -- The measurements ------------------------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(url: str) -> dict[str, Any]:
    from sqlalchemy import bindparam, text

    from tenure.core.clock import FrozenClock, use_clock
    from tenure.core.context import ServiceContext
    from tenure.core.db import Database, UTCDateTime
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings
    from tenure.plugins.predictions import scoring, service, statements
    from tenure.plugins.predictions.settings import predictions_settings

    settings = Settings.from_env({"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "predictions",
                                  "TENURE_ENVIRONMENT": "test"}, env_file=None)
    plugins = load_plugins(settings)
    cfg = predictions_settings(settings)
    db = Database(url)
    found: dict[str, Any] = {"rss_before_mb": _rss_mb()}
    as_of = NOW.date()
    end = scoring.day_number(as_of)
    # Every column summed, so the server computes each of them (an unused one would be pruned).
    sums = ", ".join(f"SUM({c})" for c in statements.COLUMNS)
    floor_sql = f"SELECT COUNT(*), {sums} FROM ({statements.summary('postgresql', True)}) s"
    stmt = text(floor_sql).bindparams(bindparam("end_at", type_=UTCDateTime()), bindparam("cal_end"))
    params = {"end_at": datetime.combine(as_of, datetime.min.time(), UTC), "cal_end": end - cfg.holdout_days}
    floors = []
    try:
        for _ in range(3):
            async with db.transaction() as session:
                await session.execute(text(f"SET LOCAL work_mem = '{cfg.work_mem_mb}MB'"))
                await session.execute(text("SET LOCAL jit = off"))
                started = time.perf_counter()
                (await session.execute(stmt, params)).one()
                floors.append(time.perf_counter() - started)
        found["floor_s"] = min(floors)
        with use_clock(FrozenClock(NOW)):
            started = time.perf_counter()
            async with db.transaction() as session:
                outcome = await service.fit_and_score(ServiceContext(session, settings, plugins, actor="bench"))
            found["tenure_s"] = time.perf_counter() - started
        found["steps"] = outcome.steps
        found["rss_mb"] = _rss_mb()
        fit = outcome.fit
        found["fit"] = {k: getattr(fit, k) for k in ("r", "alpha", "a", "b", "p", "q", "v", "customers",
                                                      "repeat_buyers", "occasions")}
        found["scored"] = outcome.scored
        async with db.reader() as session:
            found["rows"] = await session.scalar(text("SELECT count(*) FROM predictions_customers"))
            found["server"] = await session.scalar(text("SHOW server_version"))
            found["orders"] = await session.scalar(text("SELECT count(*) FROM orders"))
    finally:
        await db.dispose()
    return found


def table(size: dict[str, Any], m: dict[str, Any]) -> str:
    ratio = m["tenure_s"] / m["floor_s"]
    rows = [
        ("customers / orders", f"{m['fit']['customers']:,} / {m['orders']:,}"),
        ("purchase occasions (same-day orders merged), repeat buyers",
         f"{m['fit']['occasions']:,}, {m['fit']['repeat_buyers']:,}"),
        ("floor: the summary statement alone, on the server", f"{m['floor_s']:.2f} s"),
        ("Tenure: summary read, fit, holdout check, score, write", f"{m['tenure_s']:.2f} s"),
        ("Tenure / floor", f"{ratio:.2f}"),
        *((f"  step: {name}", f"{seconds:.2f} s") for name, seconds in m["steps"].items()),
        ("per-customer rows written", f"{m['rows']:,}"),
        ("peak RSS of this process (before the fit / after)", f"{m['rss_before_mb']:.0f} MB / {m['rss_mb']:.0f} MB"),
        ("target", "< 120 s and < 500 MB"
         + (" (met)" if m["tenure_s"] < 120 and m["rss_mb"] < 500 else " (not met)")),
    ]
    if size:
        rows.insert(1, ("data set built with binary COPY (load / with indexes)",
                        f"{size['load_s']:.0f} s / {size['build_s']:.0f} s"))
    fit = m["fit"]
    rows += [(f"  {k}: drawn from / fitted", f"{TRUTH[k]:g} / {fit[k]:.4g}") for k in TRUTH]
    width = max(len(a) for a, _ in rows)
    head = (f"predictions at scale: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
            f" PostgreSQL {m['server']}")
    lines = [head, "", f"| {'measure'.ljust(width)} | value |", f"| {'-' * width} | --- |"]
    lines += [f"| {a.ljust(width)} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--url", default=os.environ.get("TENURE_BENCH_PREDICT_URL", DEFAULT_URL))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="measure the data set built before")
    args = parser.parse_args(argv)
    if not args.url.startswith("postgresql"):
        parser.error("--url: a PostgreSQL database (postgresql+asyncpg://...)")
    size: dict[str, Any] = {}
    if not args.reuse:
        print(f"building {args.customers:,} customers ...", file=sys.stderr)
        size = build(args.url, args.customers, args.seed)
    print(table(size, asyncio.run(measure(args.url))))


if __name__ == "__main__":
    main()
