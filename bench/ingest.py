"""Import of orders: Tenure's ``tenure import customers`` then ``tenure import orders``, each
its own process, against a floor that loads the same files with COPY and computes the same
figures set-based (:mod:`bench.ingest_floor`), in the same run, on the same database server.

    python -m bench.ingest --orders 10000                      # 2,000 customers, PostgreSQL
    python -m bench.ingest --orders 1000000 --customers 200000
    python -m bench.ingest --orders 100000 --sqlite            # a SQLite file in a temporary folder
    python -m bench.ingest --orders 2000 --sqlite --keep /tmp/ingest   # and each side's file kept there

Both sides start from an empty, migrated database with the same configuration: an earn rule
of 1 point per 100 minor units, a first-order bonus of 50 points, and the demo's four tiers
(Member to Platinum, with points multipliers). Every plugin is on unless ``TENURE_PLUGINS``
says otherwise. The database (``--database``, default ``TENURE_BENCH_INGEST_URL`` or the
local ``tenure_bench_ingest``) is wiped. Prints a table (time, orders per second, peak RSS of
the import process, and what each side left in the database); JSON goes to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ingest_floor import (
    BASE_RULE,
    BONUS_RULE,
    FIRST_ORDER_BONUS,
    PER_AMOUNT,
    POINTS_PER,
    figures,
    load_customers,
    load_orders,
)
from bench.ingest_floor import write_files as write_files
from bench.servers import ROOT

DEFAULT_URL = "postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure_bench_ingest"
RESULTS = Path(__file__).resolve().parent / "results"
SECRET = "bench-secret-key-bench-secret-key-0123456789"


@dataclass
class Step:
    """One timed step: wall seconds, CPU seconds of the process, its peak RSS in MB."""

    seconds: float
    cpu: float = 0.0
    rss_mb: float = 0.0
    output: str = ""


@dataclass
class Result:
    database: str
    orders: int
    customers: int
    file_mb: float
    tenure: dict[str, Step] = field(default_factory=dict)
    floor: dict[str, Step] = field(default_factory=dict)
    tenure_figures: dict[str, int] = field(default_factory=dict)
    floor_figures: dict[str, int] = field(default_factory=dict)


def _env(url: str) -> dict[str, str]:
    env = {**os.environ, "TENURE_DATABASE_URL": url, "TENURE_SECRET_KEY": SECRET, "TENURE_LOG_LEVEL": "WARNING"}
    env.pop("TENURE_BROKER_URL", None)
    return env


def run_cli(url: str, *args: str) -> Step:
    """``tenure ARGS`` in its own process: wall time, its CPU time and peak RSS (from wait4)."""
    began = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen([sys.executable, "-c", "from tenure.cli import main; main()", *args], cwd=ROOT,
                                   env=_env(url), stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        took = time.perf_counter() - began
        out.seek(0)
        text = out.read()
    # 1: rows were rejected (said in the report line); anything else, or no report, is a failure.
    if process.returncode not in (0, 1) or (args[0] == "import" and "rows read" not in text):
        raise RuntimeError(f"tenure {' '.join(args)} exited with {process.returncode}:\n{text[-3000:]}")
    return Step(round(took, 2), round(usage.ru_utime + usage.ru_stime, 2), round(usage.ru_maxrss / 1024, 1),
                text.strip().splitlines()[-1] if text.strip() else "")


async def _wipe(url: str) -> None:
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).unlink(missing_ok=True)  # noqa: ASYNC240
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


async def _configure(url: str) -> None:
    """The earn rules and tiers both sides run with."""
    from tenure.core.context import ServiceContext
    from tenure.core.db import Database
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings
    from tenure.plugins.tiers.demo import TIERS

    settings = Settings.from_env()
    plugins = load_plugins(settings)
    db = Database(url)
    try:
        async with db.transaction() as session:
            ctx = ServiceContext(session, settings, plugins, actor="bench")
            if plugins.is_enabled("loyalty"):
                from tenure.plugins.loyalty.rules import EarnRuleData, create_rule

                await create_rule(ctx, EarnRuleData(name=BASE_RULE, kind="base", points=POINTS_PER,
                                                    per_amount=PER_AMOUNT, currency="USD"))
                await create_rule(ctx, EarnRuleData(name=BONUS_RULE, kind="bonus", points=FIRST_ORDER_BONUS,
                                                    trigger="first_order"))
            if plugins.is_enabled("tiers"):
                from tenure.plugins.tiers.service import TierData, create_tier

                for name, rank, spend, orders, points, discount, perks in TIERS:
                    await create_tier(ctx, TierData(name=name, rank=rank, min_spend=spend, min_orders=orders,
                                                    points_multiplier=points, discount_percent=discount,
                                                    perks=list(perks)))
    finally:
        await db.dispose()


def fresh(url: str) -> Step:
    """An empty database, migrated and configured; the migration's own step."""
    asyncio.run(_wipe(url))
    step = run_cli(url, "migrate")
    os.environ["TENURE_DATABASE_URL"] = url
    asyncio.run(_configure(url))
    return step


def _keep(url: str, keep: Path | None, side: str, say: Any) -> None:
    """A copy of the SQLite file as ``side`` left it, in ``keep``, to compare the rows."""
    if keep is None or not url.startswith("sqlite"):
        return
    keep.mkdir(parents=True, exist_ok=True)
    copy = keep / f"{side}.db"
    shutil.copyfile(url.split(":///", 1)[1], copy)
    say(f"  kept {copy}")


def measure(url: str, folder: Path, orders: int, customers: int, say: Any, keep: Path | None = None) -> Result:
    """Write the files, run both sides on ``url``; the result with both sides' figures
    (and, with ``keep``, each side's SQLite file copied there)."""
    now = datetime.now(UTC)
    say(f"writing {orders:,} orders for {customers:,} customers ...")
    people, path = write_files(folder, orders, customers, seed=11, now=now)
    result = Result(url.split(":", 1)[0], orders, customers, round(path.stat().st_size / 2**20, 1))
    say("Tenure: tenure import customers, then tenure import orders ...")
    fresh(url)
    result.tenure["customers"] = run_cli(url, "import", "customers", str(people))
    say(f"  customers: {result.tenure['customers'].seconds:.1f} s")
    result.tenure["orders"] = run_cli(url, "import", "orders", str(path))
    say(f"  orders: {result.tenure['orders'].seconds:.1f} s ({result.tenure['orders'].output})")
    result.tenure_figures = asyncio.run(figures(url))
    _keep(url, keep, "tenure", say)
    say("floor: the same files with COPY, figures set-based ...")
    fresh(url)
    result.floor["customers"] = _timed(lambda: load_customers(url, people, datetime.now(UTC)))
    ids = {f"c{n}": n for n in range(1, customers + 1)}
    result.floor["orders"] = _timed(lambda: load_orders(url, path, ids, datetime.now(UTC)))
    result.floor_figures = asyncio.run(figures(url))
    _keep(url, keep, "floor", say)
    return result


def _timed(make: Any) -> Step:
    cpu, began = time.process_time(), time.perf_counter()
    asyncio.run(make())
    return Step(round(time.perf_counter() - began, 2), round(time.process_time() - cpu, 2))


def rss_run(url: str, folder: Path, orders: int, customers: int, seconds: float, say: Any) -> dict[str, Any]:
    """The import process's memory on a large file, for a bounded time: the customers loaded by
    the floor, then ``tenure import orders`` for at most ``seconds``, its RSS read every second
    (then it is stopped; a run resumes where it stopped, so nothing is left half-done)."""
    now = datetime.now(UTC)
    say(f"writing {orders:,} orders for {customers:,} customers ...")
    people, path = write_files(folder, orders, customers, seed=11, now=now)
    fresh(url)
    asyncio.run(load_customers(url, people, now))
    say(f"tenure import orders for at most {seconds:g} s ...")
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "from tenure.cli import main; main()", "import", "orders",
                                str(path)], cwd=ROOT, env=_env(url), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float]] = []
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None and time.perf_counter() - began < seconds:
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        samples.append((round(time.perf_counter() - began, 1), int(fields["VmRSS"].split()[0]) / 1024))
        time.sleep(1)
    process.terminate()
    process.wait()
    done = asyncio.run(figures(url))["orders"]
    return {"file_mb": round(path.stat().st_size / 2**20, 1), "seconds": round(time.perf_counter() - began, 1),
            "orders_done": done, "peak_rss_mb": round(max(r for _, r in samples), 1),
            "rss_mb_every_30s": [(t, round(r, 1)) for t, r in samples[::30]]}


def rows(result: Result) -> list[tuple[str, str, str, str, str]]:
    """Table rows: case, Tenure, floor, ratio (Tenure's time over the floor's), target."""
    n = result.orders
    t, f = result.tenure, result.floor
    size = f"{n:,} orders, {result.customers:,} customers, {result.database}"
    goal = "< 60 s" if result.database.startswith("sqlite") else "<= 3x the floor, < 5 min"
    both = t["customers"].seconds + t["orders"].seconds, f["customers"].seconds + f["orders"].seconds
    out = [
        (f"import orders ({size})", f"{t['orders'].seconds:g} s ({n / t['orders'].seconds:,.0f}/s)",
         f"{f['orders'].seconds:g} s ({n / f['orders'].seconds:,.0f}/s)",
         f"{t['orders'].seconds / f['orders'].seconds:.2f}", goal),
        (f"import customers ({result.customers:,})", f"{t['customers'].seconds:g} s",
         f"{f['customers'].seconds:g} s", f"{t['customers'].seconds / f['customers'].seconds:.2f}", "-"),
        ("import customers + orders", f"{both[0]:g} s", f"{both[1]:g} s", f"{both[0] / both[1]:.2f}", "-"),
        (f"peak RSS of the import process ({result.file_mb:g} MB file)", f"{t['orders'].rss_mb:g} MB", "-", "-",
         "< 300 MB for a 1 GB file"),
    ]
    for name, value in result.tenure_figures.items():
        other = result.floor_figures.get(name)
        out.append((f"  {name}", f"{value:,}", f"{other:,}" if other is not None else "-",
                    "same" if value == other else "differs", ""))
    return out


def table(body: list[tuple[str, str, str, str, str]]) -> str:
    head = ("case", "Tenure", "floor", "ratio", "target")
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(5)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in (head, tuple("-" * w for w in widths), *body)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=None, help="default: a fifth of the orders")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of PostgreSQL")
    parser.add_argument("--rss-for", type=float, default=None, metavar="SECONDS",
                        help="only the memory row: customers by COPY, then `tenure import orders` for SECONDS")
    parser.add_argument("--keep", type=Path, default=None, metavar="FOLDER",
                        help="with --sqlite: copy each side's database file there (tenure.db, floor.db)")
    parser.add_argument("--database", default=os.environ.get("TENURE_BENCH_INGEST_URL", DEFAULT_URL))
    args = parser.parse_args(argv)
    if args.keep and not args.sqlite:
        parser.error("--keep copies SQLite files: give --sqlite too")
    customers = args.customers or max(1, args.orders // 5)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tenure-ingest-") as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'ingest.db'}" if args.sqlite else args.database
        if args.rss_for:
            memory = rss_run(url, Path(folder), args.orders, customers, args.rss_for, say)
            print(json.dumps(memory))
            RESULTS.mkdir(exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            (RESULTS / f"{stamp}-ingest-rss-{args.orders}.json").write_text(json.dumps(memory, indent=2))
            return
        result = measure(url, Path(folder), args.orders, customers, say, args.keep)
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings

    plugins = load_plugins(Settings.from_env()).names()
    text = table(rows(result))
    print(text)
    print(f"\nplugins: {', '.join(plugins)}; ratio: Tenure's time over the floor's (lower is better); "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-ingest-{result.database.split('+')[0]}-{args.orders}.json"
    out.write_text(json.dumps({"at": stamp, "plugins": plugins, "result": asdict(result), "table": text}, indent=2))
    say(f"written to {out}")


if __name__ == "__main__":
    main()
