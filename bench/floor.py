"""The floor: the same answers as Tenure's GraphQL for the benchmarked requests, written by
hand as plain Starlette endpoints over an asyncpg pool, with the same SQL in spirit (one
statement per kind of read, batched over the page) and no ORM, no GraphQL, no dataloaders.

Each endpoint authenticates like Tenure does (API keys looked up by their SHA-256, member
tokens by their HMAC), so what the ratio measures is the cost of the framework, not of a
step the floor skips. Run it with ``uvicorn bench.floor:create_app --factory``; the
database comes from ``TENURE_DATABASE_URL`` and the plugin tables are used when
``BENCH_FLOOR_LOYALTY=1``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tenure.core.auth import AuthenticationError, verify_token

LOYALTY = os.environ.get("BENCH_FLOOR_LOYALTY") == "1"
REMINDER_DAYS, QUALIFYING_DAYS, RETURN_DAYS, EXPIRY_DAYS = 30, 365, 14, 365
SECRET = (os.environ.get("TENURE_SECRET_KEY") or "tenure-development-secret-change-me").encode()


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status, media_type="application/json")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _cursor(values: list[Any]) -> str:
    raw = json.dumps([{"t": v.isoformat()} if isinstance(v, datetime) else v for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bearer(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


async def _api_key(conn: asyncpg.Connection, token: str) -> bool:
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = await conn.fetchrow("SELECT role, revoked_at, expires_at FROM api_keys WHERE key_hash = $1", digest)
    return row is not None and row["revoked_at"] is None


async def me(request: Request) -> Response:
    try:
        claims = verify_token(SECRET, "member", _bearer(request).removeprefix("tm1."))
    except AuthenticationError as error:
        return _json({"errors": [{"message": str(error)}]}, 401)
    cid = int(claims["sub"])
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT id, name, birthday, locale, consent_email, consent_sms, consent_push "
                                  "FROM customers WHERE id = $1", cid)
        emails = await conn.fetch("SELECT value FROM customer_contacts WHERE customer_id = $1 AND kind = 'email' "
                                  "ORDER BY id", cid)
        member: dict[str, Any] = {
            "id": str(row["id"]), "name": row["name"],
            "birthday": row["birthday"].isoformat() if row["birthday"] else None, "locale": row["locale"],
            "consent": {"email": row["consent_email"], "sms": row["consent_sms"], "push": row["consent_push"]},
            "emails": [e["value"] for e in emails],
        }
        if LOYALTY:
            member.update(await _member_points(conn, cid))
    return _json({"data": {"me": member}})


async def _member_points(conn: asyncpg.Connection, cid: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    account = await conn.fetchrow("SELECT balance, pending, lifetime_earned FROM loyalty_accounts "
                                  "WHERE customer_id = $1", cid)
    soon = await conn.fetch(
        "SELECT expires_at, remaining FROM loyalty_entries WHERE customer_id = $1 AND NOT pending "
        "AND remaining > 0 AND expires_at > $2 AND expires_at <= $3 ORDER BY expires_at",
        cid, now, now + timedelta(days=REMINDER_DAYS))
    by_day: dict[datetime, int] = {}
    for r in soon:
        day = r["expires_at"].astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        by_day[day] = by_day.get(day, 0) + r["remaining"]
    qualifying = await conn.fetchval("SELECT sum(qualifying) FROM loyalty_entries WHERE customer_id = $1 "
                                     "AND created_at >= $2", cid, now - timedelta(days=QUALIFYING_DAYS))
    rewards = await conn.fetch(
        "SELECT r.id, r.name, r.cost FROM loyalty_accounts a JOIN loyalty_rewards r ON r.active "
        "AND r.cost <= a.balance AND (r.stock IS NULL OR r.stock > 0) WHERE a.customer_id = $1 ORDER BY r.cost, r.id",
        cid)
    return {
        "points": {"balance": account["balance"] if account else 0, "pending": account["pending"] if account else 0,
                   "lifetimeEarned": account["lifetime_earned"] if account else 0,
                   "qualifying": max(0, int(qualifying or 0)),
                   "expiringSoon": [{"points": p, "at": _iso(d)} for d, p in by_day.items()]},
        "affordableRewards": [{"id": str(r["id"]), "name": r["name"], "cost": r["cost"]} for r in rewards],
    }


async def customers(request: Request) -> Response:
    first = int(request.query_params.get("first", "100"))
    async with request.app.state.pool.acquire() as conn:
        if not await _api_key(conn, _bearer(request)):
            return _json({"errors": [{"message": "not authenticated"}]}, 401)
        rows = await conn.fetch("SELECT id, name, order_count, total_spent, last_order_at, owner_id FROM customers "
                                "ORDER BY id DESC LIMIT $1", first + 1)
        page = rows[:first]
        ids = [r["id"] for r in page]
        owners = {r["id"]: r["name"] for r in await conn.fetch(
            "SELECT id, name FROM staff_users WHERE id = ANY($1::bigint[])",
            list({r["owner_id"] for r in page if r["owner_id"] is not None}))}
        orders: dict[int, list[Any]] = defaultdict(list)
        for o in await conn.fetch(
                "SELECT o.id, o.customer_id, o.external_id, o.placed_at, o.status, o.amount, o.currency FROM orders o "
                "JOIN (SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY placed_at DESC, id DESC) "
                "AS rank FROM orders WHERE customer_id = ANY($1::bigint[])) ranked ON ranked.id = o.id "
                "WHERE ranked.rank <= 6 ORDER BY o.customer_id, o.placed_at DESC, o.id DESC", ids):
            orders[o["customer_id"]].append(o)
        balances: dict[int, int] = {}
        if LOYALTY:
            balances = {r[0]: r[1] for r in await conn.fetch(
                "SELECT customer_id, balance FROM loyalty_accounts WHERE customer_id = ANY($1::bigint[])", ids)}
    nodes = []
    for r in page:
        node: dict[str, Any] = {
            "id": str(r["id"]), "name": r["name"], "orderCount": r["order_count"],
            "lastOrderAt": _iso(r["last_order_at"]),
            "totalSpent": {"amount": r["total_spent"], "currency": "USD"},
            "owner": {"name": owners[r["owner_id"]]} if r["owner_id"] in owners else None,
            "orders": {"nodes": [{"id": str(o["id"]), "externalId": o["external_id"], "placedAt": _iso(o["placed_at"]),
                                  "status": o["status"].upper(), "amount": {"amount": o["amount"],
                                                                            "currency": o["currency"]}}
                                 for o in orders[r["id"]][:5]]},
        }
        if LOYALTY:
            node["points"] = {"balance": balances.get(r["id"], 0)}
        nodes.append(node)
    return _json({"data": {"customers": {"nodes": nodes, "pageInfo": {
        "hasNextPage": len(rows) > first, "endCursor": _cursor([page[-1]["id"]]) if page else None}}}})


def _audit(operation: str, cid: int, now: datetime) -> tuple[Any, ...]:
    return (now, "api-key:bench", "admin", "mutation", operation, cid, "ok")


AUDIT = ("INSERT INTO audit_log (occurred_at, actor, role, kind, operation, customer_id, outcome) "
         "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
EVENT = ("INSERT INTO events (type, source, customer_id, summary, data, on_timeline, occurred_at) "
         "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) RETURNING id")
RESCORE_WINDOW = 5


#: Configuration kept per process, as Tenure keeps it: valid while the token is the same.
_CONFIGURATION: dict[str, Any] = {"token": None}


async def _configuration(conn: asyncpg.Connection) -> dict[str, Any]:
    """The after-order surveys, active tiers, the base earn rule, the active webhook
    subscriptions and journeys, read again only when the configuration token changed (one
    statement)."""
    token = await conn.fetchval("SELECT token FROM config_version WHERE id = 1")
    if token is None or token != _CONFIGURATION["token"]:
        _CONFIGURATION.update(
            token=token,
            surveys=await conn.fetch("SELECT id, delay_days FROM nps_surveys WHERE trigger = 'after_order' AND active"),
            tiers=await conn.fetch("SELECT id, name, rank, min_spend, min_orders, window_days, points_multiplier "
                                   "FROM tiers WHERE active ORDER BY rank"),
            rule=await conn.fetchrow("SELECT points, per_amount FROM loyalty_earn_rules WHERE active "
                                     "AND kind = 'base' ORDER BY id LIMIT 1"),
            subscribers=await conn.fetch("SELECT id, event_types FROM webhook_subscriptions WHERE active"),
            # The journeys plugin's entries and exits for an order start from its active journeys.
            journeys=await conn.fetch("SELECT id, trigger, conditions, exits, steps FROM journeys_journeys "
                                      "WHERE status = 'active' ORDER BY id"))
    return _CONFIGURATION


async def _tier_check(conn: asyncpg.Connection, tiers: list[Any], cid: int, now: datetime) -> int:
    """The tiers plugin's answer to an order: the customer's figures over the tiers' window,
    the highest tier they reach, an upgrade (or the lapse moved on) written; returns the
    points multiplier of the tier held (percent)."""
    held = await conn.fetchrow("SELECT tier_id FROM tier_memberships WHERE customer_id = $1 FOR UPDATE", cid)
    if not tiers:
        return 100
    window = max(t["window_days"] for t in tiers)
    rows = await conn.fetch("SELECT placed_at, amount - refunded_amount FROM orders WHERE customer_id = $1 "
                            "AND status <> 'cancelled' AND placed_at >= $2", cid, now - timedelta(days=window))

    def reaches(t: Any) -> bool:
        since = now - timedelta(days=t["window_days"])
        spend = sum(r[1] for r in rows if r[0] >= since)
        count = sum(1 for r in rows if r[0] >= since)
        checks = ([spend >= t["min_spend"]] if t["min_spend"] is not None else []) + \
                 ([count >= t["min_orders"]] if t["min_orders"] is not None else [])
        return any(checks) if checks else True

    target = next((t for t in reversed(tiers) if reaches(t)), None)
    current = next((t for t in tiers if held is not None and t["id"] == held["tier_id"]), None)
    if target is not None and (current is None or target["rank"] > current["rank"]):
        await conn.execute(
            "INSERT INTO tier_memberships (customer_id, tier_id, since, expires_at, manual, reason, updated_at) "
            "VALUES ($1, $2, $3, $4, false, 'order', $3) ON CONFLICT (customer_id) DO UPDATE SET tier_id = $2, "
            "since = $3, expires_at = $4, downgrade_on = NULL, updated_at = $3",
            cid, target["id"], now, now + timedelta(days=target["window_days"]))
        await conn.fetchval(EVENT, "tiers.changed", "tiers", cid, f"reached {target['name']}",
                            json.dumps({"customerId": cid, "tier": target["name"]}), True, now)
        current = target
    elif current is not None and (current["min_spend"] is not None or current["min_orders"] is not None):
        await conn.execute("UPDATE tier_memberships SET expires_at = $2, downgrade_on = NULL WHERE customer_id = $1",
                           cid, now + timedelta(days=current["window_days"]))
    return current["points_multiplier"] if current is not None else 100


async def record_order(request: Request) -> Response:
    """What Tenure's recordOrder transaction does with every plugin on (bench/README.md lists
    both sides' statements): the order, lines, order month and customer figures; the NPS
    after-order survey check; the tier check; points at the earn rule and tier multiplier on
    the locked account; the churn warning resolved, the churn mark and the rescore window's
    job in the outbox; the event log (points earned, order recorded); the audit row."""
    body = json.loads(await request.body())
    data = body["variables"]["input"]
    cid, ext, channel = int(data["customerId"]), data["externalId"], data["channel"].lower()
    lines = [(line["sku"], line.get("name", ""), line.get("category"), line["quantity"], line["unitPrice"])
             for line in data["lines"]]
    amount = sum(q * p for *_, q, p in lines)
    now = datetime.now(UTC)
    async with request.app.state.pool.acquire() as conn:
        if not await _api_key(conn, _bearer(request)):
            return _json({"errors": [{"message": "not authenticated"}]}, 401)
        async with conn.transaction():
            await conn.fetchrow("SELECT id, order_count, total_spent, first_order_at, last_order_at FROM customers "
                                "WHERE id = $1 FOR UPDATE", cid)
            found = await conn.fetchval("SELECT id FROM orders WHERE channel = $1 AND external_id = $2", channel, ext)
            if found is not None:
                return _json({"data": {"recordOrder": {"order": {"id": str(found), "externalId": ext},
                                                       "created": False, "userErrors": []}}})
            order_id = await conn.fetchval(
                "INSERT INTO orders (customer_id, channel, external_id, currency, amount, refunded_amount, status, "
                "placed_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 0, 'paid', $6, $6, $6) RETURNING id",
                cid, channel, ext, data["currency"], amount, now)
            await conn.executemany(
                "INSERT INTO order_lines (order_id, sku, name, category, quantity, unit_price, amount) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)", [(order_id, s, n, c, q, p, q * p) for s, n, c, q, p in lines])
            # The order-months rollup that retention reads: this month's row, linked to the previous one.
            month = now.year * 12 + now.month - 1
            await conn.execute(
                "WITH prev AS (SELECT max(month) AS m, min(first_month) AS f FROM order_months "
                "WHERE customer_id = $1 AND month < $2), "
                "link AS (UPDATE order_months SET next_month = $2 WHERE customer_id = $1 "
                "AND month = (SELECT m FROM prev) AND next_month IS NULL) "
                "INSERT INTO order_months (customer_id, month, orders, revenue, prev_month, next_month, first_month) "
                "SELECT $1, $2, 1, $3, prev.m, NULL, coalesce(prev.f, $2) FROM prev "
                "ON CONFLICT (customer_id, month) DO UPDATE SET orders = order_months.orders + 1, "
                "revenue = order_months.revenue + $3", cid, month, amount)
            await conn.execute(
                "UPDATE customers SET order_count = order_count + 1, total_spent = total_spent + $2, "
                "first_order_at = coalesce(least(first_order_at, $3), $3), "
                "last_order_at = greatest(coalesce(last_order_at, $3), $3) WHERE id = $1", cid, amount, now)
            configuration = await _configuration(conn)
            if LOYALTY:
                percent = await _tier_check(conn, configuration["tiers"], cid, now)
                rule = configuration["rule"]
                points = amount * (rule["points"] if rule else 1) // (rule["per_amount"] if rule else 100)
                points = points * percent // 100
                await conn.fetchrow("SELECT balance, pending FROM loyalty_accounts WHERE customer_id = $1 FOR UPDATE",
                                    cid)
                await conn.execute(
                    "UPDATE loyalty_accounts SET pending = pending + $2, lifetime_earned = lifetime_earned + $2, "
                    "updated_at = $3 WHERE customer_id = $1", cid, points, now)
                await conn.execute(
                    "INSERT INTO loyalty_entries (customer_id, kind, points, qualifying, pending, remaining, "
                    "shortfall, reason, source, order_id, idempotency_key, detail, created_at, available_at, "
                    "expires_at) VALUES ($1, 'earn', $2, $2, true, $2, 0, $3, 'order', $4, $5, '{}', $6, $7, $8)",
                    cid, points, f"order {ext}", order_id, f"order:{order_id}", now,
                    now + timedelta(days=RETURN_DAYS), now + timedelta(days=EXPIRY_DAYS))
                await conn.fetchval(EVENT, "loyalty.points_earned", "loyalty", cid, f"{points} points for order {ext}",
                                    json.dumps({"customerId": cid, "orderId": order_id, "points": points}), True, now)
            subscribers = configuration["subscribers"]
            if LOYALTY:
                resolved = await conn.fetch(
                    "UPDATE churn_warnings SET status = 'resolved', resolved_at = $2, came_back = true "
                    "WHERE customer_id = $1 AND status = 'open' AND since <= $2 RETURNING customer_id", cid, now)
                if resolved:
                    await conn.fetchval(EVENT, "churn.came_back", "churn", cid, "came back after a churn warning",
                                        json.dumps({"customerId": cid}), True, now)
                await conn.execute("INSERT INTO churn_stale (customer_id, marked_at) VALUES ($1, $2) "
                                   "ON CONFLICT (customer_id) DO UPDATE SET marked_at = excluded.marked_at", cid, now)
                window = int(now.timestamp()) // RESCORE_WINDOW
                since = datetime.fromtimestamp(window * RESCORE_WINDOW, UTC)
                await conn.fetchval(
                    "INSERT INTO outbox (job, payload, dedupe_key, status, attempts, available_at, dispatched_at, "
                    "created_at) VALUES ('churn.rescore_marked', $1::json, $2, 'pending', 0, $3, NULL, $4) "
                    "ON CONFLICT DO NOTHING RETURNING id", json.dumps({"since": since.isoformat()}),
                    f"churn:rescore_marked:{window}", since + timedelta(seconds=RESCORE_WINDOW), now)
            await conn.fetchval(EVENT, "order.recorded", "core", cid, "order.recorded",
                                json.dumps({"orderId": order_id, "customerId": cid, "amount": amount}), False, now)
            del subscribers
            await conn.fetchval(AUDIT, *_audit("recordOrder", cid, now))
    return _json({"data": {"recordOrder": {"order": {"id": str(order_id), "externalId": ext}, "created": True,
                                           "userErrors": []}}})


async def redeem_points(request: Request) -> Response:
    """What Tenure's redeemPoints transaction does: the idempotency claim, the customer, the
    locked account, the entry, the oldest lot drawn, the account, the recorded result, the
    entry read back for the answer, and the audit row."""
    body = json.loads(await request.body())
    data = body["variables"]["input"]
    cid, points, key = int(data["customerId"]), int(data["points"]), data["idempotencyKey"]
    now = datetime.now(UTC)
    async with request.app.state.pool.acquire() as conn:
        if not await _api_key(conn, _bearer(request)):
            return _json({"errors": [{"message": "not authenticated"}]}, 401)
        async with conn.transaction():
            claimed = await conn.fetchval(
                "INSERT INTO idempotency_records (operation, key, request_hash, result, created_at) "
                "VALUES ('loyalty.redeemPoints', $1, '', '{}', $2) ON CONFLICT DO NOTHING RETURNING key",
                f"{cid}:{key}", now)
            if claimed is None:
                return _json({"data": {"redeemPoints": {"entry": None, "userErrors": []}}})
            await conn.fetchval("SELECT id FROM customers WHERE id = $1", cid)
            balance = await conn.fetchval("SELECT balance FROM loyalty_accounts WHERE customer_id = $1 FOR UPDATE", cid)
            if balance is None or balance < points:
                raise RuntimeError("the bench gives its members enough points")
            entry = await conn.fetchval(
                "INSERT INTO loyalty_entries (customer_id, kind, points, qualifying, pending, remaining, shortfall, "
                "reason, source, idempotency_key, detail, created_at) VALUES ($1, 'redeem', $2, 0, false, 0, 0, $3, "
                "'manual', $4, '{}', $5) RETURNING id", cid, -points, data["reason"], key, now)
            lot = await conn.fetchrow(
                "SELECT id, remaining FROM loyalty_entries WHERE customer_id = $1 AND NOT pending AND remaining > 0 "
                "ORDER BY expires_at ASC NULLS LAST, id LIMIT 1", cid)
            await conn.execute("UPDATE loyalty_accounts SET balance = balance - $2, updated_at = $3 "
                               "WHERE customer_id = $1", cid, points, now)
            await conn.execute("INSERT INTO loyalty_draws (entry_id, lot_id, points) VALUES ($1, $2, $3)",
                               entry, lot["id"], points)
            await conn.execute("UPDATE loyalty_entries SET remaining = remaining - $2 WHERE id = $1", lot["id"], points)
            await conn.execute("UPDATE idempotency_records SET result = $3::jsonb WHERE operation = "
                               "'loyalty.redeemPoints' AND key = $1 AND $2::text IS NOT NULL",
                               f"{cid}:{key}", key, json.dumps({"entryId": entry}))
            await conn.fetchrow("SELECT id, points FROM loyalty_entries WHERE id = $1", entry)
            await conn.fetchrow("SELECT balance FROM loyalty_accounts WHERE customer_id = $1", cid)
            await conn.fetchval(AUDIT, *_audit("redeemPoints", cid, now))
    return _json({"data": {"redeemPoints": {"entry": {"id": str(entry), "points": -points}, "userErrors": []}}})


def create_app() -> Starlette:
    url = os.environ["TENURE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(url, min_size=2, max_size=10)
        yield
        await app.state.pool.close()

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    return Starlette(routes=[
        Route("/me", me, methods=["POST"]),
        Route("/customers", customers, methods=["POST"]),
        Route("/record-order", record_order, methods=["POST"]),
        Route("/redeem-points", redeem_points, methods=["POST"]),
        Route("/healthz", healthz),
    ], lifespan=lifespan)
