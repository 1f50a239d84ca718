"""The SQL statements of one ``recordOrder`` and one ``redeemPoints``, as Tenure runs them
(every plugin on, an earn rule and tiers defined, the churn rescore window as the server
has it), to set beside the floor's (bench/floor.py).

    python -m bench.statements [--database URL]      # wipes that database (default tenure_bench_stmts)

Transaction control (BEGIN, COMMIT, SAVEPOINT, RELEASE) and the pool's reset on release are
left out of both lists.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from typing import Any

from bench.suite import RECORD_ORDER, REDEEM

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench_stmts"
CREATE = "mutation($i: CustomerInput!) { createCustomer(input: $i) { customer { id } } }"
ADJUST = "mutation($i: AdjustPointsInput!) { adjustPoints(input: $i) { userErrors { message } } }"


def short(statement: str, width: int = 150) -> str:
    """One line: whitespace folded, bind lists shortened."""
    text = re.sub(r"\s+", " ", statement).strip()
    text = re.sub(r"(\$\d+(::[A-Z ]+)?, ){3,}", "$.., ", text)
    return text if len(text) <= width else text[: width - 3] + "..."


async def capture(url: str) -> dict[str, list[str]]:
    """Tenure's statements (with transaction control) for one request of each kind."""
    from sqlalchemy import event

    from bench.ingest import _configure, _wipe
    from tenure.testing import TenureHarness, pk_of

    await _wipe(url)
    out: dict[str, list[str]] = {}
    env = {"TENURE_CHURN_RESCORE_DELAY_SECONDS": "5"}
    async with TenureHarness.start(url, env=env, max_complexity=1_000_000) as tenure:
        os.environ["TENURE_DATABASE_URL"] = url
        await _configure(url)
        cid = (await tenure.ok(CREATE, {"i": {"name": "Ada", "emails": ["ada@bench.test"]}}))[
            "createCustomer"]["customer"]["id"]
        await tenure.ok(ADJUST, {"i": {"customerId": cid, "points": 10_000, "reason": "bench",
                                       "idempotencyKey": "top-up"}})

        def order(n: int) -> dict[str, Any]:
            return {"input": {"customerId": cid, "channel": "bench", "externalId": f"e{n}", "currency": "USD",
                              "lines": [{"sku": "SKU-1", "name": "Item", "category": "general", "quantity": 1,
                                         "unitPrice": 2500}]}}

        await tenure.ok(RECORD_ORDER, order(0))  # warm: caches, the first-order bonus, the window's job
        await tenure.ok(REDEEM, {"input": {"customerId": cid, "points": 1, "reason": "bench",
                                           "idempotencyKey": "r0"}})
        for name, query, variables in (
                ("recordOrder", RECORD_ORDER, order(1)),
                ("redeemPoints", REDEEM, {"input": {"customerId": cid, "points": 1, "reason": "bench",
                                                    "idempotencyKey": "r1"}})):
            seen: list[str] = []

            def record(conn: Any, cursor: Any, statement: str, *args: Any, seen: list[str] = seen) -> None:
                seen.append(statement)

            target = tenure.db.engine.sync_engine
            event.listen(target, "before_cursor_execute", record)
            try:
                await tenure.ok(query, variables)
            finally:
                event.remove(target, "before_cursor_execute", record)
            out[name] = seen
        key = await tenure.key("admin")
        pk = str(pk_of(cid))  # the floor takes plain ids, as its own clients send them
        for name, statements in (await floor_statements(url, key, {"input": {**order(2)["input"], "customerId": pk}},
                                                        {"input": {"customerId": pk, "points": 1, "reason": "bench",
                                                                   "idempotencyKey": "r2"}})).items():
            out[f"{name} (floor)"] = statements
    return out


async def floor_statements(url: str, key: str, order: dict[str, Any], redeem: dict[str, Any]) -> dict[str, list[str]]:
    """The floor's statements for the same two requests, from asyncpg's query logger."""
    import asyncpg
    import httpx

    os.environ["BENCH_FLOOR_LOYALTY"] = "1"
    from bench import floor

    floor.LOYALTY = True
    app = floor.create_app()
    seen: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: seen.append(record.query))

    out: dict[str, list[str]] = {}
    async with app.router.lifespan_context(app):
        await app.state.pool.close()
        app.state.pool = await asyncpg.create_pool(url.replace("postgresql+asyncpg://", "postgresql://", 1),
                                                   min_size=1, max_size=1, init=init)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://floor.test") as client:
            for name, path, body in (("recordOrder", "/record-order", {"variables": order}),
                                     ("redeemPoints", "/redeem-points", {"variables": redeem})):
                seen.clear()
                answer = (await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})).json()
                if answer.get("errors"):
                    raise RuntimeError(f"the floor refused {name}: {answer}")
                out[name] = list(seen)
        await app.state.pool.close()
    return out


def work(statements: list[str]) -> list[str]:
    """The statements that do work: transaction control and the pool's reset left out."""
    from tenure.testing import CONTROL_STATEMENTS

    return [s for s in statements if not s.lstrip().upper().startswith((*CONTROL_STATEMENTS, "SELECT PG_ADVISORY"))]


def main() -> None:
    import logging

    logging.disable(logging.INFO)
    parser = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=os.environ.get("TENURE_BENCH_STATEMENTS_URL", DEFAULT_URL))
    args = parser.parse_args()
    for name, everything in asyncio.run(capture(args.database)).items():
        statements = work(everything)
        print(f"{name}: {len(statements)} statements")
        for n, statement in enumerate(statements, start=1):
            print(f"  {n:2}. {short(statement)}")


if __name__ == "__main__":
    main()
