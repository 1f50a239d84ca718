"""Retention figures and the cohort triangle, each checked against a worked example.

The example (active window 2 months: a customer counts at the first instant of a month when
they ordered in either of the two months before; expected lifetime capped at 1 year = 12
monthly periods). Orders (month: net amount):

    A  web  Nov-25: 100  Jan-26: 200, 300  Mar-26: 400
    B  web  Dec-25: 500
    C  web  Feb-26: 600  (and a cancelled Feb order of 999, which never counts)
    D  pos  Jun-25: 60   Mar-26: 150            (won back in March)
    E  pos  Jan-26: 300 refunded 50 -> 250
    F  pos  Jan-26: 100  Mar-26: 100

Customers counting at:  Jan 1: A B = 2   Feb 1: A B E F = 4   Mar 1: A C E F = 4   Apr 1: A C D F = 4

January:  start 2, end 4, new E F (2), returning 0, retained 4-2-0 = 2, CRR 2/2 = 100, churn 0.
          buyers A(2 orders) E F = 3, repeat 1/3 = 33.33; orders 4, revenue 200+300+250+100 = 850,
          AOV 850/4 = 212.5 -> 212 (half to even), frequency 4/3 = 1.3333.
          historic: revenue before Jan 100+500+60 = 660, +850 = 1510 over A B D E F (5) = 302.
          predicted: churn 0 -> the 12-period cap: 850/3 x 12 = 3400.
February: start 4, end 4, new C (1), retained 3 (A E F), CRR 3/4 = 75, churn 25.
          buyers C = 1, repeat 0; orders 1, revenue 600, AOV 600, frequency 1.
          historic 1510+600 = 2110 / 6 = 351.67 -> 352. predicted 600/1 x (1/0.25 = 4) = 2400.
March:    start 4, end 4, new 0, returning D (1), retained 4-0-1 = 3 (A C F), CRR 75, churn 25.
          (F's previous order is January = March - 2 months: F still counted at Mar 1, so not "returning".)
          buyers A D F = 3, repeat 0; orders 3, revenue 400+150+100 = 650, AOV 216.67 -> 217, frequency 1.
          historic 2110+650 = 2760 / 6 = 460. predicted 650/3 x 4 = 866.67 -> 867.
Split by channel, February: web starts with A B (2), ends with A C (2), C new: CRR (2-1)/2 = 50;
          pos starts with E F, ends with E F: CRR 100.
Cohorts Jan..Mar: January's first-timers E F (2): Jan 2 (100%), Feb 0 (0%), Mar F (50%);
          February's C (1): Feb 1 (100%), Mar 0 (0%); March has no first-timer (D ordered in 2025).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenure.core.services import customers, orders
from tenure.core.services.customers import CustomerData
from tenure.core.services.orders import OrderData
from tenure.testing import TenureHarness, freeze_time

ENV = {"TENURE_RETENTION_ACTIVE_WINDOW_MONTHS": "2", "TENURE_RETENTION_MAX_LIFETIME_YEARS": "1"}

PEOPLE: dict[str, tuple[str, list[tuple[tuple[int, int], int]]]] = {
    "A": ("web", [((2025, 11), 100), ((2026, 1), 200), ((2026, 1), 300), ((2026, 3), 400)]),
    "B": ("web", [((2025, 12), 500)]),
    "C": ("web", [((2026, 2), 600)]),
    "D": ("pos", [((2025, 6), 60), ((2026, 3), 150)]),
    "E": ("pos", [((2026, 1), 300)]),
    "F": ("pos", [((2026, 1), 100), ((2026, 3), 100)]),
}

RETENTION = """
query($by: RetentionDimension) {
  retention(from: "2026-01-01", to: "2026-04-01", groupBy: MONTH, by: $by) {
    group start end customersAtStart customersAtEnd newCustomers returningCustomers retainedCustomers
    retentionRate churnRate repeatPurchaseRate orders revenue averageOrderValue purchaseFrequency
    historicClv predictedClv
  }
}"""


async def load_example(tenure: TenureHarness) -> None:
    async with tenure.transaction() as ctx:
        for name, (channel, placed) in PEOPLE.items():
            customer = await customers.create_customer(ctx, CustomerData(name=name, source_channel=channel))
            for n, ((year, month), amount) in enumerate(placed):
                order, _ = await orders.record_order(ctx, OrderData(
                    customer_id=customer.id, channel="web", external_id=f"{name}-{n}", currency="USD",
                    amount=amount, placed_at=datetime(year, month, 10 + n, 12, tzinfo=UTC)))
                if name == "E":
                    await orders.refund_order(ctx, order.id, 50, None)
            if name == "C":
                cancelled, _ = await orders.record_order(ctx, OrderData(
                    customer_id=customer.id, channel="web", external_id="C-cancelled", currency="USD",
                    amount=999, placed_at=datetime(2026, 2, 20, tzinfo=UTC)))
                await orders.cancel_order(ctx, cancelled.id)


def pick(row: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(row[n] for n in names)


async def test_each_figure_matches_the_worked_example(make_tenure: Any) -> None:
    with freeze_time(datetime(2026, 6, 1, tzinfo=UTC)):
        async with make_tenure(plugins=[], env=ENV) as tenure:
            await load_example(tenure)
            jan, feb, mar = (await tenure.ok(RETENTION))["retention"]
    assert pick(jan, "start", "end") == ("2026-01-01", "2026-02-01")
    counts = ("customersAtStart", "customersAtEnd", "newCustomers", "returningCustomers", "retainedCustomers")
    assert [pick(p, *counts) for p in (jan, feb, mar)] == [(2, 4, 2, 0, 2), (4, 4, 1, 0, 3), (4, 4, 0, 1, 3)]
    rates = ("retentionRate", "churnRate", "repeatPurchaseRate")
    assert [pick(p, *rates) for p in (jan, feb, mar)] == [(100.0, 0.0, 33.33), (75.0, 25.0, 0.0),
                                                          (75.0, 25.0, 0.0)]
    money = ("orders", "revenue", "averageOrderValue", "purchaseFrequency", "historicClv", "predictedClv")
    assert pick(jan, *money) == (4, 850, 212, 1.3333, 302, 3400)
    assert pick(feb, *money) == (1, 600, 600, 1.0, 352, 2400)
    assert pick(mar, *money) == (3, 650, 217, 1.0, 460, 867)


async def test_split_by_channel_and_the_cohort_triangle(make_tenure: Any) -> None:
    with freeze_time(datetime(2026, 6, 1, tzinfo=UTC)):
        async with make_tenure(plugins=[], env=ENV) as tenure:
            await load_example(tenure)
            split = (await tenure.ok(RETENTION, {"by": "CHANNEL"}))["retention"]
            triangle = (await tenure.ok("""{ cohorts(from: "2026-01-01", to: "2026-04-01") {
                month size cells { offset customers share } } }"""))["cohorts"]
            bad = await tenure.gql("""{ retention(from: "2026-03-01", to: "2026-01-01") { start } }""",
                                   key=await tenure.key("admin"))
    february = {p["group"]: p for p in split if p["start"] == "2026-02-01"}
    assert pick(february["web"], "customersAtStart", "customersAtEnd", "newCustomers", "retentionRate") == (
        2, 2, 1, 50.0)
    assert pick(february["pos"], "customersAtStart", "customersAtEnd", "newCustomers", "retentionRate") == (
        2, 2, 0, 100.0)
    assert [(c["month"], c["size"], [(x["customers"], x["share"]) for x in c["cells"]]) for c in triangle] == [
        ("2026-01-01", 2, [(2, 100.0), (0, 0.0), (1, 50.0)]),
        ("2026-02-01", 1, [(1, 100.0), (0, 0.0)]),
    ]
    assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "to"}


async def test_quarters_are_refused_with_a_window_shorter_than_a_quarter(make_tenure: Any) -> None:
    async with make_tenure(plugins=[], env=ENV) as tenure:
        answer = await tenure.gql("""{ retention(from: "2026-01-01", to: "2026-04-01", groupBy: QUARTER) {
            start } }""", key=await tenure.key("staff"))
        member = await tenure.gql("""{ retention(from: "2026-01-01", to: "2026-04-01") { start } }""",
                                  key=tenure.member_token(1))
    assert answer["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "groupBy"}
    assert "3 months" in answer["errors"][0]["message"]
    assert member["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")


async def test_the_all_time_repeat_rate_counts_purchase_days(make_tenure: Any) -> None:
    """G buys twice on one day (one occasion), H on two days (repeat from February), I once
    plus a cancelled order (no purchase), J in December and March (repeat from March)."""
    people = {"G": ("web", [(1, 5), (1, 5)]), "H": ("web", [(1, 7), (2, 9)]), "I": ("pos", [(2, 3)]),
              "J": ("pos", [(-1, 1), (3, 2)])}
    with freeze_time(datetime(2026, 6, 1, tzinfo=UTC)):
        async with make_tenure(plugins=[], env=ENV) as tenure:
            async with tenure.transaction() as ctx:
                for name, (channel, days) in people.items():
                    customer = await customers.create_customer(ctx, CustomerData(name=name, source_channel=channel))
                    for n, (month, day) in enumerate(days):
                        placed = datetime(2026 if month > 0 else 2025, month if month > 0 else 12, day, 9 + n,
                                          tzinfo=UTC)
                        await orders.record_order(ctx, OrderData(
                            customer_id=customer.id, channel="web", external_id=f"{name}-{n}", currency="USD",
                            amount=1000, placed_at=placed))
                    if name == "I":
                        cancelled, _ = await orders.record_order(ctx, OrderData(
                            customer_id=customer.id, channel="web", external_id="I-cancelled", currency="USD",
                            amount=500, placed_at=datetime(2026, 3, 3, tzinfo=UTC)))
                        await orders.cancel_order(ctx, cancelled.id)
            query = """query($by: RetentionDimension) { retention(from: "2026-01-01", to: "2026-04-01", by: $by) {
                group start allTimeRepeatPurchaseRate naiveClv predictedClv } }"""
            whole = (await tenure.ok(query))["retention"]
            split = (await tenure.ok(query, {"by": "CHANNEL"}))["retention"]
    assert [p["allTimeRepeatPurchaseRate"] for p in whole] == [0.0, 25.0, 50.0]
    assert all(p["naiveClv"] == p["predictedClv"] for p in whole)
    by_group = {(p["group"], p["start"]): p["allTimeRepeatPurchaseRate"] for p in split}
    assert by_group[("web", "2026-02-01")] == 50.0 and by_group[("pos", "2026-02-01")] == 0.0
    assert by_group[("web", "2026-03-01")] == 50.0 and by_group[("pos", "2026-03-01")] == 50.0


async def test_purchase_days_of_the_repeat_rate_are_the_business_time_zone_days(make_tenure: Any) -> None:
    """Two orders 40 minutes apart around UTC midnight are two days in UTC and one evening
    in Los Angeles: a repeat buyer in the first, not in the second."""
    rates = {}
    for zone in ("UTC", "America/Los_Angeles"):
        with freeze_time(datetime(2026, 6, 1, tzinfo=UTC)):
            async with make_tenure(plugins=[], env={**ENV, "TENURE_TIMEZONE": zone}) as tenure:
                async with tenure.transaction() as ctx:
                    if zone == "UTC":  # the second run reads the same orders
                        ada = await customers.create_customer(ctx, CustomerData(name="Ada"))
                        for n, placed in enumerate((datetime(2026, 1, 5, 23, 40, tzinfo=UTC),
                                                    datetime(2026, 1, 6, 0, 20, tzinfo=UTC))):
                            await orders.record_order(ctx, OrderData(
                                customer_id=ada.id, channel="web", external_id=f"ada-{n}", currency="USD",
                                amount=1000, placed_at=placed))
                answer = await tenure.ok("""{ retention(from: "2026-03-01", to: "2026-03-31") {
                    allTimeRepeatPurchaseRate } }""")
                rates[zone] = answer["retention"][0]["allTimeRepeatPurchaseRate"]
    assert rates == {"UTC": 100.0, "America/Los_Angeles": 0.0}
