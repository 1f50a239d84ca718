"""Load: 200 concurrent clients on the member ``me`` query, then on ``recordOrder``, each
for 60 s, against one ``tenure serve`` process (uvicorn, one worker) on loopback.

    python -m bench.load                       # 200 clients, 60 s each, SQLite file
    python -m bench.load --seconds 15 --database postgresql+asyncpg://tenure:tenure@127.0.0.1/tenure_load

The database is emptied and migrated first (a SQLite file in a temporary folder unless
``--database`` is given: it must be a database you can wipe). Prints a table of requests,
errors, requests per second and p50/p99 latency, with the machine's details; the load comes
from bench/loadgen.py in its own process, so it does not share the server's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.servers import ROOT, Server, load

SECRET = "load-bench-secret-key-load-bench-secret-key"
ME = '{"query": "{ me { id name emails } }"}'
RECORD = ('{"query": "mutation($i: RecordOrderInput!) { recordOrder(input: $i) { created userErrors { message } } }", '
          '"variables": {"i": {"customerId": "%s", "channel": "load", "externalId": "__N__", "currency": "USD", '
          '"amount": 1299}}}')


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _reset(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import text

    from tenure.core.db import Database

    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await db.dispose()


async def _admin_key(url: str) -> str:
    from tenure.core import auth
    from tenure.core.db import Database

    db = Database(url)
    try:
        async with db.transaction() as session:
            return (await auth.create_api_key(session, name="load", role="admin")).key
    finally:
        await db.dispose()


def _seed(server: Server, key: str, members: int) -> tuple[list[str], list[str]]:
    """``members`` customers and a member token for each."""
    ids, tokens = [], []
    for n in range(members):
        created = server.post("/graphql", {"query": "mutation($i: CustomerInput!) { createCustomer(input: $i) "
                                                    "{ customer { id } } }",
                                           "variables": {"i": {"name": f"Member {n}", "emails": [f"m{n}@load.test"]}}},
                              key)
        cid = created["data"]["createCustomer"]["customer"]["id"]
        issued = server.post("/graphql", {"query": "mutation($c: ID!) { issueMemberToken(input: {customerId: $c}) "
                                                   "{ token } }", "variables": {"c": cid}}, key)
        ids.append(cid)
        tokens.append(issued["data"]["issueMemberToken"]["token"])
    return ids, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0, help="per case")
    parser.add_argument("--database", default="", help="a database URL to wipe and use (default: a SQLite file)")
    parser.add_argument("--plugins", default="all")
    parser.add_argument("--cases", default="me,record", help="me, record or both (comma-separated)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite+aiosqlite:///{Path(folder) / 'load.db'}"
        env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": args.plugins, "TENURE_SECRET_KEY": SECRET,
               "TENURE_ENVIRONMENT": "production", "TENURE_LOG_LEVEL": "WARNING",
               "TENURE_MEMBER_TOKEN_TTL_SECONDS": "86400"}
        asyncio.run(_reset(url))
        subprocess.run([sys.executable, "-c", "from tenure.cli import main; main()", "migrate"], cwd=ROOT,
                       env={**os.environ, **env}, check=True, capture_output=True)
        key = asyncio.run(_admin_key(url))
        with Server("tenure", "tenure.schema.server:create_app", _free_port(), env) as server:
            ids, tokens = _seed(server, key, min(args.clients, 200))
            cases: dict[str, list[dict[str, Any]]] = {
                "me (member token)": [{"body": ME, "headers": {"Authorization": f"Bearer {t}"}} for t in tokens],
                "recordOrder (API key)": [{"body": RECORD % cid, "headers": {"Authorization": f"Bearer {key}"}}
                                          for cid in ids],
            }
            wanted = {"me": "me (member token)", "record": "recordOrder (API key)"}
            cases = {wanted[c]: cases[wanted[c]] for c in args.cases.split(",")}
            results = {name: load(server, "/graphql", requests, concurrency=args.clients, duration=args.seconds,
                                  warmup=3.0, prefix=f"o{n}-")
                       for n, (name, requests) in enumerate(cases.items())}
            peak = server.memory_mb()

    print(f"Tenure load: {args.clients} concurrent clients, {args.seconds:g} s per case, "
          f"{url.split(':')[0]}, plugins {args.plugins}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; server peak memory {peak:.0f} MB")
    print(f"| {'case':<24} | {'requests':>8} | {'errors':>6} | {'req/s':>7} | {'p50 ms':>8} | {'p99 ms':>8} |")
    print(f"|{'-' * 26}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 10}|")
    for name, r in results.items():
        print(f"| {name:<24} | {r['requests']:>8} | {r['errors']:>6} | {r['rps']:>7} | {r['p50_ms']:>8} "
              f"| {r['p99_ms']:>8} |")
        for sample in r.get("error_samples", []):
            print(f"  error sample ({name}): {sample}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
