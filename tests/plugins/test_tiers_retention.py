"""`retention(by: TIER)`: the figures split by each customer's current tier, against a
worked example; with tiers off, TIER is not in the schema at all.

The example (active window 2 months; tiers Member (everyone who orders) and Gold (spend of
1,000.00 over the tier window); the clock on 2026-03-20):

    A  Jan 10: 1,500.00  Feb 10: 10.00   -> Gold
    B  Jan 10: 1,200.00                  -> Gold
    C  Feb 10: 50.00                     -> Member

Gold:   Jan: start 0, end 2 (A B), new 2.     Feb: start 2, end 2, retained 2, CRR 100; 1 order, 10.00.
        Mar: start 2 (A B), end 1 (A ordered in Feb; B's January is out of the window): CRR 50, churn 50.
Member: Feb: start 0, end 1, new 1 (C), retained 0, CRR null.   Mar: start 1, end 1, CRR 100.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tenure.testing import freeze_time
from tests.plugins.loyalty_support import new_customer, record_order
from tests.plugins.test_tiers import create_tier

ENV = {"TENURE_RETENTION_ACTIVE_WINDOW_MONTHS": "2"}
QUERY = """query($by: RetentionDimension) { retention(from: "2026-01-01", to: "2026-04-01", by: $by) {
  group start customersAtStart customersAtEnd newCustomers retainedCustomers retentionRate churnRate orders revenue
} }"""


async def test_retention_split_by_current_tier(make_tenure: Any) -> None:
    with freeze_time(datetime(2026, 3, 20, tzinfo=UTC)):
        async with make_tenure(plugins=["tiers"], env=ENV) as tenure:
            for tier in ({"name": "Member", "rank": 0}, {"name": "Gold", "rank": 1, "minSpend": 100_000}):
                assert (await create_tier(tenure, **tier))["userErrors"] == []
            a, b, c = [await new_customer(tenure, name) for name in "ABC"]
            for cid, ext, amount, when in ((a, "a1", 150_000, "2026-01-10"), (a, "a2", 1_000, "2026-02-10"),
                                           (b, "b1", 120_000, "2026-01-10"), (c, "c1", 5_000, "2026-02-10")):
                await record_order(tenure, cid, ext, amount, placedAt=f"{when}T12:00:00Z")
            split = (await tenure.ok(QUERY, {"by": "TIER"}))["retention"]
    figures = {(p["group"], p["start"][5:7]): (p["customersAtStart"], p["customersAtEnd"], p["newCustomers"],
                                               p["retainedCustomers"], p["retentionRate"], p["churnRate"],
                                               p["orders"], p["revenue"]) for p in split}
    assert sorted({g for g, _ in figures}) == ["Gold", "Member"]
    assert figures["Gold", "01"] == (0, 2, 2, 0, None, None, 2, 270_000)
    assert figures["Gold", "02"] == (2, 2, 0, 2, 100.0, 0.0, 1, 1_000)
    assert figures["Gold", "03"] == (2, 1, 0, 1, 50.0, 50.0, 0, 0)
    assert figures["Member", "02"] == (0, 1, 1, 0, None, None, 1, 5_000)
    assert figures["Member", "03"] == (1, 1, 0, 1, 100.0, 0.0, 0, 0)


async def test_without_tiers_there_is_no_tier_split(make_tenure: Any) -> None:
    async with make_tenure(plugins=[]) as tenure:
        answer = await tenure.gql(QUERY, {"by": "TIER"}, key=await tenure.key("admin"))
        channel = await tenure.ok(QUERY, {"by": "CHANNEL"})
    assert "TIER" in answer["errors"][0]["message"] and not answer.get("data")
    assert channel["retention"] == []
