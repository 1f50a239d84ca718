"""A large, realistic data set for the scale benchmarks: customers, orders and interactions
over several years, with seasonal buying, customers who drift away, and planted customers
whose behaviour is known (so a benchmark can check that churn warnings find the right ones).

    from bench.datagen import generate
    planted = generate("postgresql+asyncpg://tenure:tenure@127.0.0.1/tenure_bench",
                       customers=1_000_000, orders_per_customer=10, interactions_per_customer=5)
    planted.churners, planted.loyal   # customer ids; also stored in the table bench_planted

Shape of the data (all times UTC, ``now`` is the end of the range):

- Customers sign up uniformly over ``years``; each buys ``1 + Poisson(lam)`` times with ``lam``
  drawn from a gamma distribution (mean ``orders_per_customer``), at times spread over their
  active life, which ends after an exponential lifetime (mean ``mean_lifetime_days``) or at
  ``now``. Buying is seasonal: November and December weigh 1.5x and 1.8x, January 0.8x.
- Amounts are log-normal around 40.00; 2% of orders are cancelled, 3% partly refunded.
- Interactions (visit, email_open, login, support, complaint) fall over each customer's
  active life; about 2% are complaints. A fifth of the customers carry a tag.
- **Planted churners** (``planted_share`` of the customers): ordered regularly every 14-30
  days for more than a year and stopped 120-200 days ago; no complaints.
- **Planted loyal customers** (the same share): order every 7-20 days up to the last 10
  days, interact steadily over the last half year, never complain or cancel.

The rows go in with COPY on PostgreSQL (``asyncpg.copy_records_to_table``) and batched
``executemany`` on SQLite, ``chunk`` customers at a time, so memory stays flat; a progress bar
shows on stderr. The tables are dropped and created from the models first.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

DAY = 86400
WEIGHTS = np.array([0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.8]) / 1.8
KINDS = np.array(["visit", "email_open", "login", "support", "complaint"])
KIND_P = [0.40, 0.30, 0.20, 0.08, 0.02]
CHANNELS = np.array(["web", "pos", "app", "marketplace"])
TAGS = np.array(["newsletter", "vip", "b2b", "student"])


@dataclass
class Planted:
    churners: list[int] = field(default_factory=list)
    loyal: list[int] = field(default_factory=list)
    customers: int = 0
    orders: int = 0
    interactions: int = 0
    seconds: float = 0.0
    #: The end of the generated range: rescore with the clock here to see the data as built.
    now: datetime | None = None


@dataclass
class Chunk:
    customers: list[dict[str, Any]]
    tags: list[tuple[Any, ...]]
    orders: list[tuple[Any, ...]]
    interactions: list[tuple[Any, ...]]
    churners: list[int]
    loyal: list[int]


def _regular(rng: np.random.Generator, start: np.ndarray, last: np.ndarray, gap_lo: float,
             gap_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Orders every gap (days, per customer) from ``last`` back to ``start``: (owner index, time)."""
    gaps = rng.uniform(gap_lo, gap_hi, len(start)) * DAY
    counts = np.maximum(1, ((last - start) // gaps).astype(np.int64) + 1)
    owner = np.repeat(np.arange(len(start)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    times = last[owner] - step * gaps[owner] + rng.uniform(-0.2, 0.2, len(owner)) * DAY
    return owner, np.minimum(times, last[owner])


def make_chunk(rng: np.random.Generator, first_id: int, n: int, now: float, years: float, orders_per_customer: float,
               interactions_per_customer: float, planted_share: float, mean_lifetime_days: float,
               next_order_id: int, next_interaction_id: int) -> Chunk:
    ids = np.arange(first_id, first_id + n)
    span = years * 365 * DAY
    kind = rng.random(n)
    churner, loyal = kind < planted_share, (kind >= planted_share) & (kind < 2 * planted_share)
    normal = ~(churner | loyal)
    signup = now - span + rng.random(n) * (span - 30 * DAY)
    signup[churner] = now - span + rng.random(churner.sum()) * (span - 600 * DAY)
    signup[loyal] = now - span + rng.random(loyal.sum()) * (span - 400 * DAY)
    # Normal customers: random times over their active life, thinned by season.
    lam = rng.gamma(1.5, max(orders_per_customer - 1, 0.01) / 1.5, n)
    wanted = 1 + rng.poisson(lam)
    end = np.minimum(now - 60, signup + rng.exponential(mean_lifetime_days * DAY, n))
    cand = np.where(normal, np.ceil(wanted / 0.62).astype(np.int64), 0)
    owner = np.repeat(np.arange(n), cand)
    first = np.cumsum(cand) - cand
    u = rng.random(len(owner))
    u[first[cand > 0]] = 0.0  # everyone's first order is the day they sign up
    times = signup[owner] + u * (end[owner] - signup[owner])
    months = times.astype(np.int64).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
    keep = rng.random(len(owner)) < WEIGHTS[months]
    keep[first[cand > 0]] = True
    owner, times = owner[keep], times[keep]
    # Planted customers.
    c_idx, l_idx = np.flatnonzero(churner), np.flatnonzero(loyal)
    stop = now - rng.uniform(120, 200, len(c_idx)) * DAY
    co, ct = _regular(rng, signup[c_idx], stop, 14, 30)
    lo_, lt = _regular(rng, signup[l_idx], now - rng.uniform(0.5, 10, len(l_idx)) * DAY, 7, 20)
    owner = np.concatenate([owner, c_idx[co], l_idx[lo_]])
    times = np.concatenate([times, ct, lt])
    planted = np.concatenate([np.zeros(len(owner) - len(co) - len(lo_), bool), np.ones(len(co) + len(lo_), bool)])
    order = np.lexsort((times, owner))
    owner, times, planted = owner[order], times[order], planted[order]
    m = len(owner)
    amount = np.maximum(100, rng.lognormal(np.log(4000), 0.6, m)).astype(np.int64)
    r = rng.random(m)
    status = np.where(r < 0.02, "cancelled", np.where(r < 0.05, "partially_refunded", "paid"))
    status[planted] = "paid"
    refunded = np.where(status == "partially_refunded", (amount * rng.uniform(0.1, 0.5, m)).astype(np.int64), 0)
    counted = status != "cancelled"
    net = np.where(counted, amount - refunded, 0)
    order_count = np.bincount(owner, weights=counted, minlength=n).astype(np.int64)
    spent = np.bincount(owner, weights=net, minlength=n).astype(np.int64)
    first_at = np.full(n, np.nan)
    last_at = np.full(n, np.nan)
    np.fmin.at(first_at, owner[counted], times[counted])
    np.fmax.at(last_at, owner[counted], times[counted])
    # Interactions.
    icount = rng.poisson(interactions_per_customer, n)
    icount[loyal] = 12
    icount[churner] = np.minimum(icount[churner], 3)
    iowner = np.repeat(np.arange(n), icount)
    istart = np.where(loyal, now - 180 * DAY, signup)[iowner]
    iend = np.where(normal, end + 30 * DAY, np.where(churner, now - 200 * DAY, now - 60))[iowner]
    iend = np.minimum(np.maximum(iend, istart + DAY), now - 60)
    itimes = istart + rng.random(len(iowner)) * (iend - istart)
    if loyal.any():  # steady: the same number in each of the last two quarters
        steady = loyal[iowner]
        slot = np.arange(len(iowner)) - np.repeat(np.cumsum(icount) - icount, icount)
        itimes[steady] = now - (slot[steady] + 0.5) * 15 * DAY
    ikind = rng.choice(KINDS, len(iowner), p=KIND_P)
    ikind[~normal[iowner]] = "visit"
    last_i = np.full(n, np.nan)
    np.fmax.at(last_i, iowner, itimes)
    return Chunk(
        customers=_customer_rows(rng, ids, signup, first_at, last_at, order_count, spent, last_i),
        tags=[(int(ids[i]), str(t)) for i, t in zip(*_tags(rng, n), strict=True)],
        orders=[(next_order_id + k, int(ids[o]), "bench", f"b{next_order_id + k}", "USD", int(a), int(rf), str(s),
                 _dt(t), _dt(t), _dt(t))
                for k, (o, a, rf, s, t) in enumerate(zip(owner, amount, refunded, status, times, strict=True))],
        interactions=[(next_interaction_id + k, int(ids[o]), str(kd), "web", _dt(t), "", "{}", None, _dt(t))
                      for k, (o, kd, t) in enumerate(zip(iowner, ikind, itimes, strict=True))],
        churners=[int(i) for i in ids[churner]], loyal=[int(i) for i in ids[loyal]])


def _tags(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    tagged = np.flatnonzero(rng.random(n) < 0.2)
    return tagged, rng.choice(TAGS, len(tagged))


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(float(t), UTC)


def _opt(t: float) -> datetime | None:
    return None if np.isnan(t) else _dt(t)


def _customer_rows(rng: np.random.Generator, ids: np.ndarray, signup: np.ndarray, first_at: np.ndarray,
                   last_at: np.ndarray, order_count: np.ndarray, spent: np.ndarray,
                   last_i: np.ndarray) -> list[dict[str, Any]]:
    channel = rng.choice(CHANNELS, len(ids))
    return [{"id": int(i), "name": f"Customer {int(i)}", "source_channel": str(ch), "created_at": _dt(s),
             "updated_at": _dt(s), "first_order_at": _opt(f), "last_order_at": _opt(la), "order_count": int(c),
             "total_spent": int(sp), "last_interaction_at": _opt(li), "consent_email": False, "consent_sms": False,
             "consent_push": False}
            for i, ch, s, f, la, c, sp, li in zip(ids, channel, signup, first_at, last_at, order_count, spent, last_i,
                                                  strict=True)]


ORDER_COLUMNS = ["id", "customer_id", "channel", "external_id", "currency", "amount", "refunded_amount", "status",
                 "placed_at", "created_at", "updated_at"]
INTERACTION_COLUMNS = ["id", "customer_id", "kind", "channel", "occurred_at", "summary", "payload", "external_id",
                       "created_at"]


def _customer_columns() -> tuple[list[str], dict[str, Any]]:
    """The customers table's columns as the models declare them now (other parts of Tenure
    may add columns): every column we do not fill must be nullable or have a default."""
    from tenure.core.models import Customer

    columns, defaults = [], {}
    for column in Customer.__table__.columns:
        columns.append(column.name)
        default = column.default.arg if column.default is not None and not callable(column.default.arg) else None
        defaults[column.name] = default
    return columns, defaults


class Bar:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.started = total, enabled, time.perf_counter()

    def show(self, done: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(self.total, 1))
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} customers "
                         f"({rate:,.0f}/s)")
        sys.stderr.flush()
        if done >= self.total:
            sys.stderr.write("\n")


def generate(database_url: str, customers: int, orders_per_customer: float = 10.0,
             interactions_per_customer: float = 5.0, *, years: float = 3.0, seed: int = 7,
             now: datetime | None = None, planted_share: float = 0.005, mean_lifetime_days: float = 500.0,
             chunk: int = 20_000, progress: bool = True) -> Planted:
    """Drop and create the tables, fill them, and return the planted customers (also stored
    in ``bench_planted(customer_id, kind)``). ``now`` defaults to the current time."""
    end = (now or datetime.now(UTC)).timestamp()
    started = time.perf_counter()
    _recreate(database_url)
    args = dict(now=end, years=years, orders_per_customer=orders_per_customer,
                interactions_per_customer=interactions_per_customer, planted_share=planted_share,
                mean_lifetime_days=mean_lifetime_days)
    if database_url.startswith("sqlite"):
        planted = _fill_sqlite(database_url, customers, seed, chunk, progress, args)
    else:
        planted = asyncio.run(_fill_postgres(database_url, customers, seed, chunk, progress, args))
    from tenure.core.services.order_months import rebuild_url

    rebuild_url(database_url, progress)  # the retention rollup, for orders loaded around the services
    planted.customers, planted.seconds = customers, time.perf_counter() - started
    planted.now = datetime.fromtimestamp(end, UTC)
    return planted


def _recreate(database_url: str) -> None:
    from tenure.testing import create_all

    asyncio.run(create_all(database_url))


def _chunks(customers: int, seed: int, chunk: int, args: dict[str, Any]) -> Any:
    rng = np.random.default_rng(seed)
    order_id = interaction_id = 1
    for first in range(1, customers + 1, chunk):
        part = make_chunk(rng, first, min(chunk, customers + 1 - first), next_order_id=order_id,
                          next_interaction_id=interaction_id, **args)
        order_id += len(part.orders)
        interaction_id += len(part.interactions)
        yield first + min(chunk, customers + 1 - first) - 1, part


async def _fill_postgres(url: str, customers: int, seed: int, chunk: int, progress: bool,
                         args: dict[str, Any]) -> Planted:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    planted, bar = Planted(), Bar(customers, progress)
    columns, defaults = _customer_columns()
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_planted")
        await conn.execute("CREATE TABLE bench_planted (customer_id BIGINT PRIMARY KEY, kind TEXT NOT NULL)")
        await conn.execute("INSERT INTO bench_planted VALUES (0, $1)", f"now:{args['now']}")
        for done, part in _chunks(customers, seed, chunk, args):
            rows = [tuple(c.get(name, defaults[name]) for name in columns) for c in part.customers]
            await conn.copy_records_to_table("customers", records=rows, columns=columns)
            await conn.copy_records_to_table("customer_tags", records=part.tags, columns=["customer_id", "tag"])
            await conn.copy_records_to_table("orders", records=part.orders, columns=ORDER_COLUMNS)
            await conn.copy_records_to_table("interactions", records=part.interactions, columns=INTERACTION_COLUMNS)
            await conn.copy_records_to_table(
                "bench_planted", records=[(i, "churner") for i in part.churners] + [(i, "loyal") for i in part.loyal])
            _tally(planted, part)
            bar.show(done)
        for table, column in (("customers", "id"), ("orders", "id"), ("interactions", "id")):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                               f"(SELECT COALESCE(MAX({column}), 1) FROM {table}))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return planted


def _tally(planted: Planted, part: Chunk) -> None:
    planted.churners += part.churners
    planted.loyal += part.loyal
    planted.orders += len(part.orders)
    planted.interactions += len(part.interactions)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def _fill_sqlite(url: str, customers: int, seed: int, chunk: int, progress: bool, args: dict[str, Any]) -> Planted:
    path = url.split(":///", 1)[1]
    db = sqlite3.connect(path)
    planted, bar = Planted(), Bar(customers, progress)
    columns, defaults = _customer_columns()
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("DROP TABLE IF EXISTS bench_planted")
        db.execute("CREATE TABLE bench_planted (customer_id INTEGER PRIMARY KEY, kind TEXT NOT NULL)")
        db.execute("INSERT INTO bench_planted VALUES (0, ?)", (f"now:{args['now']}",))

        def insert(table: str, names: list[str], rows: list[tuple[Any, ...]]) -> None:
            marks = ", ".join("?" for _ in names)
            db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
                           [tuple(_sqlite_value(v) for v in row) for row in rows])

        for done, part in _chunks(customers, seed, chunk, args):
            insert("customers", columns,
                   [tuple(c.get(n, defaults[n]) for n in columns) for c in part.customers])
            insert("customer_tags", ["customer_id", "tag"], part.tags)
            insert("orders", ORDER_COLUMNS, part.orders)
            insert("interactions", INTERACTION_COLUMNS, part.interactions)
            insert("bench_planted", ["customer_id", "kind"],
                   [(i, "churner") for i in part.churners] + [(i, "loyal") for i in part.loyal])
            db.commit()
            _tally(planted, part)
            bar.show(done)
        db.execute("ANALYZE")
        db.commit()
    finally:
        db.close()
    return planted


def read_planted(database_url: str) -> Planted:
    """The planted customers of a data set built earlier."""
    async def pg() -> list[tuple[int, str]]:
        import asyncpg

        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            return [(r[0], r[1]) for r in await conn.fetch("SELECT customer_id, kind FROM bench_planted")]
        finally:
            await conn.close()

    if database_url.startswith("sqlite"):
        db = sqlite3.connect(database_url.split(":///", 1)[1])
        rows = db.execute("SELECT customer_id, kind FROM bench_planted").fetchall()
        db.close()
    else:
        rows = asyncio.run(pg())
    now = next((float(k[4:]) for i, k in rows if k.startswith("now:")), None)
    return Planted(churners=[i for i, k in rows if k == "churner"], loyal=[i for i, k in rows if k == "loyal"],
                   now=datetime.fromtimestamp(now, UTC) if now is not None else None)
