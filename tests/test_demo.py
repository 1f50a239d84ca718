"""`tenure demo`: a realistic data set a user can browse at once, loaded once however often
the command runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tenure.cli import main
from tenure.demo import load_demo, plan_customer
from tenure.testing import TenureHarness

PORTAL = """
query($first: Int!) {
  customers(first: $first) {
    totalCount
    nodes {
      name emails identities { kind value } orderCount lastOrderAt
      totalSpent { amount currency }
      owner { name }
      orders(first: 10) { totalCount nodes { externalId placedAt lines { sku } } }
      timeline(first: 20) { edges { node { at kind } } }
    }
  }
}
"""


async def test_demo_loads_customers_with_history_a_portal_can_show(tenure: TenureHarness) -> None:
    summary = await load_demo(tenure.db, tenure.settings, tenure.plugins, customers=40, batch=15)
    assert summary.customers_created == 40
    assert summary.orders > 40 and summary.interactions > 0

    data = await tenure.ok(PORTAL, {"first": 40})
    customers = data["customers"]["nodes"]
    assert data["customers"]["totalCount"] == 40
    assert sum(c["orderCount"] for c in customers) + summary.cancellations == summary.orders
    assert all(c["emails"] and c["identities"][0]["kind"] == "shop" for c in customers)
    assert any(c["owner"] for c in customers) and any(c["owner"] is None for c in customers)

    buyer = max(customers, key=lambda c: c["orderCount"])
    assert buyer["orderCount"] >= 2
    placed = [datetime.fromisoformat(o["placedAt"]) for o in buyer["orders"]["nodes"]]
    # Orders are spread over the past two years, not all recorded at the moment of loading.
    assert (max(placed) - min(placed)).days > 20
    assert all(o["lines"] for o in buyer["orders"]["nodes"])
    # The timeline mixes orders and interactions, newest first.
    entries = [e["node"] for e in buyer["timeline"]["edges"]]
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True)
    assert {"order"} <= {e["kind"] for e in entries}
    assert sum(1 for c in customers for e in c["timeline"]["edges"] if e["node"]["kind"] == "interaction") > 0

    tasks = await tenure.ok("{ tasks(first: 100) { totalCount nodes { source title } } }")
    assert tasks["tasks"]["totalCount"] == summary.tasks
    assert all(t["source"] == "demo" for t in tasks["tasks"]["nodes"])


async def test_running_the_demo_twice_adds_nothing(tenure: TenureHarness) -> None:
    first = await load_demo(tenure.db, tenure.settings, tenure.plugins, customers=12, batch=5)
    again = await load_demo(tenure.db, tenure.settings, tenure.plugins, customers=15, batch=5)
    assert again.customers_skipped == 12 and again.customers_created == 3
    assert await tenure.scalar("SELECT count(*) FROM customers") == 15
    orders = await tenure.scalar("SELECT count(*) FROM orders")
    assert orders == first.orders + again.orders
    assert again.staff_users == first.staff_users == await tenure.scalar("SELECT count(*) FROM staff_users")


DASHBOARD = """
query($to: Date!, $year: Date!) {
  cohorts(from: $year, to: $to) { month size cells { offset share } }
  npsReport(from: $year, groupBy: MONTH) { responses promoters passives detractors nps trend { start responses } }
  churnWarnings(first: 100, filter: {status: OPEN}) { totalCount edges { node { level reasons taskId } } }
  pointsLiability { issued expired reversed outstanding pending }
  tierDistribution { tier { name rank } customers }
  lapsed: subscriptions(first: 100, filter: {status: LAPSED}) { totalCount }
  active: subscriptions(first: 100, filter: {status: ACTIVE}) { totalCount }
  npsTasks: tasks(first: 100, filter: {source: "nps"}) { totalCount nodes { title reason } }
}
"""
RETENTION = ["loyalty", "tiers", "nps", "renewals", "churn"]


async def test_with_the_retention_plugins_every_dashboard_chart_has_figures(
        make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=RETENTION) as tenure:
        summary = await load_demo(tenure.db, tenure.settings, tenure.plugins, customers=80, batch=40)
        pending_rescores = await tenure.scalar(
            "SELECT count(*) FROM outbox WHERE job = 'churn.rescore_marked' AND status = 'pending'")
        today = datetime.now(UTC).date()
        data = await tenure.ok(DASHBOARD, {"to": str(today),
                                           "year": str(today - timedelta(days=365))})

    tiers = {row["tier"]["name"] if row["tier"] else None: row["customers"] for row in data["tierDistribution"]}
    assert sum(tiers.values()) == 80
    assert tiers["Member"] > 0 and tiers["Silver"] > 0, tiers  # members moved up as their orders came in

    nps = data["npsReport"]
    assert nps["responses"] == summary.counts["nps"]["answers"] > 0
    assert nps["promoters"] > 0 and nps["detractors"] > 0 and nps["nps"] is not None
    assert sum(1 for month in nps["trend"] if month["responses"]) >= 3  # answers spread over the months
    # Each detractor's answer opened a follow-up task (the plugin's close-the-loop rule).
    assert data["npsTasks"]["totalCount"] == nps["detractors"]
    assert all(t["title"].startswith("Follow up:") for t in data["npsTasks"]["nodes"])

    warnings = data["churnWarnings"]
    assert warnings["totalCount"] == summary.counts["churn"]["open_warnings"] > 0
    # The final full rescore stood for the per-event rescores the load had queued.
    assert summary.counts["churn"]["rescores_covered"] > 0 and pending_rescores == 0
    assert all(w["node"]["reasons"] and w["node"]["taskId"] for w in warnings["edges"])

    points = data["pointsLiability"]
    assert points["issued"] > 0 and points["outstanding"] > 0 and points["reversed"] > 0

    assert data["active"]["totalCount"] > 0 and data["lapsed"]["totalCount"] == summary.counts["renewals"]["lapsed"] > 0
    assert summary.counts["renewals"]["subscriptions"] >= data["active"]["totalCount"]
    assert any(row["size"] > 0 and len(row["cells"]) > 1 for row in data["cohorts"])


def test_the_same_seed_gives_the_same_people() -> None:
    now = datetime.fromisoformat("2026-06-01T09:00:00+00:00")
    a, b = plan_customer(7, 5, now), plan_customer(7, 5, now)
    assert a.data.name == b.data.name and [s.at for s in a.steps] == [s.at for s in b.steps]
    assert plan_customer(8, 5, now).data.emails != a.data.emails


def test_demo_command_migrates_loads_and_summarises(tmp_path: object, monkeypatch: object) -> None:
    monkeypatch.setenv("TENURE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/demo.db")  # type: ignore[attr-defined]
    monkeypatch.setenv("TENURE_PLUGINS", "")  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)  # type: ignore[attr-defined]
    result = CliRunner().invoke(main, ["demo", "--customers", "8"])
    assert result.exit_code == 0, result.output
    assert "8/8 customers" in result.output
    assert "customers: 8 created, 0 already there" in result.output
    again = CliRunner().invoke(main, ["demo", "--customers", "8"])
    assert "customers: 0 created, 8 already there" in again.output


def test_demo_then_check_passes_and_tells_stuck_work_from_work_waiting(tmp_path: Path) -> None:
    """`tenure demo` then `tenure check`, as an operator runs them: the demo's queued work
    (messages, webhooks) waits its turn for a server; it is not stuck. Work that a worker
    left claimed past its lease, or passed over while running other work, is."""
    env = {**os.environ, "TENURE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/demo.db"}
    env = {k: v for k, v in env.items() if k not in ("TENURE_PLUGINS", "TENURE_NOW")}
    tenure = [sys.executable, "-m", "tenure.cli"]
    demo = subprocess.run([*tenure, "demo", "--customers", "60"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    with sqlite3.connect(tmp_path / "demo.db") as db:
        waiting = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    assert waiting > 0  # the demo leaves work for the first server to do
    check = subprocess.run([*tenure, "check"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all checks passed" in check.stdout
    assert f"outbox: {waiting} entries due and waiting their turn, 0 stuck" in check.stdout

    # Two hours later a worker finished a job, yet one entry due all along was never taken,
    # and another was left claimed by a worker that died.
    with sqlite3.connect(tmp_path / "demo.db") as db:
        ids = [row[0] for row in db.execute("SELECT id FROM outbox WHERE status = 'pending' ORDER BY id LIMIT 3")]
        db.execute("UPDATE outbox SET available_at = datetime('now', '-3 hours') WHERE id = ?", (ids[0],))
        db.execute("UPDATE outbox SET status = 'done', completed_at = datetime('now') WHERE id = ?", (ids[1],))
        db.execute("UPDATE outbox SET status = 'running', claim_token = 'gone', "
                   "locked_until = datetime('now', '-10 minutes') WHERE id = ?", (ids[2],))
    check = subprocess.run([*tenure, "check"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert check.returncode == 1
    assert ("2 outbox entries are stuck (1 claimed past their lease, their worker gone; 1 due for over 1 h "
            "while workers ran other work)") in check.stdout
    assert f"{waiting - 3} more are waiting their turn" in check.stdout
