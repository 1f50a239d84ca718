"""Time a business can steer: ``TENURE_NOW`` in every process, schedules as settings,
``tenure jobs list`` / ``jobs run NAME --at``, and the forecast of what the scheduled rules
will do, checked against what the days then actually do."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from tenure.cli import main
from tenure.core import clock
from tenure.core.services import customers, orders
from tenure.core.services.customers import CustomerData
from tenure.core.services.orders import OrderData
from tenure.testing import TenureHarness, freeze_time

START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def tenure(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def forecast_lines(output: str) -> dict[date, list[str]]:
    days: dict[date, list[str]] = {}
    current: date | None = None
    for line in output.splitlines():
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", line):
            current = date.fromisoformat(line)
            days[current] = []
        elif current is not None and line.startswith("  "):
            days[current].append(line.strip())
    return days


@pytest.mark.sqlite_only
def test_renewal_reminders_arrive_once_each_as_the_clock_moves_day_by_day(tmp_path: Path) -> None:
    """A yearly plan ending 100 days from START: the forecast says the 90, 60 and 30-day
    reminders and the lapse fall on days 10, 40, 70 and 101; moving TENURE_NOW a day at a
    time and running the due jobs each day, they happen on exactly those days, once each."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'days.db'}"
    env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "renewals"}
    tenure(env, "migrate")
    ends = (START + timedelta(days=100)).date()

    async def subscribe() -> None:
        from tenure.plugins.renewals import service

        async with TenureHarness.start(url, plugins=["renewals"], create_tables=False) as app, \
                app.transaction() as ctx:
            await service.create_plan(ctx, code="yearly", name="Yearly", reminder_days=None)
            ada = await customers.create_customer(ctx, CustomerData(name="Ada", emails=["ada@example.com"]))
            await service.create_subscription(ctx, customer_id=ada.id, plan="yearly", value=12000,
                                              starts_on=ends - timedelta(days=365), ends_on=ends)

    with freeze_time(START):
        asyncio.run(subscribe())
    at_start = {**env, "TENURE_NOW": START.isoformat()}
    planned = forecast_lines(tenure(at_start, "forecast", "--days", "120").output)
    assert planned == {
        ends - timedelta(days=90): ["renewals   1 renewal reminder to customers and owners, each with a renewal task"],
        ends - timedelta(days=60): ["renewals   1 renewal reminder to customers and owners, each with a renewal task"],
        ends - timedelta(days=30): ["renewals   1 renewal reminder to customers and owners, each with a renewal task"],
        ends + timedelta(days=1): ["renewals   1 subscription lapses without renewal"],
    }

    async def reminders() -> list[tuple[int, str]]:
        async with TenureHarness.start(url, plugins=["renewals"], create_tables=False) as app:
            async with app.db.reader() as session:
                rows = (await session.execute(text("SELECT offset_days, sent_at FROM renewals_reminders "
                                                   "ORDER BY id"))).all()
            status = await app.scalar("SELECT status FROM renewals_subscriptions")
            return [(int(o), str(at)[:10]) for o, at in rows] + [(-1, str(status))]

    happened: dict[date, list[str]] = {}
    seen: list[tuple[int, str]] = []
    for n in range(0, 103):
        today = (START + timedelta(days=n)).replace(hour=7)  # after the daily job's 06:00
        tenure({**env, "TENURE_NOW": today.isoformat()}, "jobs", "run")
        with clock.use_clock(clock.FrozenClock(today)):
            now_seen = asyncio.run(reminders())
        new = [r for r in now_seen[:-1] if r not in seen]
        seen += new
        for offset, _ in new:
            happened.setdefault(today.date(), []).append(f"reminder {offset}")
        if now_seen[-1] == (-1, "lapsed") and not any("lapsed" in v for vs in happened.values() for v in vs):
            happened.setdefault(today.date(), []).append("lapsed")
    assert happened == {ends - timedelta(days=90): ["reminder 90"], ends - timedelta(days=60): ["reminder 60"],
                        ends - timedelta(days=30): ["reminder 30"], ends + timedelta(days=1): ["lapsed"]}
    # Run again on a day already done: nothing more.
    again = tenure({**env, "TENURE_NOW": (START + timedelta(days=70, hours=-2)).isoformat()}, "jobs", "run")
    assert "nothing was due" in again.output


@pytest.mark.sqlite_only
def test_jobs_are_listed_with_their_setting_and_run_by_name_as_of_a_moment(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "renewals,nps",
           "TENURE_SCHEDULE_NPS_SEND_DUE": "*/5 * * * *", "TENURE_NOW": "2027-03-01T09:02:00+00:00"}
    tenure(env, "migrate")
    listed = tenure(env, "jobs", "list").output
    nps_line = next(line for line in listed.splitlines() if line.startswith("nps.send_due"))
    assert nps_line.split()[1:] == ["nps", "*/5", "*", "*", "*", "*", "2027-03-01", "09:05",
                                    "TENURE_SCHEDULE_NPS_SEND_DUE"]
    renewals_line = next(line for line in listed.splitlines() if line.startswith("renewals.daily"))
    assert "2027-03-02 06:00" in renewals_line
    ran = tenure(env, "jobs", "run", "renewals.daily", "--at", "2027-06-01T06:00:00+00:00")
    assert ran.output.strip() == "1 done"
    unknown = CliRunner().invoke(main, ["jobs", "run", "renewals.weekly"], env=env)
    assert unknown.exit_code != 0 and "no job named 'renewals.weekly'" in unknown.output
    off = CliRunner().invoke(main, ["jobs", "list"], env={**env, "TENURE_SCHEDULE_RENEWALS_DAILY": "at dawn"})
    assert off.exit_code != 0 and "TENURE_SCHEDULE_RENEWALS_DAILY: 'at dawn' is not a cron expression" in off.output
    switched_off = tenure({**env, "TENURE_SCHEDULE_RENEWALS_DAILY": "off"}, "jobs", "list").output
    assert re.search(r"^renewals\.daily\s+renewals\s+-\s+when queued", switched_off, flags=re.MULTILINE)


@pytest.mark.sqlite_only
def test_tenure_now_is_the_time_of_what_the_cli_writes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'now.db'}"
    source = tmp_path / "people.csv"
    source.write_text("external_id,name,email\nc-1,Ada,ada@example.com\n")
    env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "", "TENURE_NOW": "2031-05-06T07:08:09+00:00"}
    tenure(env, "import", "customers", str(source))

    async def created() -> Any:
        async with TenureHarness.start(url, plugins=[], create_tables=False) as app:
            return await app.scalar("SELECT created_at FROM customers")

    assert str(asyncio.run(created())).startswith("2031-05-06 07:08:09")


def test_the_server_of_a_process_with_tenure_now_stands_at_that_moment(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """``create_app()`` as the server process calls it (no settings given): the clock of
    the process stands at TENURE_NOW, so what it writes carries that time."""
    from tenure.schema.server import create_app

    url = f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("TENURE_DATABASE_URL", url)
    monkeypatch.setenv("TENURE_PLUGINS", "")
    monkeypatch.setenv("TENURE_NOW", "2031-05-06T07:08:09+00:00")
    CliRunner().invoke(main, ["migrate"], catch_exceptions=False)

    async def run() -> Any:
        async with TenureHarness.start(url, plugins=[], create_tables=False) as harness:
            key = await harness.key("admin")
        app = create_app(background=False)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://tenure") as client:
            answer = await client.post("/graphql", headers={"Authorization": f"Bearer {key}"}, json={
                "query": 'mutation { createCustomer(input: {name: "Ada"}) { customer { createdAt } } }'})
        return answer.json()

    body = asyncio.run(run())
    assert body["data"]["createCustomer"]["customer"]["createdAt"].startswith("2031-05-06T07:08:09")


UPCOMING = """query($d: Int!) { upcoming(days: $d) { day items { plugin kind count summary amount unit } } }"""


async def test_upcoming_says_what_the_days_will_do_and_they_do_it(make_tenure: Any) -> None:
    """Points expiring, a member leaving a tier and a customer reaching the no-order rule,
    forecast through GraphQL; then the jobs run day by day and do what was said."""
    with freeze_time(START) as frozen:
        async with make_tenure(plugins=["loyalty", "tiers", "churn"],
                               env={"TENURE_LOYALTY_EXPIRY_DAYS": "30", "TENURE_LOYALTY_RETURN_WINDOW_DAYS": "0",
                                    "TENURE_LOYALTY_POINT_VALUE_MINOR": "2"}) as app:
            made = await app.ok('mutation { createEarnRule(input: {name: "Base", kind: "base", points: 1, '
                                'perAmount: 100}) { userErrors { message } } }')
            assert made["createEarnRule"]["userErrors"] == []
            async with app.transaction() as ctx:
                ada = await customers.create_customer(ctx, CustomerData(name="Ada"))
                await orders.record_order(ctx, OrderData(customer_id=ada.id, channel="shop", external_id="a-1",
                                                         currency="USD", amount=25000,
                                                         placed_at=START - timedelta(days=80)))
            await app.run_jobs()
            await app.jobs.run("loyalty.release_pending")
            member = await app.gql(UPCOMING, {"d": 30}, key=app.member_token(ada.id))
            wrong = await app.gql(UPCOMING, {"d": 400}, key=await app.key("admin"))
            ahead = (await app.ok(UPCOMING, {"d": 40}))["upcoming"]
            balance_before = await app.scalar("SELECT balance FROM loyalty_accounts")
            expired_on: list[date] = []
            for n in range(1, 41):  # the expiry job at its own time, 02:00 each day
                frozen.set((START + timedelta(days=n)).replace(hour=2))
                await app.jobs.run("loyalty.expire_points")
                if not expired_on and await app.scalar("SELECT balance FROM loyalty_accounts") == 0:
                    expired_on.append(frozen.now().date())
    kinds = Counter(i["kind"] for d in ahead for i in d["items"])
    expiring = [(d["day"], i) for d in ahead for i in d["items"] if i["kind"] == "loyalty.points_expire"]
    assert balance_before == 250
    assert len(expiring) == 1 and expiring[0][1]["amount"] == 250 and expiring[0][1]["unit"] == "points"
    assert "worth 500" in expiring[0][1]["summary"]
    # The expiry job (02:00 daily) takes the points on the day the forecast named.
    assert [date.fromisoformat(expiring[0][0])] == expired_on
    no_order = [(d["day"], i["count"]) for d in ahead for i in d["items"] if i["kind"] == "churn.no_order"]
    assert no_order == [((START - timedelta(days=80) + timedelta(days=90)).date().isoformat(), 1)]
    assert kinds["loyalty.points_expire"] == 1
    assert wrong["errors"][0]["message"] == "from 1 to 366 days"
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
