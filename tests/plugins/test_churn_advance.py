"""The nightly rescore moves the stored figures on (see plugins.churn.scoring): after every
run, each customer's figures, scores, health, stage and open warning must be what counting
everything afresh at the same moment gives, whatever happened in between: orders, refunds,
cancellations and interactions whose rescore job ran, or did not run yet, new customers,
and windows that days or months of time pushed orders and interactions out of.

The population is churn_support.py's. Each step of the walk moves the clock, makes some
events, runs the nightly rescore, then counts afresh in a transaction that is rolled back
(so the next step moves on from the nightly's figures, not the recount's) and compares."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from tenure.core.context import ServiceContext
from tenure.core.models import Order
from tenure.core.services import customers, interactions, orders
from tenure.core.services.customers import CustomerData
from tenure.core.services.orders import OrderData
from tenure.plugins.churn import scoring
from tenure.plugins.churn.rules import effective_rules
from tenure.plugins.churn.settings import churn_settings
from tenure.plugins.churn.statements import SCORE_COLUMNS
from tenure.testing import TenureHarness, freeze_time
from tests.plugins.churn_support import NOW, TUNED, load_population

COLUMNS = ", ".join(f"churn_scores.{c}" for c in ("customer_id", *SCORE_COLUMNS))


class RolledBack(Exception):
    """Raised to discard the recount's writes."""


async def _rows(ctx: ServiceContext) -> dict[int, tuple[Any, ...]]:
    """Each customer's score row, and their open warning's score, level and rules."""
    return {row[0]: tuple(row[1:]) for row in await ctx.session.execute(text(
        f"SELECT {COLUMNS}, w.score, w.level, w.fired FROM churn_scores "
        "LEFT JOIN churn_warnings w ON w.customer_id = churn_scores.customer_id AND w.status = 'open' "
        "ORDER BY churn_scores.customer_id"))}


async def _recounted(tenure: TenureHarness) -> dict[int, tuple[Any, ...]]:
    """Every score row as a recount at this moment writes it, without keeping the recount."""
    seen: dict[int, tuple[Any, ...]] = {}
    with pytest.raises(RolledBack):
        async with tenure.transaction() as ctx:
            done = await scoring.score_everyone(ctx, churn_settings(ctx), await effective_rules(ctx), recount=True)
            assert done.mode == "recount"
            seen = await _rows(ctx)
            raise RolledBack
    return seen


async def _nightly(tenure: TenureHarness) -> dict[str, Any]:
    from tenure.plugins.churn.service import rescore_all

    done = await rescore_all(tenure.transaction, follow_up_now=False)
    async with tenure.transaction() as ctx:
        done["rows"] = await _rows(ctx)
    return done


async def _order(ctx: ServiceContext, customer_id: int, key: str, amount: int, days_ago: int = 0) -> int:
    order, _ = await orders.record_order(ctx, OrderData(
        customer_id=customer_id, channel="shop", external_id=key, currency="USD", amount=amount,
        placed_at=ctx.now() - timedelta(days=days_ago)))
    return order.id


async def test_each_nightly_rescore_equals_a_recount_at_the_same_moment(make_tenure: Any) -> None:
    with freeze_time(NOW) as clock:
        # Seven customers: counting two afresh is a share above the default fifth.
        async with make_tenure(plugins=["churn"], env={**TUNED, "TENURE_CHURN_RECOUNT_ABOVE": "1"}) as tenure:
            dialect = tenure.db.dialect
            ids = await load_population(tenure)
            # A visit that leaves P's recent period a few days after the second nightly.
            async with tenure.transaction() as ctx:
                await interactions.log_interaction(ctx, ids["P"], "visit", "store", NOW - timedelta(days=75))
            first = await _nightly(tenure)
            walked: list[dict[str, Any]] = []

            async def step(days: int) -> None:
                clock.advance(days=days)
                done = await _nightly(tenure)
                assert done["rows"] == await _recounted(tenure), f"day {(clock.now() - NOW).days}"
                walked.append(done)

            # A day on, nothing happened: moved on, nothing counted afresh.
            await step(1)
            # Events whose jobs do not run before the nightly: the marks alone bring them in.
            async with tenure.transaction() as ctx:
                await _order(ctx, ids["F"], "F-new", 2500)
                s_first = await ctx.session.scalar(select(Order).where(Order.external_id == "S-0"))
                assert s_first is not None
                await orders.refund_order(ctx, s_first.id, 500, None)
                await interactions.log_interaction(ctx, ids["P"], "complaint", "email", ctx.now())
                newcomer = await customers.create_customer(ctx, CustomerData(name="Newcomer"))
            await step(10)
            # Events a month later whose jobs run before the nightly: rescored after the last
            # run (P's visit has left the recent period meanwhile, and their jobs counted it in
            # the previous one), so their figures move on from then, not from the last run.
            clock.advance(days=30)
            async with tenure.transaction() as ctx:
                late = await _order(ctx, ids["L"], "L-late", 3000)
                await orders.cancel_order(ctx, late)
                await _order(ctx, ids["O"], "O-back", 1200, days_ago=2)
            await tenure.run_jobs()
            await step(30)
            # Months on: the complaint window, both interaction periods and the RFM year pass
            # over orders and interactions of the population.
            await step(100)
            await step(250)
    assert first["mode"] == "recount"
    assert [w["mode"] for w in walked] == ["advance"] * 5
    # Counted afresh: nobody a day on; then F, S, P (marks) and the newcomer (no score row);
    # then nobody on PostgreSQL, where the rows of L and O (the job rescored the customers
    # marked since, after the last run) move on from their own time, and those two on
    # SQLite (F, S and P, counted by the nightly, were no longer marked); then nobody.
    rescored_by_jobs = 0 if dialect == "postgresql" else 2
    assert [w["recounted"] for w in walked] == [0, 4, rescored_by_jobs, 0, 0]
    assert newcomer.id in walked[1]["rows"]
    # The walk moved figures: S's refund lowered its spend, L's cancelled order counts as a
    # cancellation, P's visit moved to the previous period once, and by day 421 S's and L's
    # orders have all left the RFM year.
    s, l_ = ids["S"], ids["L"]
    money = SCORE_COLUMNS.index("monetary")
    assert walked[0]["rows"][s][money] == 9000 and walked[1]["rows"][s][money] == 8500
    assert walked[2]["rows"][l_][SCORE_COLUMNS.index("cancellations")] == 1
    recent, previous = (SCORE_COLUMNS.index(c) for c in ("interactions_recent", "interactions_previous"))
    assert walked[1]["rows"][ids["P"]][recent:previous + 1] == (2, 0)
    assert walked[2]["rows"][ids["P"]][recent:previous + 1] == (1, 1)
    assert walked[4]["rows"][s][SCORE_COLUMNS.index("frequency")] == 0


async def test_changed_settings_or_a_busy_day_count_everyone_afresh(make_tenure: Any) -> None:
    """Figures counted over other windows cannot be moved on, nor warnings kept under another
    threshold; and when more than TENURE_CHURN_RECOUNT_ABOVE of the customers changed, counting
    everyone costs about the same."""
    with freeze_time(NOW) as clock:
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            modes = [(await _nightly(tenure))["mode"]]
            clock.advance(days=1)
            modes.append((await _nightly(tenure))["mode"])
            # Two customers of seven ordered (above the default fifth).
            async with tenure.transaction() as ctx:
                await _order(ctx, ids["F"], "F-busy", 700)
                await _order(ctx, ids["P"], "P-busy", 700)
            clock.advance(days=1)
            busy = await _nightly(tenure)
            modes.append(busy["mode"])
        async with make_tenure(plugins=["churn"], env={**TUNED, "TENURE_CHURN_THRESHOLD": "90"}) as tenure:
            clock.advance(days=1)
            stricter = await _nightly(tenure)
            modes.append(stricter["mode"])
            warned = await tenure.scalar("SELECT count(*) FROM churn_warnings WHERE status = 'open'")
            below = await tenure.scalar("SELECT count(*) FROM churn_scores WHERE health < 90 AND stage <> 'lost'")
            below_before = await tenure.scalar(
                "SELECT count(*) FROM churn_scores WHERE health < 60 AND stage <> 'lost'")
    assert modes == ["recount", "advance", "recount", "recount"]
    assert busy["recounted"] == 7
    # At 90, every customer below it is warned, more than were below 60.
    assert warned == below > below_before
