"""Churn signals from other plugins (nps, renewals), rescoring after events, merges, the
win-back hook, the ``tenure churn rescore`` command and the plugin's migration."""

from __future__ import annotations

import asyncio
import types
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core.plugins import hookimpl
from core.services import customers, interactions
from core.testing import TenureHarness, freeze_time, migration_differences
from tests.plugins.churn_support import NOW, load_population, risk


async def test_a_low_survey_score_lowers_health_while_nps_is_on(make_tenure: Any) -> None:
    from plugins.nps import service as nps
    from plugins.nps.models import Invitation, Response

    with freeze_time(NOW):
        async with make_tenure(plugins=["churn", "nps"]) as tenure:
            ids = await load_population(tenure)
            async with tenure.transaction() as ctx:
                survey = await nps.create_survey(ctx, name="After order", question="Recommend us?", scale="nps",
                                                 trigger="manual")
                await nps.send_survey(ctx, survey.id, customer_ids=[ids["S"]])
                invitation_id = await ctx.session.scalar(
                    select(Invitation.id).where(Invitation.customer_id == ids["S"]))
                ctx.session.add(Response(invitation_id=invitation_id, survey_id=survey.id, customer_id=ids["S"],
                                         scale="nps", score=3, comment="slow", category="detractor",
                                         answered_at=NOW - timedelta(days=1)))
            await tenure.jobs.run("churn.rescore")
            seen = await risk(tenure, ids["S"])
    assert seen["churnRisk"]["score"] == 75
    assert seen["churnRisk"]["reasons"] == ["a low score in the latest survey"]


async def test_a_subscription_ending_without_renewal_lowers_health(make_tenure: Any) -> None:
    from plugins.renewals import service as renewals

    with freeze_time(NOW):
        async with make_tenure(plugins=["churn", "renewals"]) as tenure:
            ids = await load_population(tenure)
            async with tenure.transaction() as ctx:
                await renewals.create_plan(ctx, code="pro", name="Pro", reminder_days=None)
                await renewals.create_subscription(ctx, customer_id=ids["S"], plan="pro", value=9900,
                                                   starts_on=date(2025, 6, 20), ends_on=date(2026, 6, 20))
            await tenure.jobs.run("churn.rescore")
            seen = await risk(tenure, ids["S"])
    assert seen["churnRisk"]["score"] == 70
    assert seen["churnRisk"]["reasons"] == ["a subscription ends soon without renewal"]


async def test_an_event_rescores_its_customer_and_a_merge_moves_warnings(make_tenure: Any) -> None:
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"]) as tenure:
            ids = await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            async with tenure.transaction() as ctx:
                for days in (1, 2):
                    await interactions.log_interaction(ctx, ids["S"], "complaint", "email",
                                                       NOW - timedelta(days=days))
            await tenure.run_jobs()
            complained = await risk(tenure, ids["S"])
            async with tenure.transaction() as ctx:
                await customers.merge_customers(ctx, ids["N"], ids["L"])
            await tenure.run_jobs()
            merged = (await tenure.ok("""{ churnWarnings(filter: {status: null}, first: 10) {
                nodes { status customer { name } } } }"""))["churnWarnings"]["nodes"]
            survivor = await risk(tenure, ids["N"])
    assert complained["churnRisk"]["score"] == 80
    assert complained["churnRisk"]["reasons"] == ["2 complaints recently"]
    # N, who never ordered, takes over L's orders (the last 94 days ago) and L's open warning.
    assert merged == [{"status": "OPEN", "customer": {"name": "N"}}]
    assert survivor["rfm"]["recencyDays"] == 94 and survivor["churnRisk"]["since"] is not None


calls: list[tuple[int, int, list[str]]] = []


def win_back_plugin() -> types.ModuleType:
    module = types.ModuleType("winback_test_plugin")

    @hookimpl
    def tenure_plugin_info() -> Any:
        from core.contributions import PluginInfo

        return PluginInfo(name="winback", version="0", summary="records win-back offers", requires=("churn",))

    @hookimpl
    def churn_win_back(ctx: Any, customer_id: int, score: int, reasons: list[str]) -> Any:
        async def offer() -> None:
            calls.append((customer_id, score, reasons))

        return offer()

    module.tenure_plugin_info = tenure_plugin_info  # type: ignore[attr-defined]
    module.churn_win_back = churn_win_back  # type: ignore[attr-defined]
    return module


async def test_win_back_is_offered_once_per_warning_when_switched_on(make_tenure: Any) -> None:
    calls.clear()
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn", "winback"], extra_plugins=[win_back_plugin()],
                               env={"TENURE_CHURN_WIN_BACK": "true"}) as tenure:
            ids = await load_population(tenure)
            await tenure.jobs.run("churn.rescore")
            await tenure.jobs.run("churn.rescore")
    assert calls == [(ids["L"], 30, ["no order for 94 days, usual gap 21"])]


@pytest.mark.sqlite_only
def test_the_cli_rescores_with_a_progress_bar(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def load() -> dict[str, int]:
        async with TenureHarness.start(url, plugins=["churn"]) as tenure:
            return await load_population(tenure)

    with freeze_time(NOW):
        ids = asyncio.run(load())
        env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "churn", "TENURE_CHURN_RECOUNT_ABOVE": "1"}
        cli = __import__("core.cli", fromlist=["main"]).main
        result = CliRunner().invoke(cli, ["churn", "rescore"], env=env)
        again = CliRunner().invoke(cli, ["churn", "rescore"], env=env)
        recounted = CliRunner().invoke(cli, ["churn", "rescore", "--recount"], env=env)

        async def check() -> Any:
            async with TenureHarness.start(url, plugins=["churn"], create_tables=False) as tenure:
                return await risk(tenure, ids["L"])

        seen = asyncio.run(check())
    assert result.exit_code == 0, result.output
    assert "rescoring" in result.output and "scored 7 customers" in result.output
    assert "1 open warnings" in result.output and "every figure counted afresh" in result.output
    assert "figures moved on, 0 customers counted afresh, 0 rows rewritten" in again.output, again.output
    assert "every figure counted afresh, 0 rows rewritten" in recounted.output, recounted.output
    assert seen["churnRisk"]["score"] == 30


@pytest.mark.sqlite_only
def test_the_migration_creates_what_the_models_declare(tmp_path: Path) -> None:
    assert migration_differences(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", ["churn"], only="churn") == []
