"""Balances under concurrent requests, and the ledger invariant under random histories."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenure.core import clock
from tenure.testing import TenureHarness
from tests.plugins.loyalty_support import (
    NOW,
    REDEEM,
    adjust,
    cancel,
    check_invariants,
    ledger,
    merge,
    new_customer,
    points,
    record_order,
    refund,
    run_job,
)


async def test_fifty_concurrent_redemptions_never_overdraw(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        await adjust(tenure, cid, 100)
        key = await tenure.key("integration")
        answers = await asyncio.gather(*[
            tenure.gql(REDEEM, {"i": {"customerId": str(cid), "points": 10, "reason": f"coffee {n}"}}, key=key)
            for n in range(50)])
        assert all("errors" not in a for a in answers), [a for a in answers if "errors" in a][:1]
        results = [a["data"]["redeemPoints"] for a in answers]
        succeeded = [r for r in results if not r["userErrors"]]
        refused = [r for r in results if r["userErrors"]]
        assert len(succeeded) == 10 and len(refused) == 40
        assert {r["userErrors"][0]["code"] for r in refused} == {"INSUFFICIENT_POINTS"}
        assert sorted(r["balance"] for r in succeeded) == list(range(0, 100, 10))
        assert (await points(tenure, cid))["balance"] == 0
        assert len([e for e in await ledger(tenure, cid) if e["kind"] == "REDEEM"]) == 10
        assert await check_invariants(tenure) == []


async def test_one_idempotency_key_sent_twenty_times_at_once_spends_once(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["loyalty"], env=NOW) as tenure:
        cid = await new_customer(tenure)
        await adjust(tenure, cid, 100)
        key = await tenure.key("integration")
        request = {"i": {"customerId": str(cid), "points": 10, "reason": "coffee", "idempotencyKey": "till-4:991"}}
        answers = await asyncio.gather(*[tenure.gql(REDEEM, request, key=key) for _ in range(20)])
        results = [a["data"]["redeemPoints"] for a in answers]
        assert all(r["userErrors"] == [] for r in results)
        assert len({r["entry"]["id"] for r in results}) == 1
        assert (await points(tenure, cid))["balance"] == 90
        assert len([e for e in await ledger(tenure, cid) if e["kind"] == "REDEEM"]) == 1


steps = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(0, 1), st.integers(1, 30_000)),
        st.tuples(st.just("redeem"), st.integers(0, 1), st.integers(1, 400)),
        st.tuples(st.just("refund"), st.integers(0, 9), st.integers(1, 100)),
        st.tuples(st.just("cancel"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("expire"), st.just(0), st.integers(1, 400)),
        st.tuples(st.just("merge"), st.just(0), st.just(0)),
    ),
    min_size=1, max_size=14,
)
counter = itertools.count()


async def _replay(url: str, history: list[tuple[str, int, int]]) -> None:
    env = {**NOW, "TENURE_LOYALTY_EXPIRY_DAYS": "200"}
    with clock.use_clock(clock.FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))) as frozen:
        async with TenureHarness.start(url, plugins=["loyalty"], env=env) as tenure:
            people = [await new_customer(tenure, "A"), await new_customer(tenure, "B")]
            orders: list[tuple[int, int]] = []
            for n, (action, who, amount) in enumerate(history):
                if action == "order":
                    cid = people[who % len(people)]
                    orders.append((await record_order(tenure, cid, f"o{n}", amount), amount))
                elif action == "redeem":
                    cid = people[who % len(people)]
                    before = (await points(tenure, cid))["balance"]
                    answer = (await tenure.ok(REDEEM, {"i": {"customerId": str(cid), "points": amount,
                                                             "reason": "gift"}}))["redeemPoints"]
                    assert (answer["userErrors"] == []) == (amount <= before)
                elif action in ("refund", "cancel") and orders:
                    order_id, total = orders[who % len(orders)]
                    status = await tenure.scalar("SELECT status FROM orders WHERE id = :i", i=order_id)
                    if status in ("paid", "partially_refunded"):
                        if action == "cancel" and status == "paid":
                            await cancel(tenure, order_id)
                        else:
                            left = total - await tenure.scalar("SELECT refunded_amount FROM orders WHERE id = :i",
                                                               i=order_id)
                            await refund(tenure, order_id, max(1, left * amount // 100))
                elif action == "expire":
                    frozen.advance(days=amount)
                    await run_job(tenure, "loyalty.expire_points")
                elif action == "merge" and len(people) == 2:
                    await merge(tenure, people[0], people[1])
                    people = people[:1]
                assert await check_invariants(tenure) == []
                for cid in people:
                    assert (await points(tenure, cid))["balance"] >= 0
            report = (await tenure.ok("{ pointsLiability { issued redeemed expired reversed adjustedDown "
                                      "outstanding pending } }"))["pointsLiability"]
            assert (report["issued"] - report["redeemed"] - report["expired"] - report["reversed"]
                    - report["adjustedDown"]) == report["outstanding"] + report["pending"]
            for order_id, _ in orders:
                status = await tenure.scalar("SELECT status FROM orders WHERE id = :i", i=order_id)
                if status in ("refunded", "cancelled"):
                    # Every point the order earned was taken back, recorded as owed, or had expired.
                    kept = await tenure.scalar("SELECT coalesce(sum(points), 0) - coalesce(sum(shortfall), 0) "
                                               "FROM loyalty_entries WHERE order_id = :i", i=order_id)
                    expired = await tenure.scalar(
                        "SELECT coalesce(sum(d.points), 0) FROM loyalty_draws d JOIN loyalty_entries e "
                        "ON e.id = d.entry_id JOIN loyalty_entries lot ON lot.id = d.lot_id "
                        "WHERE e.kind = 'expire' AND lot.order_id = :i", i=order_id)
                    assert kept == expired


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=steps)
def test_ledger_invariant_holds_over_random_histories(tmp_path: Path, history: list[tuple[str, int, int]]) -> None:
    """On SQLite only: a fresh database per example keeps the run short."""
    url = f"sqlite+aiosqlite:///{tmp_path / f'h{next(counter)}.db'}"
    asyncio.run(_replay(url, history))
