"""``python -m bench``: Tenure against its floor, case by case, in one run; one table.

    python -m bench --quick          # about two minutes: 10k customers, short runs
    python -m bench                  # 10k and 100k customers, longer runs
    python -m bench --quick --scale postgresql+asyncpg://.../tenure_bench_1m
                                     # and the churn rescore and retention rows on a data set
                                     # built by ``python -m bench.churn_scale`` (a few minutes more)

PostgreSQL at TENURE_BENCH_DATABASE_URL (default the local ``tenure_bench`` database). The
servers run on loopback in their own processes (uvicorn, one worker each) and the load comes
from a separate load-generator process. Results go to bench/results/<time>.json as well.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import dataset
from bench.servers import Server, load, startup_seconds
from bench.suite import (
    RECORD_ORDER,
    REDEEM,
    SECRET,
    Features,
    Row,
    admin_key,
    graphql_body,
    me_query,
    member_tokens,
    order_inputs,
    portal_query,
    run_async,
    same_json,
    statement_counts,
)

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench"
RESULTS = Path(__file__).resolve().parent / "results"
TENURE_PORT, FLOOR_PORT = 18431, 18432


def machine(url: str) -> dict[str, Any]:
    import asyncpg

    async def pg_version() -> str:
        conn = await asyncpg.connect(dataset.pg_dsn(url))
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    libs = {name: version(name) for name in ("strawberry-graphql", "graphql-core", "starlette", "sqlalchemy",
                                             "asyncpg", "uvicorn", "uvloop", "httptools")}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "postgresql": run_async(pg_version()), "libraries": libs, "platform": platform.platform()}


def throughput_case(name: str, target: str, tenure: dict[str, Any], floor: dict[str, Any]) -> Row:
    """Requests per second of each, and the ratio of the floor's server CPU per request to
    Tenure's: on a shared machine the CPU a request costs is steadier than the rate."""
    note = ""
    if tenure["errors"] or floor["errors"]:
        note = f"errors: tenure {tenure['errors']}, floor {floor['errors']}"
    tenure_cpu, floor_cpu = tenure["cpu_ms_per_request"], floor["cpu_ms_per_request"]
    ratio = round(floor_cpu / tenure_cpu, 3) if tenure_cpu else None
    return Row(name, tenure["rps"], floor["rps"], "req/s", target, ratio=ratio, note=note,
               detail={"tenure": tenure, "floor": floor, "rps_ratio": round(tenure["rps"] / floor["rps"], 3)
                       if floor["rps"] else None})


def run_size(args: argparse.Namespace, url: str, customers: int, settings: Any, plugins: Any,
             features: Features, rows: list[Row], say: Any) -> dict[str, Any]:
    data = run_async(dataset.ensure(url, settings, plugins, customers, args.hot, say, args.rebuild))
    say(f"data set: {data.customers} + {len(data.hot_ids)} customers, {data.orders} orders"
        + (" (reused)" if data.built_seconds is None else ""))
    key = run_async(admin_key(url))
    loyalty = plugins.is_enabled("loyalty")
    env = {"TENURE_DATABASE_URL": url, "TENURE_SECRET_KEY": SECRET, "TENURE_LOG_LEVEL": "WARNING",
           "TENURE_ENVIRONMENT": "development", "TENURE_MAX_COMPLEXITY": "100000",
           "BENCH_FLOOR_LOYALTY": "1" if loyalty else "0"}
    env.pop("TENURE_BROKER_URL", None)
    common = {"concurrency": args.concurrency, "duration": args.duration, "warmup": args.warmup}
    auth = {"Authorization": f"Bearer {key}"}
    tokens = member_tokens(data.hot_ids[:100])
    members: list[dict[str, Any]] = [
        {"body": graphql_body(me_query(features)), "headers": {"Authorization": f"Bearer {t}"}} for t in tokens]
    floor_members = [{"body": "{}", "headers": m["headers"]} for m in members]
    portal: list[dict[str, Any]] = [{"body": graphql_body(portal_query(features, 100)), "headers": auth}]
    bulk_ids = list(range(1, customers + 1))
    orders = [{"body": graphql_body(RECORD_ORDER, {"input": i}), "headers": auth}
              for i in order_inputs(bulk_ids + data.hot_ids, 200, customers)]
    tag = f"{customers}-{int(time.time())}-"
    size = f"{customers // 1000}k"
    out: dict[str, Any] = {"customers": customers, "orders": data.orders, "built_seconds": data.built_seconds}
    with Server("tenure", "tenure.schema.server:create_app", TENURE_PORT, env) as tenure, \
            Server("floor", "bench.floor:create_app", FLOOR_PORT, env) as floor:
        checks = {
            "me": same_json(tenure.post("/graphql", json.loads(members[0]["body"]), tokens[0]).get("data"),
                            floor.post("/me", {}, tokens[0]).get("data")),
            "portal": same_json(tenure.post("/graphql", json.loads(portal[0]["body"]), key).get("data"),
                                floor.post("/customers?first=100", {}, key).get("data")),
        }
        out["same_json"] = {case: {"same": same, "tenure_only": extra} for case, (same, extra) in checks.items()}
        for case, (same, extra) in checks.items():
            say(f"{case}: the floor's answer {'equals' if same else 'DIFFERS from'} Tenure's"
                + (f" (Tenure also returns {', '.join(extra)})" if extra else ""))
        say("member me ...")
        t = load(tenure, "/graphql", members, prefix=tag, **common)
        f = load(floor, "/me", floor_members, prefix=tag, **common)
        rows.append(throughput_case(f"member me query ({size})", ">= 0.5", t, f))
        say("portal customers(first: 100) ...")
        t = load(tenure, "/graphql", portal, prefix=tag, **common)
        f = load(floor, "/customers?first=100", [{"body": "{}", "headers": auth}], prefix=tag, **common)
        rows.append(throughput_case(f"portal customers(first: 100) ({size})", ">= 0.4", t, f))
        say("recordOrder, 8 clients ...")
        writers = {**common, "concurrency": 8}
        t = load(tenure, "/graphql", orders, prefix="t" + tag, **writers)
        f = load(floor, "/record-order", orders, prefix="f" + tag, **writers)
        rows.append(throughput_case(f"recordOrder, 8 clients ({size})", ">= 0.25", t, f))
        if "redeemPoints" in features.mutations and "adjustPoints" in features.mutations:
            say("redeemPoints, 8 clients ...")
            spenders = data.hot_ids[:50]
            adjust = ("mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { userErrors { message } } }")
            for cid in spenders:
                tenure.post("/graphql", {"query": adjust, "variables": {"input": {
                    "customerId": str(cid), "points": 1_000_000, "reason": "bench",
                    "idempotencyKey": f"bench-topup-{tag}{cid}"}}}, key)
            redeem = [{"body": json.dumps({"query": REDEEM, "variables": {"input": {
                "customerId": str(cid), "points": 1, "reason": "bench", "idempotencyKey": "__N__"}}}),
                "headers": auth} for cid in spenders]
            t = load(tenure, "/graphql", redeem, prefix="t" + tag, **writers)
            f = load(floor, "/redeem-points", redeem, prefix="f" + tag, **writers)
            rows.append(throughput_case(f"redeemPoints, 8 clients ({size})", ">= 0.4", t, f))
        rows.append(Row(f"peak RSS of the Tenure server under load ({size})", round(tenure.memory_mb(), 1),
                        round(floor.memory_mb(), 1), "MB", "< 300 MB", note="floor column: the floor server"))
    return out


def scale_rows(url: str, say: Any) -> list[Row]:
    """The churn rescore and the retention figures, each against its hand-written SQL floor,
    on a data set built by ``python -m bench.churn_scale`` (1M customers for the targets)."""
    from bench import churn_scale, retention_scale
    from bench.datagen import read_planted

    now = read_planted(url).now or datetime.now(UTC)
    say("churn rescore at scale (first-ever, follow-up wave, a day's event rescores, the nightly) ...")
    churn = run_async(churn_scale.measure(url, now))
    customers = churn["counts"][0]
    size = f"{customers // 1000:,}k" if customers < 1_000_000 else f"{customers / 1_000_000:g}M"
    rows = [Row(f"churn rescore, first-ever ({size} customers)", round(churn["rescore_s"], 2),
                round(churn["floor_s"], 2), "s", "<= 1.5x the floor's time",
                ratio=round(churn["rescore_s"] / churn["floor_s"], 2),
                note=f"floor at server defaults {churn['floor_default_s']:.2f} s", detail={"churn": churn}),
            Row(f"churn rescore, nightly: figures moved on after a day of events ({size} customers)",
                round(churn["nightly_s"], 2),
                round(churn["floor_s"], 2), "s", "<= 1.5x the floor's time",
                ratio=round(churn["nightly_s"] / churn["floor_s"], 2),
                note=f"{churn['nightly_recounted']:,} counted afresh, {churn['nightly_rewritten']:,} of "
                     f"{customers:,} score rows rewritten; {churn['recount_differs']:,} differ from a recount")]
    say("retention and cohorts at scale ...")
    retention = run_async(retention_scale.measure(url, now, 3, 1))
    for case in retention["cases"]:
        if case.get("floor") is None:
            continue
        rows.append(Row(f"{case['case']} ({size} customers)", round(case["tenure"], 2), round(case["floor"], 2), "s",
                        "<= 1.5x the floor's time, < 2 s", ratio=round(case["tenure"] / case["floor"], 3),
                        note="same figures" if case.get("agree") else "FIGURES DIFFER", detail={"case": case}))
    return rows


def ingest_rows(orders: int, say: Any) -> tuple[list[Row], dict[str, Any]]:
    """``tenure import customers`` and ``tenure import orders`` against the COPY floor
    (bench/ingest.py), on a database of their own."""
    import tempfile

    from bench import ingest

    url = os.environ.get("TENURE_BENCH_INGEST_URL", ingest.DEFAULT_URL)
    with tempfile.TemporaryDirectory(prefix="tenure-ingest-") as folder:
        result = ingest.measure(url, Path(folder), orders, max(1, orders // 5), say)
    os.environ["TENURE_DATABASE_URL"] = os.environ.get("TENURE_BENCH_DATABASE_URL", DEFAULT_URL)
    t, f = result.tenure, result.floor
    same = [k for k, v in result.tenure_figures.items() if result.floor_figures.get(k) == v]
    differ = [k for k in result.tenure_figures if k not in same]
    size = f"{orders:,} orders, {result.customers:,} customers"
    rows = [Row(f"import orders ({size})", t["orders"].seconds, f["orders"].seconds, "s",
                "<= 3x the floor (1M: < 5 min)", ratio=round(t["orders"].seconds / f["orders"].seconds, 2),
                note=f"{orders / t['orders'].seconds:,.0f} vs {orders / f['orders'].seconds:,.0f} orders/s; "
                     f"same {len(same)} figures; differ: {', '.join(differ) or 'none'}"),
            Row(f"import customers ({result.customers:,})", t["customers"].seconds, f["customers"].seconds, "s", "-",
                ratio=round(t["customers"].seconds / f["customers"].seconds, 2)),
            Row(f"peak RSS of the import process ({result.file_mb:g} MB file)", t["orders"].rss_mb, None, "MB",
                "< 300 MB for a 1 GB file")]
    return rows, {"ingest": asdict(result)}


def print_table(rows: list[Row], info: dict[str, Any]) -> str:
    head = ("case", "Tenure", "floor", "ratio", "target")
    def cell(value: float | None, row: Row, side: str) -> str:
        if value is None:
            return "-"
        cpu = row.detail.get(side, {}).get("cpu_ms_per_request")
        return f"{value:g} {row.unit}" + (f", {cpu:g} ms CPU" if cpu is not None else "")

    body = [(r.case, cell(r.tenure, r, "tenure"), cell(r.floor, r, "floor"),
             f"{r.ratio:g}" if r.ratio is not None else "-", r.target + (f" ({r.note})" if r.note else ""))
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)) + " |"
             for line in (head, tuple("-" * w for w in widths), *body)]
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    lines.append("")
    lines.append("ratio: the floor's CPU per request over Tenure's for the request cases (higher is better); "
                 "Tenure's time over the floor's for the timed cases (lower is better).")
    lines.append(f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, PostgreSQL {info['postgresql']}; "
                 f"{libs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k customers and short runs (about two minutes)")
    parser.add_argument("--sizes", default=None, help="customer counts, comma-separated (default 10000,100000)")
    parser.add_argument("--hot", type=int, default=150, help="customers made through the services")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per side of a case")
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--rebuild", action="store_true", help="build the data set even if one is there")
    parser.add_argument("--concurrency", type=int, default=8, help="connections for the read cases")
    parser.add_argument("--ingest-orders", type=int, default=None,
                        help="orders of the import rows (default 5,000 with --quick, else 20,000; 0: none)")
    parser.add_argument("--scale", default=os.environ.get("TENURE_BENCH_SCALE_URL"),
                        help="a data set built by `python -m bench.churn_scale` (its database URL): adds the churn "
                             "rescore and retention rows, timed on it against their SQL floors")
    args = parser.parse_args(argv)
    args.duration = args.duration or (6.0 if args.quick else 20.0)
    args.warmup = args.warmup if args.warmup is not None else (1.5 if args.quick else 3.0)
    sizes = [int(s) for s in (args.sizes or ("10000" if args.quick else "10000,100000")).split(",")]
    url = os.environ.get("TENURE_BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.update({"TENURE_DATABASE_URL": url, "TENURE_SECRET_KEY": SECRET})

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings

    settings = Settings.from_env()
    plugins = load_plugins(settings)
    say(f"plugins: {', '.join(plugins.names())}; database {url.rsplit('/', 1)[-1]}")
    features = Features.of(settings, plugins)
    info = machine(url)
    rows: list[Row] = []
    sizes_out = [run_size(args, url, n, settings, plugins, features, rows, say) for n in sizes]
    logging.disable(logging.INFO)  # the in-process app's request log would drown the table
    counts = run_async(statement_counts(url, features, [n for n in plugins.names() if n != "core"], (1, 10, 100)))
    rows.append(Row("SQL statements, customers(first: N) N=1/10/100", None, None, "", "same for every N",
                    note="/".join(str(counts[n]) for n in (1, 10, 100))))
    plugin_env = {"TENURE_DATABASE_URL": url}
    start = startup_seconds("from tenure.core.settings import Settings; from tenure.core.plugins import load_plugins; "
                            "from tenure.schema.server import create_app; s = Settings.from_env(); "
                            "create_app(s, load_plugins(s))", plugin_env)
    floor = startup_seconds("import starlette, strawberry, sqlalchemy", plugin_env)
    rows.append(Row("start-up with all plugins (import, schema assembly)", round(start, 2), round(floor, 2), "s",
                    "< floor + 1.5 s", ratio=round(start / floor, 2), note=f"+{start - floor:.2f} s"))
    ingest_orders = args.ingest_orders if args.ingest_orders is not None else (5_000 if args.quick else 20_000)
    ingest_detail: dict[str, Any] = {}
    if ingest_orders:
        say(f"import of {ingest_orders:,} orders, Tenure and the floor ...")
        ingest_out, ingest_detail = ingest_rows(ingest_orders, say)
        rows += ingest_out
    if args.scale:
        rows += scale_rows(args.scale, say)
    else:
        say("churn rescore and retention at scale: add --scale <URL of a `python -m bench.churn_scale` data set>")
    table = print_table(rows, info)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps({"at": stamp, "quick": args.quick, "machine": info, "plugins": plugins.names(),
                                "statement_counts": counts, "sizes": sizes_out, **ingest_detail,
                                "rows": [asdict(r) for r in rows], "table": table}, indent=2, default=str))
    say(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
