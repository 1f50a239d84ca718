"""Predicted lifetime value: BG/NBD and Gamma-Gamma fitted on the orders.

The CDNOW 1/10 sample (tests/data/CDNOW_sample.txt: 2,357 customers who first bought in the
first quarter of 1997, 6,919 orders to the end of June 1998) goes in through `tenure import`'s
code path; with the clock on 1998-07-01 and the 273-day (39-week) holdout, the check's
calibration fit sees the 39 weeks of Fader, Hardie and Lee (2005) and must give their
parameters within 1%: r 0.243, alpha 4.414, a 0.793, b 2.426; and, on the mean value of each
repeat buyer's repeat purchases (the first purchase left out, as in "RFM and CLV", 2005b),
p 6.25, q 3.74, v 15.45. Amounts are imported in cents, so v is 1,545 in minor units.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from tenure.cli import main
from tenure.core.import_files import read_rows
from tenure.core.imports import import_rows
from tenure.testing import TenureHarness, freeze_time, migration_differences, pk_of
from tests.plugins.loyalty_support import cancel, new_customer, record_order, refund

CDNOW = Path(__file__).parent.parent / "data" / "CDNOW_sample.txt"
AFTER_CDNOW = datetime(1998, 7, 1, 6, 0, tzinfo=UTC)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.45 * 100}  # dollars in the paper, cents here

MODEL = """{ predictionModel { asOf customers repeatBuyers purchases sameDayMerged timeZone seconds message
  bgnbd { r alpha a b logLikelihood } gammaGamma { p q v }
  holdout { calibrationEnd days customers repeatBuyers skipped bgnbd { r alpha a b logLikelihood }
            gammaGamma { p q v } rows { repeatPurchases label customers actual predicted } actualTotal predictedTotal }
  lastRefusal { asOf message } } }"""
#: Enough for the small populations below; a holdout check would need more.
SMALL = {"TENURE_PREDICTIONS_MIN_CUSTOMERS": "10", "TENURE_PREDICTIONS_MIN_REPEAT_BUYERS": "5",
         "TENURE_PREDICTIONS_HOLDOUT_DAYS": "0"}
CUSTOMER = """query($id: ID!) { customer(id: $id) { prediction { probabilityActive expectedOrders
  expectedOrders30: expectedOrders(days: 30) predictedValue predictedValue30: predictedValue(days: 30)
  purchases recencyDays ageDays meanValue asOf } } }"""


def cdnow_files(folder: Path) -> tuple[Path, Path]:
    """The sample as the two CSV files `tenure import` reads: customers, and orders in cents at noon UTC."""
    customers, orders = folder / "cdnow_customers.csv", folder / "cdnow_orders.csv"
    seen: dict[str, None] = {}
    lines = ["customer_external_id,channel,external_id,amount,placed_at,status"]
    for n, row in enumerate(CDNOW.read_text().split("\n")):
        if not row.strip():
            continue
        _, customer, day, _quantity, dollars = row.split()
        seen[customer] = None
        placed = f"{day[:4]}-{day[4:6]}-{day[6:]}T12:00:00Z"
        lines.append(f"{customer},cdnow,{n + 1},{round(float(dollars) * 100)},{placed},paid")
    orders.write_text("\n".join(lines) + "\n")
    customers.write_text("external_id,name\n" + "".join(f"{c},CDNOW {c}\n" for c in seen))
    return customers, orders


async def import_file(tenure: TenureHarness, kind: str, path: Path) -> None:
    rows, rejected, _ = read_rows(path, kind)
    report = await import_rows(tenure.db, tenure.settings, tenure.plugins, kind, rows)
    assert rejected == [] and report.rejected == [], (rejected, report.rejected[:3])


def within(found: dict[str, float], published: dict[str, float], share: float = 0.01) -> dict[str, float]:
    """The parameters further than ``share`` from the published ones, with how far."""
    return {k: found[k] / v - 1 for k, v in published.items() if abs(found[k] / v - 1) > share}


@pytest.mark.slow
async def test_cdnow_sample_reproduces_the_published_parameters(make_tenure: Any, tmp_path: Path) -> None:
    customers, orders = cdnow_files(tmp_path)
    with freeze_time(AFTER_CDNOW):
        async with make_tenure(plugins=["predictions"]) as tenure:
            await import_file(tenure, "customers", customers)
            await import_file(tenure, "orders", orders)
            await tenure.jobs.run("predictions.fit")
            model = (await tenure.ok(MODEL))["predictionModel"]
            ids = {name: int(await tenure.scalar(
                "SELECT customer_id FROM customer_identities WHERE kind = 'external' AND value = :v", v=ext))
                for name, ext in (("loyal", "0001"), ("once", "0002"))}
            seen = {name: (await tenure.ok(CUSTOMER, {"id": str(cid)}))["customer"]["prediction"]
                    for name, cid in ids.items()}
            split = (await tenure.ok("""{ retention(from: "1998-06-01", to: "1998-07-01",
                by: PROBABILITY_ACTIVE_BAND) { group customersAtEnd } }"""))["retention"]
            await tenure.jobs.run("predictions.fit")  # the same day again: one fit, the same figures
            assert await tenure.scalar("SELECT count(*) FROM predictions_fits") == 1
            again = (await tenure.ok(MODEL))["predictionModel"]

    check = model["holdout"]
    assert check["calibrationEnd"] == "1997-10-01" and check["days"] == 273 and check["skipped"] is None
    assert (check["customers"], check["repeatBuyers"]) == (2357, 946)
    assert within(check["bgnbd"], PUBLISHED_BGNBD) == {}, check["bgnbd"]
    assert within(check["gammaGamma"], PUBLISHED_GG) == {}, check["gammaGamma"]
    assert round(check["bgnbd"]["logLikelihood"], 1) == -9582.4  # the paper's maximum
    # The paper's figure: purchases in weeks 40-78 by repeat purchases in weeks 1-39, actual and predicted.
    table = {r["label"]: (r["customers"], round(r["actual"], 2), round(r["predicted"], 2)) for r in check["rows"]}
    assert table == {"0": (1411, 0.24, 0.23), "1": (439, 0.70, 0.52), "2": (214, 1.39, 1.04),
                     "3": (100, 1.56, 1.52), "4": (62, 2.53, 2.16), "5": (38, 2.95, 2.65),
                     "6": (29, 3.86, 3.50), "7+": (64, 6.36, 6.16)}
    assert check["actualTotal"] == 1882 and abs(check["predictedTotal"] - 1653.4) < 1

    # The model that scores customers is fitted on all 78 weeks.
    assert (model["asOf"], model["customers"], model["sameDayMerged"], model["timeZone"]) == (
        "1998-07-01", 2357, True, "UTC")
    assert model["repeatBuyers"] > 946 and model["purchases"] < 6919  # same-day orders merged
    assert model["lastRefusal"] is None and model["message"] == ""
    assert again["bgnbd"] == model["bgnbd"] and again["holdout"] == model["holdout"]

    loyal, once = seen["loyal"], seen["once"]
    assert (loyal["purchases"], once["purchases"]) == (4, 2) and loyal["asOf"] == "1998-07-01"
    assert 0 < once["probabilityActive"] < loyal["probabilityActive"] <= 1
    assert loyal["expectedOrders30"] < loyal["expectedOrders"]
    assert 0 < loyal["predictedValue30"] < loyal["predictedValue"]
    assert {g["group"] for g in split} <= {"0-25%", "25-50%", "50-75%", "75-100%"}
    assert sum(g["customersAtEnd"] for g in split) > 0


async def buyers(tenure: TenureHarness, start: datetime, histories: dict[str, list[int]]) -> dict[str, int]:
    """Customers buying on the given days from ``start`` (50.00 each time), among 16 others
    buying at every pace, some of whom stopped, so the population has something to say."""
    everyone = dict(histories)
    for n in range(16):
        everyone[f"other{n}"] = list(range(n * 7, 730, 45 + 20 * n))[: 2 + n % 5]
    ids = {}
    for name, days in everyone.items():
        cid = ids[name] = await new_customer(tenure, name)
        for k, day in enumerate(days):
            await record_order(tenure, cid, f"{name}-{k}", 5_000, placedAt=(start + timedelta(days=day)).isoformat())
    return ids


async def test_a_customer_buying_lately_is_more_likely_active_than_one_silent_for_a_year(make_tenure: Any) -> None:
    """Same first purchase two years ago, same number of purchases; one's last was last week,
    the other's a year and a week ago."""
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    start = now - timedelta(days=730)
    with freeze_time(now):
        async with make_tenure(plugins=["predictions"], env=SMALL) as tenure:
            ids = await buyers(tenure, start, {"recent": [0, 250, 480, 723], "silent": [0, 120, 240, 358]})
            await tenure.jobs.run("predictions.fit")
            seen = {n: (await tenure.ok(CUSTOMER, {"id": str(ids[n])}))["customer"]["prediction"]
                    for n in ("recent", "silent")}
    recent, silent = seen["recent"], seen["silent"]
    assert recent["purchases"] == silent["purchases"] == 4 and recent["ageDays"] == silent["ageDays"] == 729
    assert (recent["recencyDays"], silent["recencyDays"]) == (723, 358)
    assert recent["probabilityActive"] > silent["probabilityActive"]
    assert recent["expectedOrders"] > silent["expectedOrders"]
    assert recent["predictedValue"] > silent["predictedValue"]


async def test_same_day_orders_are_one_purchase_cancelled_ones_none_and_refunds_come_off(make_tenure: Any) -> None:
    with freeze_time(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)):
        async with make_tenure(plugins=["predictions"], env=SMALL) as tenure:
            await buyers(tenure, datetime(2024, 6, 1, 9, 0, tzinfo=UTC), {})
            ada = await new_customer(tenure, "Ada")
            for n, (when, amount) in enumerate((("2026-01-10T09:00:00Z", 1_000), ("2026-01-10T18:00:00Z", 3_000),
                                                ("2026-03-02T10:00:00Z", 10_000), ("2026-04-20T10:00:00Z", 6_000))):
                order = await record_order(tenure, ada, f"a{n}", amount, placedAt=when)
                if n == 2:
                    await refund(tenure, order, 4_000)
                if n == 3:
                    await cancel(tenure, order)
            await tenure.jobs.run("predictions.fit")
            figures = (await tenure.ok(CUSTOMER, {"id": str(ada)}))["customer"]["prediction"]
    # Jan 10 (two orders, one occasion worth 40.00) and Mar 2 (100.00 less 40.00 refunded); the cancelled one is none.
    assert (figures["purchases"], figures["recencyDays"], figures["ageDays"]) == (2, 51, 141)
    assert figures["meanValue"] == 6_000


async def test_too_few_buyers_refuses_in_words_and_keeps_the_last_predictions(make_tenure: Any) -> None:
    with freeze_time(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)) as clock:
        async with make_tenure(plugins=["predictions"]) as tenure:
            for n in range(3):
                cid = await new_customer(tenure, f"C{n}")
                for k in range(n + 1):
                    await record_order(tenure, cid, f"c{n}-{k}", 1_000, placedAt=f"2026-0{k + 1}-05T10:00:00Z")
            await tenure.jobs.run("predictions.fit")  # the job records the refusal and ends
            answer = await tenure.gql(MODEL, key=await tenure.key("admin"))
            clock.advance(days=1)
            async with tenure.transaction() as ctx:
                from tenure.plugins.predictions import service
                from tenure.plugins.predictions.results import Refused

                with pytest.raises(Refused) as refused:
                    await service.fit_and_score(ctx)
            assert await tenure.scalar("SELECT count(*) FROM predictions_customers") == 0
    expected = ("too few buyers to fit: 2 repeat buyers (customers who bought on two or more days) among 3 "
                "customers; the fit needs at least 20 repeat buyers and 100 customers")
    assert answer["data"]["predictionModel"] is None
    assert answer["errors"][0]["message"].startswith(f"no model yet: {expected}")
    assert str(refused.value).startswith(expected)


async def test_members_see_their_prediction_only_where_the_business_allows_it(make_tenure: Any) -> None:
    me = "{ me { prediction { probabilityActive purchases } } }"
    seen = []
    for visible in ("false", "true"):
        with freeze_time(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)):
            async with make_tenure(plugins=["predictions"],
                                   env={**SMALL, "TENURE_PREDICTIONS_MEMBER_VISIBLE": visible}) as tenure:
                if visible == "false":
                    ids = await buyers(tenure, datetime(2024, 6, 1, 9, 0, tzinfo=UTC), {"ada": [0, 100]})
                    await tenure.jobs.run("predictions.fit")
                member = await tenure.client_for("member", customer_id=ids["ada"])
                seen.append((await member.ok(me))["me"]["prediction"])
    assert seen[0] is None
    assert seen[1]["purchases"] == 2 and 0 < seen[1]["probabilityActive"] <= 1


RANKED = """query($first: Int, $after: String, $order: PredictionOrderBy, $filter: PredictionFilterInput) {
  customersByPrediction(first: $first, after: $after, orderBy: $order, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id name prediction { probabilityActive predictedValue } } } } }"""


async def every_page(tenure: TenureHarness, size: int, **variables: Any) -> tuple[list[dict[str, Any]], set[int]]:
    """Every customer of ``customersByPrediction``, ``size`` a page, following ``after``; and
    the totalCount of each page."""
    seen: list[dict[str, Any]] = []
    totals, after = set(), None
    while True:
        page = (await tenure.ok(RANKED, {"first": size, "after": after, **variables}))["customersByPrediction"]
        assert len(page["edges"]) <= size
        seen += [edge["node"] for edge in page["edges"]]
        totals.add(page["totalCount"])
        if not page["pageInfo"]["hasNextPage"]:
            return seen, totals
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]


async def test_customers_by_prediction_sorts_pages_and_filters_on_the_stored_figures(make_tenure: Any) -> None:
    with freeze_time(datetime(2026, 6, 1, 9, 0, tzinfo=UTC)):
        async with make_tenure(plugins=["predictions"], env=SMALL) as tenure:
            # Three customers with one purchase each: all 1.0 active, so the id breaks their tie.
            await buyers(tenure, datetime(2024, 6, 1, 9, 0, tzinfo=UTC),
                         {"recent": [0, 250, 480, 723], "silent": [0, 120, 240, 358],
                          "once0": [400], "once1": [500], "once2": [600]})
            vip = await new_customer(tenure, "VIP", tags=["vip"])
            await new_customer(tenure, "Never bought")
            for k, day in enumerate((100, 400, 700)):
                await record_order(tenure, vip, f"vip-{k}", 20_000,
                                   placedAt=(datetime(2024, 6, 1, 9, 0, tzinfo=UTC) + timedelta(days=day)).isoformat())
            await tenure.jobs.run("predictions.fit")
            async with tenure.db.reader() as session:
                stored = {int(row[0]): (row[1], row[2]) for row in await session.execute(
                    text("SELECT customer_id, probability_active, predicted_value FROM predictions_customers"))}
            lost_first, lost_totals = await every_page(tenure, 4)
            richest_first, _ = await every_page(tenure, 3, order={"field": "PREDICTED_VALUE", "direction": "DESC"})
            likely, _ = await every_page(tenure, 100, filter={"minProbabilityActive": 0.5, "maxProbabilityActive": 1})
            middle = sorted(v for _, v in stored.values())[len(stored) // 4: -len(stored) // 4]
            valued, value_totals = await every_page(tenure, 5, filter={"minPredictedValue": middle[0],
                                                                      "maxPredictedValue": middle[-1]},
                                                    order={"field": "EXPECTED_ORDERS", "direction": "ASC"})
            tagged, _ = await every_page(tenure, 5, filter={"tags": ["VIP"]})
            member = await tenure.client_for("member", customer_id=vip)
            as_member = await member.gql("{ customersByPrediction { totalCount } }")
            reporting = await tenure.key("integration", scopes=["reports:read"])
            as_reporting = await tenure.gql("{ customersByPrediction { totalCount } }", key=reporting)
            reading = await tenure.key("integration", scopes=["customers:read"])
            as_reading = await tenure.gql("{ customersByPrediction { totalCount } }", key=reading)

    assert len(stored) == 16 + 5 + 1  # everyone who bought, not the customer who never did
    order = sorted(stored, key=lambda c: (stored[c][0], c))
    assert [pk_of(c["id"]) for c in lost_first] == order and lost_totals == {len(stored)}
    names = [c["name"] for c in lost_first]
    assert names.index("silent") < names.index("recent") and names[-3:] == ["once0", "once1", "once2"]
    assert all(c["prediction"]["probabilityActive"] == stored[pk_of(c["id"])][0] for c in lost_first)
    assert [pk_of(c["id"]) for c in richest_first] == sorted(stored, key=lambda c: (stored[c][1], c), reverse=True)
    assert richest_first[0]["name"] == "VIP"
    assert {pk_of(c["id"]) for c in likely} == {c for c, (p, _) in stored.items() if p >= 0.5}
    assert 0 < len(likely) < len(stored)
    assert {pk_of(c["id"]) for c in valued} == {c for c, (_, v) in stored.items() if middle[0] <= v <= middle[-1]}
    assert value_totals == {len(valued)} and len(valued) >= len(middle)
    assert [c["name"] for c in tagged] == ["VIP"]
    assert as_member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert as_reporting["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert as_reading["data"]["customersByPrediction"]["totalCount"] == len(stored)


async def test_customers_by_prediction_refuses_bounds_that_make_no_sense(make_tenure: Any) -> None:
    async with make_tenure(plugins=["predictions"]) as tenure:
        admin, found = await tenure.key("admin"), []
        for bounds in ({"minProbabilityActive": 0.8, "maxProbabilityActive": 0.2},
                       {"maxProbabilityActive": 1.5}, {"minProbabilityActive": -0.1},
                       {"minPredictedValue": -1}, {"minPredictedValue": 500, "maxPredictedValue": 100}):
            error = (await tenure.gql(RANKED, {"filter": bounds}, key=admin))["errors"][0]
            found.append((error["extensions"]["code"], error["extensions"]["field"], error["message"]))
        paged = await tenure.gql(RANKED, {"first": 1000}, key=admin)
        empty = (await tenure.ok(RANKED))["customersByPrediction"]
    assert found == [
        ("BAD_USER_INPUT", "filter.minProbabilityActive", "filter.minProbabilityActive: 0.8 is above "
                                                          "filter.maxProbabilityActive (0.2)"),
        ("BAD_USER_INPUT", "filter.maxProbabilityActive", "filter.maxProbabilityActive: must be at most 1, got 1.5"),
        ("BAD_USER_INPUT", "filter.minProbabilityActive", "filter.minProbabilityActive: must not be negative, "
                                                          "got -0.1"),
        ("BAD_USER_INPUT", "filter.minPredictedValue", "filter.minPredictedValue: must not be negative, got -1"),
        ("BAD_USER_INPUT", "filter.minPredictedValue", "filter.minPredictedValue: 500 is above "
                                                       "filter.maxPredictedValue (100)"),
    ]
    assert paged["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert empty == {"totalCount": 0, "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}


@pytest.mark.sqlite_only
def test_cli_fits_and_reports_with_the_holdout_table(tmp_path: Path, database_url: str) -> None:
    """`tenure import`, `tenure predict fit` and `tenure predict report` as an operator runs them
    (the first 600 customers of the sample, the clock set with TENURE_NOW)."""
    runner = CliRunner()
    env = {"TENURE_DATABASE_URL": database_url, "TENURE_PLUGINS": "predictions", "TENURE_ENVIRONMENT": "test",
           "TENURE_NOW": AFTER_CDNOW.isoformat()}

    def tenure(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    customers, orders = cdnow_files(tmp_path)
    keep = {line.split(",")[0] for line in customers.read_text().splitlines()[1:601]}
    orders.write_text("".join(line + "\n" for n, line in enumerate(orders.read_text().splitlines())
                              if n == 0 or line.split(",")[0] in keep))
    customers.write_text("".join(line + "\n" for line in customers.read_text().splitlines()[:601]))
    assert tenure("migrate").exit_code == 0
    assert "no fit yet" in tenure("predict", "report").output
    assert tenure("import", "customers", str(customers)).exit_code == 0
    result = tenure("import", "orders", str(orders))
    assert result.exit_code == 0, result.output
    fitted = tenure("predict", "fit")
    assert fitted.exit_code == 0, fitted.output
    assert "scored 600 customers" in fitted.output
    report = tenure("predict", "report")
    assert report.exit_code == 0
    lines = report.output.splitlines()
    assert lines[0].startswith("fitted 1998-07-01 06:00 UTC on the orders before 1998-07-01")
    assert "600 customers" in lines[0] and "same-day orders merged, days in UTC" in lines[0]
    assert lines[1].startswith("BG/NBD        r = ") and lines[2].startswith("Gamma-Gamma   p = ")
    assert "holdout check: fitted on the orders before 1997-10-01" in report.output
    table = lines[lines.index("  repeat purchases   customers   actual per customer   predicted per customer") + 1:]
    assert [row.split()[0] for row in table[:8]] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table[8].startswith("  total purchases in the holdout days: actual ")
    refused = runner.invoke(main, ["predict", "fit"], env={**env, "TENURE_PREDICTIONS_MIN_CUSTOMERS": "1000"})
    assert refused.exit_code == 1
    assert "among 600 customers; the fit needs at least 20 repeat buyers and 1000 customers" in refused.output


@pytest.mark.sqlite_only
def test_migrations_create_what_the_models_declare(database_url: str) -> None:
    assert migration_differences(database_url, ["predictions"], only="predictions") == []


async def test_probability_active_is_a_churn_signal_staff_switch_on(make_tenure: Any) -> None:
    """Off by default; switched on, the customer silent for a year is flagged with the
    model's words, the one buying lately is not."""
    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    save = """mutation($i: SaveChurnRuleInput!) { saveChurnRule(input: $i) {
        rule { kind plugin enabled threshold } userErrors { field message } } }"""
    risk = "query($id: ID!) { customer(id: $id) { churnRisk { score reasons } prediction { probabilityActive } } }"
    with freeze_time(now):
        async with make_tenure(plugins=["predictions", "churn"],
                               env={**SMALL, "TENURE_CHURN_NO_ORDER_WEIGHT": "0", "TENURE_CHURN_GAP_WEIGHT": "0"}
                               ) as tenure:
            ids = await buyers(tenure, now - timedelta(days=730),
                               {"recent": [0, 250, 480, 723], "silent": [0, 120, 240, 358]})
            await tenure.jobs.run("predictions.fit")
            listed = (await tenure.ok("{ churnRules { kind plugin enabled threshold } }"))["churnRules"]
            too_high = (await tenure.ok(save, {"i": {"kind": "probability_active", "threshold": 1.5}}))
            await tenure.ok(save, {"i": {"kind": "probability_active", "enabled": True, "threshold": 0.5}})
            await tenure.jobs.run("churn.rescore")
            seen = {n: (await tenure.ok(risk, {"id": str(ids[n])}))["customer"] for n in ("recent", "silent")}
    assert {"kind": "probability_active", "plugin": "predictions", "enabled": False, "threshold": 0.3} in listed
    assert too_high["saveChurnRule"]["userErrors"][0]["message"].startswith("must be at most 1")
    assert seen["silent"]["prediction"]["probabilityActive"] < 0.5 < seen["recent"]["prediction"]["probabilityActive"]
    # No order and long gap weigh 0 here: the model's signal alone takes 45.
    assert seen["silent"]["churnRisk"]["score"] == 55
    assert "the model gives under 0.5 chance that they are still a customer" in seen["silent"]["churnRisk"]["reasons"]
    assert seen["recent"]["churnRisk"] == {"score": 100, "reasons": []}


async def test_purchase_days_are_the_business_time_zone_days(make_tenure: Any) -> None:
    """Two orders 40 minutes apart around UTC midnight: one day in Los Angeles (one
    purchase occasion), two days in UTC."""
    occasions = {}
    for n, zone in enumerate(("UTC", "America/Los_Angeles")):
        with freeze_time(datetime(2026, 6, 1 + n, 9, 0, tzinfo=UTC)):
            async with make_tenure(plugins=["predictions"], env={**SMALL, "TENURE_TIMEZONE": zone}) as tenure:
                if n == 0:
                    await buyers(tenure, datetime(2024, 6, 1, 9, 0, tzinfo=UTC), {})
                    ada = await new_customer(tenure, "Ada")
                    await record_order(tenure, ada, "a1", 1_000, placedAt="2026-01-09T23:40:00Z")
                    await record_order(tenure, ada, "a2", 1_000, placedAt="2026-01-10T00:20:00Z")
                await tenure.jobs.run("predictions.fit")
                figures = (await tenure.ok(CUSTOMER, {"id": str(ada)}))["customer"]["prediction"]
                model = (await tenure.ok("{ predictionModel { timeZone } }"))["predictionModel"]
                occasions[zone] = (figures["purchases"], model["timeZone"])
    assert occasions == {"UTC": (2, "UTC"), "America/Los_Angeles": (1, "America/Los_Angeles")}
