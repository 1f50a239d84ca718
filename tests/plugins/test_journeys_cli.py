"""The shipped 30-day onboarding journey walked through its month with the real CLI on a
SQLite file, as a business would try it: ``tenure migrate``, the journey switched on and
first orders recorded through GraphQL, then ``tenure jobs run --at`` day after day: the
tips email on day 3 at 10:00 (once, however often the run is repeated), nothing for the
customer who ordered again, a call task for the owner on day 30."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenure.testing import TenureHarness, freeze_time
from tests.core.helpers import record_order
from tests.core.test_messages import owner
from tests.plugins.journeys_support import START, customers
from tests.support.receivers import smtp_server

ROOT = Path(__file__).resolve().parents[2]
DAY0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def tenure(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tenure.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def set_up(url: str) -> dict[str, int]:
    async with TenureHarness.start(url, plugins=["journeys"], create_tables=False) as app:
        with freeze_time(DAY0):
            olga = await owner(app, "olga@shop.test")
            started = (await app.ok(START, {"input": {"template": "onboarding_30_days", "holdoutPercent": 0}}
                                    ))["startJourneyTemplate"]
            assert started["userErrors"] == [] and started["journey"]["trigger"] == "first_order"
            ada, ben, cy = await customers(app, 3, owner_id=olga)
            for n, cid in enumerate((ada, ben, cy)):
                assert (await record_order(app, str(cid), f"first-{n}", 4000))["userErrors"] == []
        return {"ada": ada, "ben": ben, "cy": cy, "olga": olga}


async def order_again(url: str, customer_id: int, at: datetime) -> None:
    async with TenureHarness.start(url, plugins=["journeys"], create_tables=False) as app:
        with freeze_time(at):
            assert (await record_order(app, str(customer_id), "again", 2500))["userErrors"] == []


async def scalar(url: str, sql: str) -> object:
    async with TenureHarness.start(url, plugins=["journeys"], create_tables=False) as app:
        return await app.scalar(sql)


def test_the_onboarding_template_walks_a_customer_through_thirty_days(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    with smtp_server() as mailbox:
        env = {**os.environ, "TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "journeys", "TENURE_ENVIRONMENT": "test",
               "TENURE_SMTP_HOST": "127.0.0.1", "TENURE_SMTP_PORT": str(mailbox.port), "PYTHONPATH": str(ROOT)}
        env.pop("TENURE_NOW", None)
        tenure(env, "migrate")
        assert "journeys.run" in tenure(env, "jobs", "list")
        people = asyncio.run(set_up(url))

        tenure(env, "jobs", "run", "--at", "2027-03-04T09:55:00+00:00")  # day 3, before 10:00
        assert mailbox.messages == []
        for _ in range(2):  # run again at the same moment: nothing is sent twice
            tenure(env, "jobs", "run", "--at", "2027-03-04T10:05:00+00:00")
        assert sorted(r for rcpts, _ in mailbox.messages for r in rcpts) == [
            "c0@example.com", "c1@example.com", "c2@example.com"]
        assert {m["Subject"] for _, m in mailbox.messages} == {
            f"Customer c{n}, three tips for your start" for n in range(3)}

        asyncio.run(order_again(url, people["cy"], datetime(2027, 3, 10, 12, 0, tzinfo=UTC)))
        tenure(env, "jobs", "run", "--at", "2027-03-20T10:05:00+00:00")
        assert asyncio.run(scalar(url, "SELECT count(*) FROM tasks")) == 0
        tenure(env, "jobs", "run", "--at", "2027-03-31T10:05:00+00:00")  # day 30
        tenure(env, "jobs", "run", "--at", "2027-03-31T10:10:00+00:00")
        tasks = asyncio.run(scalar(url, "SELECT group_concat(customer_id || ':' || assignee_id || ':' || title, ';') "
                                        "FROM (SELECT * FROM tasks ORDER BY customer_id)"))
        assert tasks == ";".join(f"{people[p]}:{people['olga']}:Onboarding call (day 30)" for p in ("ada", "ben"))
        assert len(mailbox.messages) == 3
        exits = asyncio.run(scalar(url, "SELECT group_concat(status || ':' || coalesce(exit_reason, ''), ',') FROM "
                                        "(SELECT * FROM journeys_entries ORDER BY customer_id)"))
        assert exits == "completed:,completed:,exited:ordered"


def test_the_schedule_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenure.core.plugins import load_plugins
    from tenure.core.settings import Settings, SettingsError

    def schedule(**env: str) -> str | None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_env({"TENURE_PLUGINS": "journeys", **env}, env_file=None)
        return load_plugins(settings).jobs["journeys.run"].schedule

    assert schedule() == "*/5 * * * *"
    assert schedule(TENURE_JOURNEYS_SCHEDULE="*/2 * * * *") == "*/2 * * * *"
    assert schedule(TENURE_SCHEDULE_JOURNEYS_RUN="off") is None
    monkeypatch.delenv("TENURE_SCHEDULE_JOURNEYS_RUN")
    with pytest.raises(SettingsError, match="TENURE_JOURNEYS_SCHEDULE: 'every minute' is not a cron expression"):
        schedule(TENURE_JOURNEYS_SCHEDULE="every minute")
