"""The import benchmark's files and its floor.

The files: a customers CSV (external id, name, email) and an orders JSON Lines file (one
order a line, with its lines, in time order over three years), written from one seed.

The floor does the work of ``tenure import customers`` and ``tenure import orders``, no
more and no less, in as few statements as it can; no plugin code runs. It reads the same
files, gives the rows their ids itself and loads them with COPY (PostgreSQL) or
``executemany`` (SQLite): the customers with their identity, email and ``customer.created``
event; the orders, their lines and ``order.recorded`` events; an ``import.completed`` event
for each file. Then the rest, set-based, one statement each:

1. each customer's order count, spend, first and last order (UPDATE from a GROUP BY);
2. :func:`_order_tiers`: every order with its customer's spend and order count in its own
   window, the highest tier those reach, and the tier its customer's membership holds
   before and after it (the highest reached so far: window functions), into a temporary
   table;
3. :func:`_entries`: an order's loyalty entry at the base rule times the points multiplier
   of the tier it left its customer in (Tenure re-qualifies before it counts the points),
   rounded down once, and a first order's bonus (not multiplied), with Tenure's reasons and
   detail; then the loyalty accounts from the entries;
4. :func:`_tier_events`: a ``tiers.changed`` event for each order that moved its customer
   in or up, at that order's time, with Tenure's summary and data; then the journeys
   plugin's note of each as history (``journeys_history_events``, so that no journey starts
   on it);
5. :func:`_memberships`: one membership for each customer who reached a tier: the last
   upgrade's tier and reason, since that upgrade's order, and ``expires_at`` as
   ``qualify.lapses_at`` works it out as of the last order that reached the tier;
6. the churn marks; the order-months rollup with
   :func:`tenure.core.services.order_months.rebuild`.

Tenure's import qualifies each order as of its own time ``t``, as history should: the
order's window holds its customer's orders recorded by then and placed in ``(t - window_days,
t]``, so a tier reached two years ago is reached then and multiplies the points of that
order and of the next ones while it is held. The file is in time order, so those are the
customer's orders so far in the file (which is how Tenure's batches take orders placed at
the same time, one after the other) less those placed ``window_days`` or more before ``t``
(a RANGE frame over the time; on SQLite, whose RANGE offsets are numbers, over microseconds
since 1970). An import only moves a customer up: an order whose window reaches a lower tier
leaves the membership alone, one that reaches the same tier renews its expiry, one that
reaches a higher tier moves it up from ``t`` (the review after the import moves down those
whose tier has lapsed since). So the tier held after an order is the highest reached so
far. No tier figure depends on the floor's clock any more: its now only dates the rows it
writes (``created_at``, ``updated_at``) and splits the pending entries from the available
ones, which no figure compares.

The tiers are read from the table; the floor computes those on spend and order count over
one window, as the bench's are, and refuses others (:func:`_window_days`).
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES = ("coffee", "tea", "equipment", "pastry")
#: The rules both sides earn by: 1 point per 100 minor units (the rule named ``base``), 50
#: points on a first order (``welcome``).
POINTS_PER, PER_AMOUNT, FIRST_ORDER_BONUS = 1, 100, 50
BASE_RULE, BONUS_RULE = "base", "welcome"
RETURN_DAYS, EXPIRY_DAYS = 14, 365
BATCH = 20_000


def write_files(folder: Path, orders: int, customers: int, seed: int, now: datetime,
                pad: int = 0) -> tuple[Path, Path]:
    """``customers.csv`` and ``orders.jsonl`` in ``folder``; ``pad`` adds that many bytes of
    note to each order (to make a large file for the memory row)."""
    rng = np.random.default_rng(seed)
    people = folder / "customers.csv"
    with people.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["external_id", "name", "email"])
        for n in range(1, customers + 1):
            writer.writerow([f"c{n}", f"Customer {n}", f"c{n}@bench.test"])
    path = folder / "orders.jsonl"
    span = 3 * 365 * 86400.0
    end = now.timestamp() - 3600
    note = "x" * pad
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, orders, BATCH):
            size = min(BATCH, orders - start)
            # Each chunk of the file takes its own stretch of the three years, in order: the
            # whole file is in time order and its orders spread evenly over the span.
            first, stop = end - span + span * start / orders, end - span + span * (start + size) / orders
            times = np.sort(rng.uniform(first, stop, size))
            owners = rng.integers(1, customers + 1, size)
            counts = rng.choice((1, 2, 3), size, p=(0.5, 0.35, 0.15))
            for k in range(size):
                lines = [{"sku": f"SKU-{int(rng.integers(1, 200))}", "name": "Item",
                          "category": CATEGORIES[int(rng.integers(0, 4))], "quantity": int(rng.integers(1, 3)),
                          "unit_price": int(rng.integers(300, 6000))} for _ in range(int(counts[k]))]
                row: dict[str, Any] = {
                    "customer_external_id": f"c{int(owners[k])}", "channel": "shop", "external_id": f"o{start + k + 1}",
                    "currency": "USD", "placed_at": datetime.fromtimestamp(float(times[k]), UTC).isoformat(),
                    "lines": lines}
                if pad:
                    row["note"] = note
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
    return people, path


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


def _sqlite_params(sql: str) -> str:
    """``$1::timestamptz`` (PostgreSQL's numbered parameter with its type) as ``?1``."""
    return re.sub(r"\$(\d+)(::\w+)?", r"?\1", sql)


class Loader:
    """Bulk writes on one connection: asyncpg's COPY, or sqlite3's executemany."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.conn: Any = None

    async def __aenter__(self) -> Loader:
        if self.sqlite:
            self.conn = sqlite3.connect(self.url.split(":///", 1)[1])
        else:
            import asyncpg

            self.conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://", 1))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.sqlite:
            self.conn.commit()
            self.conn.close()
        else:
            await self.conn.close()

    async def copy(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                                  [tuple(_sqlite_value(v) for v in row) for row in rows])
        else:
            await self.conn.copy_records_to_table(table, records=rows, columns=columns)

    async def execute(self, sql: str, *args: Any) -> None:
        if self.sqlite:
            self.conn.execute(_sqlite_params(sql), tuple(_sqlite_value(a) for a in args))
            self.conn.commit()
        else:
            await self.conn.execute(sql, *args)

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite:
            return list(self.conn.execute(sql))
        return [tuple(r) for r in await self.conn.fetch(sql)]

    async def follow_ids(self, *tables: str) -> None:
        """PostgreSQL's sequences moved past the ids the floor gave (SQLite follows by itself)."""
        if self.sqlite:
            return
        for table in tables:
            await self.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")


def _orders(path: Path) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    with path.open("rb") as raw:
        for line in raw:
            chunk.append(json.loads(line))
            if len(chunk) >= BATCH:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


ORDER_COLUMNS = ["id", "customer_id", "channel", "external_id", "currency", "amount", "refunded_amount", "status",
                 "placed_at", "created_at", "updated_at"]
LINE_COLUMNS = ["id", "order_id", "sku", "name", "category", "quantity", "unit_price", "amount"]
EVENT_COLUMNS = ["id", "type", "source", "customer_id", "summary", "data", "on_timeline", "occurred_at"]
CUSTOMER_COLUMNS = ["id", "name", "consent_email", "consent_sms", "consent_push", "created_at", "updated_at",
                    "order_count", "total_spent"]


def _completed(event_id: int, kind: str, path: Path, rows: int, now: datetime) -> tuple[Any, ...]:
    """The ``import.completed`` event Tenure writes once a file is in (every row new here)."""
    line = f"{rows} rows read: {rows} were new, 0 were updates, 0 already imported, 0 rejected"
    data = {"kind": kind, "file": path.name, "rows": rows, "created": rows, "updated": 0, "alreadyImported": 0,
            "rejected": 0}
    return (event_id, "import.completed", "core", None, f"imported {kind}: {line}", json.dumps(data), False, now)


async def load_customers(url: str, path: Path, now: datetime) -> dict[str, int]:
    """The customers, their identities, emails and events, with the ids the floor gives them."""
    ids: dict[str, int] = {}
    async with Loader(url) as db:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for n, row in enumerate(rows, start=1):
            ids[row["external_id"]] = n
        await db.copy("customers", CUSTOMER_COLUMNS,
                      [(n, r["name"], False, False, False, now, now, 0, 0) for n, r in enumerate(rows, start=1)])
        await db.copy("customer_identities", ["id", "customer_id", "kind", "value"],
                      [(n, n, "external", r["external_id"]) for n, r in enumerate(rows, start=1)])
        await db.copy("customer_contacts", ["id", "customer_id", "kind", "value"],
                      [(n, n, "email", r["email"]) for n, r in enumerate(rows, start=1)])
        created = [(n, "customer.created", "core", n, "customer.created",
                    json.dumps({"customerId": n, "name": r["name"]}), False, now) for n, r in enumerate(rows, start=1)]
        await db.copy("events", EVENT_COLUMNS, [*created, _completed(len(rows) + 1, "customers", path, len(rows), now)])
        await db.follow_ids("customers", "customer_identities", "customer_contacts", "events")
    return ids


async def load_orders(url: str, path: Path, ids: dict[str, int], now: datetime) -> int:
    """The orders and what follows from them (see the module notes); the number of orders."""
    from tenure.core.db import Database
    from tenure.core.services.order_months import rebuild
    from tenure.core.settings import Settings

    async with Loader(url) as db:
        sql = _Sql(db.sqlite, Settings.from_env().currency)
        days = await _window_days(db)
        count = await _copy_orders(db, path, ids, now)
        await db.follow_ids("orders", "order_lines", "events")
        figures = ("SELECT customer_id, count(*) AS n, sum(amount) AS s, min(placed_at) AS f, max(placed_at) AS l "
                   "FROM orders WHERE status <> 'cancelled' GROUP BY customer_id")
        await db.execute(f"UPDATE customers SET order_count = a.n, total_spent = a.s, first_order_at = a.f, "
                         f"last_order_at = a.l FROM ({figures}) a WHERE customers.id = a.customer_id")
        await db.execute(_order_tiers(sql, days))
        if not db.sqlite:
            await db.execute("ANALYZE floor_order_tiers")  # a temporary table has no statistics until asked
        await db.execute(_entries(sql), now, now - timedelta(days=RETURN_DAYS))
        await db.execute(
            "INSERT INTO loyalty_accounts (customer_id, balance, pending, lifetime_earned, shortfall, updated_at) "
            "SELECT customer_id, sum(CASE WHEN pending THEN 0 ELSE points END), "
            "sum(CASE WHEN pending THEN points ELSE 0 END), "
            "sum(points), 0, $1::timestamptz FROM loyalty_entries "
            "GROUP BY customer_id", now)
        await db.execute(_tier_events(sql))
        await db.execute(_memberships(sql), now)
        # Tenure's journeys plugin notes each event an import's tiers wrote, so that no journey starts on it.
        await db.execute("INSERT INTO journeys_history_events (event_id) "
                         "SELECT id FROM events WHERE type = 'tiers.changed'")
        await db.execute("INSERT INTO churn_stale (customer_id, marked_at) SELECT DISTINCT customer_id, "
                         "$1::timestamptz FROM orders", now)
        next_event = int((await db.rows("SELECT COALESCE(MAX(id), 0) FROM events"))[0][0]) + 1
        await db.copy("events", EVENT_COLUMNS, [_completed(next_event, "orders", path, count, now)])
        await db.follow_ids("events")
    database = Database(url)
    try:
        await rebuild(database)
    finally:
        await database.dispose()
    return count


async def _copy_orders(db: Loader, path: Path, ids: dict[str, int], now: datetime) -> int:
    """The file's orders, their lines and ``order.recorded`` events, by COPY; how many orders."""
    order_id = line_id = 0
    event_id = int((await db.rows("SELECT COALESCE(MAX(id), 0) FROM events"))[0][0])
    for chunk in _orders(path):
        orders, lines, events = [], [], []
        for row in chunk:
            order_id += 1
            cid = ids[row["customer_external_id"]]
            placed = datetime.fromisoformat(row["placed_at"])
            amount = 0
            for line in row["lines"]:
                line_id += 1
                total = line["quantity"] * line["unit_price"]
                amount += total
                lines.append((line_id, order_id, line["sku"], line["name"], line["category"], line["quantity"],
                              line["unit_price"], total))
            orders.append((order_id, cid, row["channel"], row["external_id"], row["currency"], amount, 0, "paid",
                           placed, now, now))
            data = {"orderId": order_id, "customerId": cid, "channel": row["channel"],
                    "externalId": row["external_id"], "currency": row["currency"], "amount": amount,
                    "refundedAmount": 0, "status": "paid", "placedAt": placed.isoformat()}
            event_id += 1
            events.append((event_id, "order.recorded", "core", cid, "order.recorded", json.dumps(data), False, now))
        await db.copy("orders", ORDER_COLUMNS, orders)
        await db.copy("order_lines", LINE_COLUMNS, lines)
        await db.copy("events", EVENT_COLUMNS, events)
    return order_id


# -- Tiers, set-based ---------------------------------------------------------------------------

async def _window_days(db: Loader) -> int:
    """The window every active tier qualifies over (0 without a tier), checked to be what
    the floor's statements compute: criteria on spend and order count (qualifying points
    would need the ledger as of each order) over one window (a window per tier would need
    running sums per window)."""
    rows = await db.rows("SELECT min_points, window_days FROM tiers WHERE active")
    if any(points is not None for points, _ in rows):
        raise UnsupportedTiers("a tier qualifies on points; the floor's statements count spend and orders only "
                               "(the bench's tiers, bench.ingest._configure, have no points criterion)")
    windows = {days for _, days in rows}
    if len(windows) > 1:
        raise UnsupportedTiers(f"the tiers qualify over different windows ({sorted(windows)} days); the floor's "
                               "statements keep one running window for every tier, as the bench's tiers share")
    return windows.pop() if windows else 0


class UnsupportedTiers(ValueError):
    """Tiers the floor's statements do not compute: the comparison would not be like for like,
    so the bench stops rather than print a floor that does other work than Tenure."""


@dataclass(frozen=True)
class _Sql:
    """The expressions that differ between PostgreSQL and SQLite, and Tenure's texts as SQL."""

    sqlite: bool
    currency: str

    def plus_days(self, stamp: str, days: str | int) -> str:
        if self.sqlite:  # its date functions drop the microseconds: they are carried over as text
            return f"(datetime(substr({stamp}, 1, 19), '+' || ({days}) || ' days') || substr({stamp}, 20))"
        # In seconds, not days: a day of an interval follows the session's time zone (timedelta does not).
        return f"({stamp} + make_interval(secs => ({days}) * 86400))"

    def placed_before(self, stamp: str, days: int) -> str:
        """A window's order and frame: the rows placed (``stamp``) ``days`` or more before the
        current row's time (those that have left a window of ``days`` ending then)."""
        if self.sqlite:  # a RANGE offset needs a number: the microseconds since 1970
            micros = (f"(CAST(strftime('%s', substr({stamp}, 1, 19)) AS INTEGER) * 1000000 "
                      f"+ CAST(substr({stamp}, 21) AS INTEGER))")
            return f"ORDER BY {micros} RANGE BETWEEN UNBOUNDED PRECEDING AND {days * 86_400_000_000} PRECEDING"
        return f"ORDER BY {stamp} RANGE BETWEEN UNBOUNDED PRECEDING AND make_interval(secs => {days * 86400}) PRECEDING"

    def quoted(self, text: str) -> str:
        """``text`` as a JSON string, to build JSON as Tenure's ``json.dumps`` writes it."""
        return f"json_quote({text})" if self.sqlite else f"to_json(({text})::text)::text"

    def json(self, text: str) -> str:
        return text if self.sqlite else f"CAST({text} AS jsonb)"

    def money(self, amount: str) -> str:
        """:func:`tenure.core.money.money_text` of a non-negative ``amount``, digit by digit
        (SQLite's ``||`` binds before arithmetic, hence the parentheses)."""
        from tenure.core.money import minor_digits

        digits = minor_digits(self.currency)
        if not digits:
            return f"({amount}) || ' {self.currency}'"
        minor = " || ".join(f"((({amount}) / {10 ** n}) % 10)" for n in reversed(range(digits)))
        return f"(({amount}) / {10 ** digits}) || '.' || {minor} || ' {self.currency}'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_object(*pairs: tuple[str, str]) -> str:
    """SQL for the text ``json.dumps`` writes for an object: ``pairs`` of a key and an SQL
    expression that is JSON text already (a number, :meth:`_Sql.quoted`, ``'null'``)."""
    body = " || ', ' || ".join(f"{_literal(json.dumps(key) + ': ')} || {value}" for key, value in pairs)
    return f"'{{' || {body} || '}}'"


def _meets(spend: str, orders: str) -> str:
    """:func:`tenure.plugins.tiers.qualify.meets` for tier ``t``: a tier without criteria is
    everyone's; otherwise any criterion set, or all of them with ``require_all``."""
    return (f"((t.min_spend IS NULL AND t.min_orders IS NULL) "
            f"OR (t.require_all AND COALESCE({spend} >= t.min_spend, TRUE) "
            f"AND COALESCE({orders} >= t.min_orders, TRUE)) "
            f"OR (NOT t.require_all AND (COALESCE({spend} >= t.min_spend, FALSE) "
            f"OR COALESCE({orders} >= t.min_orders, FALSE))))")


def _order_tiers(sql: _Sql, days: int) -> str:
    """Each order with its customer's spend and order count in its own window (the orders
    recorded so far, less those placed ``days`` or more before it), the highest tier those
    reach (``reached``, a rank), and the rank the membership holds after it (``held``, the
    highest reached so far) and before it (``held_before``): an import only moves up."""
    return f"""
        CREATE TEMP TABLE floor_order_tiers AS
        SELECT r.*, max(r.reached) OVER (PARTITION BY r.customer_id ORDER BY r.id ROWS UNBOUNDED PRECEDING) AS held,
               max(r.reached) OVER (PARTITION BY r.customer_id ORDER BY r.id
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS held_before
        FROM (
            SELECT f.*, (SELECT max(t.rank) FROM tiers t WHERE t.active AND {_meets("f.spend", "f.n")}) AS reached
            FROM (
                SELECT id, customer_id, channel, external_id, amount, placed_at, row_number() OVER so_far AS nth,
                       CAST(sum(amount) OVER so_far - COALESCE(sum(amount) OVER gone, 0) AS BIGINT) AS spend,
                       count(*) OVER so_far - count(*) OVER gone AS n
                FROM orders
                WINDOW so_far AS (PARTITION BY customer_id ORDER BY id ROWS UNBOUNDED PRECEDING),
                       gone AS (PARTITION BY customer_id {sql.placed_before("placed_at", days)})
            ) f
        ) r"""


def _entries(sql: _Sql) -> str:
    """An order's entry (base rule times its tier's multiplier, rounded down once) and a
    first order's bonus (not multiplied), as Tenure's ledger writes them: pending until the
    return window closes (``$2``: orders placed after it are pending at ``$1``, now),
    expiring from the order's time (history earns as of then). In the order Tenure writes
    them: an order's entry, then its bonus."""
    rate = _literal(json.dumps(f"{POINTS_PER} per {PER_AMOUNT} ({BASE_RULE})"))
    multiplier = "COALESCE(t.points_multiplier, 100)"
    label = "t.points_multiplier || '% ' || t.name || ' tier'"  # Multiplier(percent, f"{tier.name} tier")
    extra = f"'[' || CASE WHEN {multiplier} <> 100 THEN {sql.quoted(label)} ELSE '' END || ']'"
    detail = sql.json(_json_object(("rate", rate), ("multipliers", "'[]'"), ("extra", extra)))
    return f"""
        INSERT INTO loyalty_entries (customer_id, kind, points, qualifying, pending, remaining, shortfall, reason,
                                     source, order_id, idempotency_key, detail, created_at, available_at, expires_at)
        SELECT customer_id, 'earn', points, CASE WHEN bonus = 1 THEN 0 ELSE points END, pending, points, 0, reason,
               'order', order_id, idempotency_key, detail, $1::timestamptz,
               CASE WHEN pending THEN {sql.plus_days("placed_at", RETURN_DAYS)} ELSE $1::timestamptz END,
               {sql.plus_days("placed_at", EXPIRY_DAYS)}
        FROM (
            SELECT o.id AS order_id, 0 AS bonus, o.customer_id, o.placed_at, o.placed_at > $2::timestamptz AS pending,
                   o.amount * {POINTS_PER} * {multiplier} / {PER_AMOUNT * 100} AS points,
                   'order ' || o.external_id || ' (' || o.channel || ')' AS reason,
                   'order:' || o.id AS idempotency_key, {detail} AS detail
            FROM floor_order_tiers o LEFT JOIN tiers t ON t.rank = o.held
            UNION ALL
            SELECT id, 1, customer_id, placed_at, placed_at > $2::timestamptz, {FIRST_ORDER_BONUS},
                   'first order bonus ({BONUS_RULE})', 'first_order', {sql.json("'{}'")}
            FROM floor_order_tiers WHERE nth = 1
        ) e
        WHERE points > 0
        ORDER BY order_id, bonus"""


def _upgrades(sql: _Sql) -> str:
    """The orders that moved their customer up (or in): a tier reached above the one held
    before, with Tenure's reason (the order and
    :func:`tenure.plugins.tiers.service.describe` of the tier reached over its window)."""
    spend = f"CASE WHEN t.min_spend IS NULL THEN '' ELSE ', spend ' || {sql.money('o.spend')} END"
    orders = "CASE WHEN t.min_orders IS NULL THEN '' ELSE ', ' || o.n || ' orders' END"
    describe = (f"CASE WHEN t.min_spend IS NULL AND t.min_orders IS NULL THEN 'everyone''s starting tier' "
                f"ELSE substr({spend} || {orders}, 3) || ' in the last ' || t.window_days || ' days' END")
    return f"""
        SELECT o.id, o.customer_id, o.reached, t.id AS tier_id, o.held_before, o.placed_at,
               'order ' || o.external_id || ': ' || {describe} AS reason
        FROM floor_order_tiers o JOIN tiers t ON t.rank = o.reached
        WHERE o.held_before IS NULL OR o.reached > o.held_before"""


def _tier_events(sql: _Sql) -> str:
    """One ``tiers.changed`` event for each upgrade, on the timeline, at the order's time, as
    ``service._change`` writes it (its JSON text too, which SQLite keeps as written)."""
    data = _json_object(("customerId", "u.customer_id"), ("tier", sql.quoted("t.name")), ("tierId", "t.id"),
                        ("previousTier", f"COALESCE({sql.quoted('p.name')}, 'null')"),
                        ("reason", sql.quoted("u.reason")), ("manual", "'false'"))
    return f"""
        INSERT INTO events (type, source, customer_id, summary, data, on_timeline, occurred_at)
        SELECT 'tiers.changed', 'tiers', u.customer_id,
               substr(CASE WHEN p.id IS NULL THEN 'joined ' ELSE 'moved up to ' END || t.name || ': ' || u.reason,
                      1, 500),
               {sql.json(data)}, TRUE, u.placed_at
        FROM ({_upgrades(sql)}) u
        JOIN tiers t ON t.id = u.tier_id LEFT JOIN tiers p ON p.rank = u.held_before
        ORDER BY u.id"""


def _memberships(sql: _Sql) -> str:
    """One membership for each customer who reached a tier: the last upgrade's tier and
    reason, since its order's time; ``expires_at`` as ``qualify.lapses_at`` works it out as
    of the last order that reached that tier (``last``; each such order sets it anew), over
    the customer's orders in the window ending then (``kept``, with the spend and count of
    those placed strictly after each: ``upto`` holds an order's peers at the same time): the
    first of them, oldest first, after which the later ones no longer reach the tier, plus
    the window (none for a tier without spend or order criteria). ``$1``: now, the time the
    membership is written."""
    return f"""
        WITH reached AS (
            SELECT * FROM (
                SELECT u.*, row_number() OVER (PARTITION BY u.customer_id ORDER BY u.id DESC) AS latest
                FROM ({_upgrades(sql)}) u
            ) x WHERE latest = 1
        ), last AS (
            SELECT o.customer_id, max(o.placed_at) AS placed_at
            FROM floor_order_tiers o JOIN reached r ON r.customer_id = o.customer_id AND r.reached = o.reached
            GROUP BY o.customer_id
        ), kept AS (
            SELECT o.customer_id, o.placed_at,
                   sum(o.amount) OVER whole - sum(o.amount) OVER upto AS spend,
                   count(*) OVER whole - count(*) OVER upto AS n
            FROM floor_order_tiers o JOIN last l ON l.customer_id = o.customer_id
                 JOIN reached r ON r.customer_id = o.customer_id JOIN tiers t ON t.id = r.tier_id
            WHERE o.placed_at <= l.placed_at AND {sql.plus_days("o.placed_at", "t.window_days")} > l.placed_at
            WINDOW whole AS (PARTITION BY o.customer_id),
                   upto AS (PARTITION BY o.customer_id ORDER BY o.placed_at)
        ), lapses AS (
            SELECT k.customer_id, min(k.placed_at) AS placed_at
            FROM kept k JOIN reached r ON r.customer_id = k.customer_id JOIN tiers t ON t.id = r.tier_id
            WHERE NOT {_meets("k.spend", "k.n")}
            GROUP BY k.customer_id
        )
        INSERT INTO tier_memberships (customer_id, tier_id, since, expires_at, downgrade_on, manual, reason,
                                      updated_at)
        SELECT r.customer_id, r.tier_id, r.placed_at,
               CASE WHEN t.min_spend IS NULL AND t.min_orders IS NULL THEN NULL
                    ELSE COALESCE({sql.plus_days("x.placed_at", "t.window_days")}, l.placed_at) END,
               NULL, FALSE, substr(r.reason, 1, 300), $1::timestamptz
        FROM reached r JOIN tiers t ON t.id = r.tier_id JOIN last l ON l.customer_id = r.customer_id
        LEFT JOIN lapses x ON x.customer_id = r.customer_id"""


# -- What each side left ------------------------------------------------------------------------

def _seconds(column: str, rows: str) -> dict[str, str]:
    """The seconds since 1970 of ``column`` in ``rows`` (a table and its filter), added up:
    a figure per database."""
    return {"postgresql": f"SELECT COALESCE(sum(floor(extract(epoch FROM {column}))), 0)::bigint FROM {rows}",
            "sqlite": f"SELECT COALESCE(sum(CAST(strftime('%s', {column}) AS INTEGER)), 0) FROM {rows}"}


FIGURES: dict[str, str | dict[str, str]] = {
    "orders": "SELECT count(*) FROM orders",
    "order lines": "SELECT count(*) FROM order_lines",
    "customers with orders": "SELECT count(*) FROM customers WHERE order_count > 0",
    "sum of order_count": "SELECT coalesce(sum(order_count), 0) FROM customers",
    "sum of total_spent": "SELECT coalesce(sum(total_spent), 0) FROM customers",
    "order_months rows": "SELECT count(*) FROM order_months",
    "sum of order_months revenue": "SELECT coalesce(sum(revenue), 0) FROM order_months",
    "loyalty entries": "SELECT count(*) FROM loyalty_entries",
    "sum of loyalty entry points": "SELECT coalesce(sum(points), 0) FROM loyalty_entries",
    "loyalty lifetime points": "SELECT coalesce(sum(lifetime_earned), 0) FROM loyalty_accounts",
    "churn marks": "SELECT count(*) FROM churn_stale",
    "tier memberships": "SELECT count(*) FROM tier_memberships",
    "memberships by tier (sum of tier_id)": "SELECT coalesce(sum(tier_id), 0) FROM tier_memberships",
    "membership since (sum of epoch s)": _seconds("since", "tier_memberships"),
    "membership expiry (sum of epoch s)": _seconds("expires_at", "tier_memberships"),
    "tiers.changed events": "SELECT count(*) FROM events WHERE type = 'tiers.changed'",
    "tiers.changed times (sum of epoch s)": _seconds("occurred_at", "events WHERE type = 'tiers.changed'"),
    "tiers.changed summaries (chars)":
        "SELECT coalesce(sum(length(summary)), 0) FROM events WHERE type = 'tiers.changed'",
    "journeys history events": "SELECT count(*) FROM journeys_history_events",
    "events": "SELECT count(*) FROM events",
}


async def figures(url: str) -> dict[str, int]:
    """What a side left in the database, to compare the two."""
    from sqlalchemy import text

    from tenure.core.db import Database

    db = Database(url)
    try:
        async with db.reader() as session:
            return {name: int(await session.scalar(text(sql if isinstance(sql, str) else sql[db.dialect])) or 0)
                    for name, sql in FIGURES.items()}
    finally:
        await db.dispose()
