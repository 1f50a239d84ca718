"""Where a Tenure server spends its time under one benchmark's load.

    python -m bench.profile me|portal|record|redeem [--seconds 8]

Starts the Tenure server on the bench database (built by ``python -m bench`` first), drives
it with the load generator, samples it with py-spy (``pip install py-spy``) and prints the
share of samples per layer (GraphQL execution, validation, SQLAlchemy ORM, asyncpg, the
event loop ...) and the hottest functions, inclusive and self.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import asyncpg

from bench import dataset
from bench.__main__ import DEFAULT_URL, TENURE_PORT
from bench.servers import Server, load
from bench.suite import (
    RECORD_ORDER,
    REDEEM,
    SECRET,
    Features,
    admin_key,
    graphql_body,
    me_query,
    member_tokens,
    order_inputs,
    portal_query,
    run_async,
)

LAYERS = (
    ("graphql/execution", "graphql execution (resolvers, completion)"),
    ("graphql/validation", "graphql validation"),
    ("graphql/language", "graphql parsing"),
    ("strawberry/", "strawberry (schema, extensions, http)"),
    ("sqlalchemy/orm", "SQLAlchemy ORM"),
    ("sqlalchemy/", "SQLAlchemy core, engine, pool"),
    ("asyncpg/", "asyncpg"),
    ("starlette/", "starlette"),
    ("uvicorn/", "uvicorn"),
    ("(plugins/", "Tenure plugins"),
    ("(schema/", "Tenure schema layer"),
    ("(core/", "Tenure core"),
)


def layer(frame: str) -> str | None:
    return next((label for needle, label in LAYERS if needle in frame), None)


def summarise(raw: str, top: int = 25) -> str:
    """Collapsed stacks (``a;b;c count``) to shares per layer and the hottest functions."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        # The innermost frame that belongs to a known layer names where the time went.
        found = next((lay for f in reversed(frames) if (lay := layer(f))), "other (event loop, stdlib)")
        layers[found] += count
    out = [f"{total} samples", "", "by layer (innermost known frame):"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in layers.most_common()]
    out += ["", "hottest functions, inclusive:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "hottest functions, self:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("case", choices=("me", "portal", "record", "redeem"))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", default=None, help="also keep the raw collapsed stacks here")
    args = parser.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    url = os.environ.get("TENURE_BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.update({"TENURE_DATABASE_URL": url, "TENURE_SECRET_KEY": SECRET})
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings

    settings = Settings.from_env()
    plugins = load_plugins(settings)
    features = Features.of(settings, plugins)

    async def ids() -> tuple[list[int], int]:
        conn = await asyncpg.connect(dataset.pg_dsn(url))
        try:
            hot = [r[0] for r in await conn.fetch("SELECT customer_id FROM customer_identities WHERE kind = 'shop' "
                                                  "ORDER BY customer_id LIMIT 100")]
            return hot, int(await conn.fetchval("SELECT max(id) FROM customers"))
        finally:
            await conn.close()

    hot, top_id = run_async(ids())
    key = run_async(admin_key(url))
    auth = {"Authorization": f"Bearer {key}"}
    if args.case == "me":
        requests = [{"body": graphql_body(me_query(features)), "headers": {"Authorization": f"Bearer {t}"}}
                    for t in member_tokens(hot)]
    elif args.case == "portal":
        requests = [{"body": graphql_body(portal_query(features, 100)), "headers": auth}]
    elif args.case == "record":
        requests = [{"body": graphql_body(RECORD_ORDER, {"input": i}), "headers": auth}
                    for i in order_inputs(list(range(1, top_id + 1)), 200, 1)]
    else:
        requests = [{"body": json.dumps({"query": REDEEM, "variables": {"input": {
            "customerId": str(cid), "points": 1, "reason": "profile", "idempotencyKey": "__N__"}}}),
            "headers": auth} for cid in hot[:50]]
    env = {"TENURE_DATABASE_URL": url, "TENURE_SECRET_KEY": SECRET, "TENURE_LOG_LEVEL": "WARNING",
           "TENURE_MAX_COMPLEXITY": "100000"}
    with Server("tenure", "tenure.schema.server:create_app", TENURE_PORT, env) as server, \
            tempfile.TemporaryDirectory() as tmp:
        assert server.process is not None
        raw = Path(tmp) / "stacks.txt"
        result: dict[str, object] = {}
        driver = threading.Thread(target=lambda: result.update(load(
            server, "/graphql", requests, concurrency=8, duration=args.seconds + 2, warmup=1.0,
            prefix=f"p{os.getpid()}-")))
        driver.start()
        subprocess.run(["py-spy", "record", "--pid", str(server.process.pid), "--duration", str(int(args.seconds)),
                        "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
                       check=True, capture_output=True)
        driver.join()
        text = raw.read_text()
        if args.out:
            Path(args.out).write_text(text)
    print(f"{args.case}: {result.get('rps')} req/s during the profile (py-spy slows the server a little)")
    print(summarise(text))


if __name__ == "__main__":
    main()
