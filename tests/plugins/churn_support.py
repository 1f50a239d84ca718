"""A small population whose churn figures are worked out by hand (see test_churn.py).

The clock stands at NOW. Orders (days before NOW: amount), interactions:

    L  lapsed      94, 115, 136, 157, 178 days: 2000 each   (usual gap (178-94)/4 = 21)
    S  steady      5, 15, 25, 35, 45, 55 days: 1500 each
    C  complainer  10 days: 5000; an order of 700 8 days ago, cancelled; a complaint 3 days ago
    F  fading      40, 100 days: 1000 each; 4 visits 100-130 days ago, none since
    P  quiet       60, 70, 80 days: 100 each; nothing else
    O  old         400 days: 900
    N  never ordered
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tenure.core.services import customers, interactions, orders
from tenure.core.services.customers import CustomerData
from tenure.core.services.orders import OrderData
from tenure.testing import TenureHarness

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

#: The weights this population's figures are worked out with: lighter than the defaults
#: (under which any one rule raises a warning), so that only L, with two rules firing,
#: falls below the threshold and the others show each rule's weight on its own.
TUNED = {"TENURE_CHURN_NO_ORDER_WEIGHT": "40", "TENURE_CHURN_GAP_WEIGHT": "30",
         "TENURE_CHURN_INTERACTIONS_WEIGHT": "15", "TENURE_CHURN_COMPLAINTS_WEIGHT": "20"}

POPULATION: dict[str, list[tuple[int, int]]] = {
    "L": [(d, 2000) for d in (94, 115, 136, 157, 178)],
    "S": [(d, 1500) for d in (5, 15, 25, 35, 45, 55)],
    "C": [(10, 5000)],
    "F": [(40, 1000), (100, 1000)],
    "P": [(60, 100), (70, 100), (80, 100)],
    "O": [(400, 900)],
    "N": [],
}


async def load_population(tenure: TenureHarness, owner_email: str | None = None) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with tenure.transaction() as ctx:
        owner_id = None
        if owner_email:
            from tenure.core.models import StaffUser

            staff = StaffUser(name="Owner", email=owner_email, active=True, created_at=NOW)
            ctx.session.add(staff)
            await ctx.session.flush()
            owner_id = staff.id
        for name, placed in POPULATION.items():
            customer = await customers.create_customer(ctx, CustomerData(name=name, owner_id=owner_id))
            ids[name] = customer.id
            for n, (days, amount) in enumerate(placed):
                await orders.record_order(ctx, OrderData(
                    customer_id=customer.id, channel="shop", external_id=f"{name}-{n}", currency="USD",
                    amount=amount, placed_at=NOW - timedelta(days=days)))
        cancelled, _ = await orders.record_order(ctx, OrderData(
            customer_id=ids["C"], channel="shop", external_id="C-cancelled", currency="USD", amount=700,
            placed_at=NOW - timedelta(days=8)))
        await orders.cancel_order(ctx, cancelled.id)
        await interactions.log_interaction(ctx, ids["C"], "complaint", "phone", NOW - timedelta(days=3))
        for days in (100, 110, 120, 130):
            await interactions.log_interaction(ctx, ids["F"], "visit", "store", NOW - timedelta(days=days))
    await tenure.run_jobs()
    return ids


RISK = """query($id: ID!) { customer(id: $id) { churnRisk { score level reasons since }
  rfm { recencyDays frequency monetary r f m segment stage } } }"""


async def risk(tenure: TenureHarness, customer_id: int) -> dict[str, Any]:
    return (await tenure.ok(RISK, {"id": str(customer_id)}))["customer"]
