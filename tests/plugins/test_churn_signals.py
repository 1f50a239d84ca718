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

from tenure.core.plugins import hookimpl
from tenure.core.services import customers, interactions, orders
from tenure.testing import TenureHarness, freeze_time, migration_differences
from tests.plugins.churn_support import NOW, TUNED, load_population, risk


async def test_a_low_survey_score_lowers_health_while_nps_is_on(make_tenure: Any) -> None:
    from tenure.plugins.nps import service as nps
    from tenure.plugins.nps.models import Invitation, Response

    with freeze_time(NOW):
        async with make_tenure(plugins=["churn", "nps"], env=TUNED) as tenure:
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
    # The nps plugin's signal at its own default weight (45): a warning by itself.
    assert seen["churnRisk"]["score"] == 55 and seen["churnRisk"]["level"] == "MEDIUM"
    assert seen["churnRisk"]["reasons"] == ["a low score in the latest survey"]


async def test_a_subscription_ending_without_renewal_lowers_health(make_tenure: Any) -> None:
    from tenure.plugins.renewals import service as renewals

    with freeze_time(NOW):
        async with make_tenure(plugins=["churn", "renewals"], env=TUNED) as tenure:
            ids = await load_population(tenure)
            async with tenure.transaction() as ctx:
                await renewals.create_plan(ctx, code="pro", name="Pro", reminder_days=None)
                await renewals.create_subscription(ctx, customer_id=ids["S"], plan="pro", value=9900,
                                                   starts_on=date(2025, 6, 20), ends_on=date(2026, 6, 20))
            await tenure.jobs.run("churn.rescore")
            seen = await risk(tenure, ids["S"])
    assert seen["churnRisk"]["score"] == 55 and seen["churnRisk"]["level"] == "MEDIUM"
    assert seen["churnRisk"]["reasons"] == ["a subscription ends soon without renewal"]


async def test_an_event_rescores_its_customer_and_a_merge_moves_warnings(make_tenure: Any) -> None:
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
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
        from tenure.core.contributions import PluginInfo

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
                               env={**TUNED, "TENURE_CHURN_WIN_BACK": "true"}) as tenure:
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
        env = {**TUNED, "TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "churn", "TENURE_CHURN_RECOUNT_ABOVE": "1"}
        cli = __import__("tenure.cli", fromlist=["main"]).main
        result = CliRunner().invoke(cli, ["churn", "rescore"], env=env)
        again = CliRunner().invoke(cli, ["churn", "rescore"], env=env)
        recounted = CliRunner().invoke(cli, ["churn", "rescore", "--recount"], env=env)

        async def check() -> Any:
            async with TenureHarness.start(url, plugins=["churn"], create_tables=False, env=TUNED) as tenure:
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


async def test_each_rule_at_its_default_raises_a_warning_by_itself(make_tenure: Any) -> None:
    """With no weight tuned, one rule firing is enough: the README's "no order for 90 days"
    flags P's neighbour who last ordered 91 days ago, and each of C (complaints), F
    (interactions falling) and P (a long gap) is warned on one reason alone."""
    with freeze_time(NOW):
        async with make_tenure(plugins=["churn"]) as tenure:
            ids = await load_population(tenure)
            async with tenure.transaction() as ctx:
                quiet = await customers.create_customer(ctx, customers.CustomerData(name="Q"))
                await orders.record_order(ctx, orders.OrderData(
                    customer_id=quiet.id, channel="shop", external_id="Q-0", currency="USD", amount=900,
                    placed_at=NOW - timedelta(days=91)))
            await tenure.run_jobs()
            await tenure.jobs.run("churn.rescore")
            seen = {name: await risk(tenure, cid) for name, cid in {**ids, "Q": quiet.id}.items()}
            warned = (await tenure.ok("{ churnWarnings(first: 50) { nodes { customer { name } reasons } } }"))
    by_name = {w["customer"]["name"]: w["reasons"] for w in warned["churnWarnings"]["nodes"]}
    assert seen["Q"]["churnRisk"]["score"] == 55 and seen["Q"]["churnRisk"]["reasons"] == ["no order for 91 days"]
    assert by_name == {"Q": ["no order for 91 days"], "L": ["no order for 94 days, usual gap 21"],
                       "C": ["1 complaint and 1 cancelled order recently"],
                       "F": ["interactions fell from 4 to 0 against the previous period"],
                       "P": ["no order for 60 days, usual gap 10"]}


def check_in_plugin() -> types.ModuleType:
    """A partner's plugin (a gym): a customer's check-ins are interactions of kind
    ``check_in``; none for the threshold's days is a churn signal."""
    from tenure.core.contributions import PluginInfo
    from tenure.plugins.churn.signals import ChurnSignal, SignalQuery

    module = types.ModuleType("gym")

    @hookimpl
    def tenure_plugin_info() -> PluginInfo:
        return PluginInfo(name="gym", version="1.0", summary="check-ins")

    def no_check_in(q: SignalQuery) -> str:
        return f"""SELECT i.customer_id FROM interactions i
WHERE {q.among('i.customer_id')} AND i.kind = 'check_in'
GROUP BY i.customer_id HAVING {q.days_since('MAX(i.occurred_at)')} >= {q.threshold}"""

    @hookimpl
    def churn_signals() -> list[ChurnSignal]:
        return [ChurnSignal(name="no_check_in", reason="no check-in for {threshold} days", threshold=14,
                            weight=45, flagged=no_check_in, minimum=1, threshold_means="days without a check-in")]

    module.tenure_plugin_info = tenure_plugin_info  # type: ignore[attr-defined]
    module.churn_signals = churn_signals  # type: ignore[attr-defined]
    return module


async def test_a_partner_plugin_adds_a_signal_that_staff_tune_like_any_rule(make_tenure: Any) -> None:
    rules = "{ churnRules { kind plugin enabled threshold weight means } }"
    save = """mutation($i: SaveChurnRuleInput!) { saveChurnRule(input: $i) {
        rule { kind threshold } userErrors { field code message } } }"""
    with freeze_time(NOW) as frozen:
        async with make_tenure(plugins=["churn", "gym"], extra_plugins=[check_in_plugin()]) as tenure:
            async with tenure.transaction() as ctx:
                regular = await customers.create_customer(ctx, customers.CustomerData(name="Regular"))
                lapsing = await customers.create_customer(ctx, customers.CustomerData(name="Lapsing"))
                for n in range(6):
                    await interactions.log_interaction(ctx, regular.id, "check_in", "door", NOW - timedelta(days=2 * n))
                    await interactions.log_interaction(ctx, lapsing.id, "check_in", "door",
                                                       NOW - timedelta(days=20 + 2 * n))
            await tenure.run_jobs()
            await tenure.jobs.run("churn.rescore")
            listed = (await tenure.ok(rules))["churnRules"]
            first = {n: await risk(tenure, c.id) for n, c in (("Regular", regular), ("Lapsing", lapsing))}
            too_low = (await tenure.ok(save, {"i": {"kind": "no_check_in", "threshold": 0}}))["saveChurnRule"]
            relaxed = (await tenure.ok(save, {"i": {"kind": "no_check_in", "threshold": 30}}))["saveChurnRule"]
            await tenure.jobs.run("churn.rescore")
            after_relaxing = await risk(tenure, lapsing.id)
            # Back to 14 days; the regular stays away; an interaction rescores them at once.
            await tenure.ok("""mutation { deleteChurnRule(input: {kind: "no_check_in"}) { rule { threshold } } }""")
            frozen.advance(days=15)
            async with tenure.transaction() as ctx:
                await interactions.log_interaction(ctx, regular.id, "email", "mail", frozen.now())
            await tenure.run_jobs()
            regular_later = await risk(tenure, regular.id)
    assert {"kind": "no_check_in", "plugin": "gym", "enabled": True, "threshold": 14.0, "weight": 45,
            "means": "days without a check-in"} in listed
    assert first["Regular"]["churnRisk"]["score"] == 100
    assert first["Lapsing"]["churnRisk"]["score"] == 55 and first["Lapsing"]["churnRisk"]["level"] == "MEDIUM"
    assert first["Lapsing"]["churnRisk"]["reasons"] == ["no check-in for 14 days"]
    assert first["Lapsing"]["churnRisk"]["since"] is not None
    assert too_low["userErrors"][0]["field"] == ["input", "threshold"] and "days without a check-in" in too_low[
        "userErrors"][0]["message"]
    assert relaxed["rule"] == {"kind": "no_check_in", "threshold": 30.0}
    assert after_relaxing["churnRisk"]["score"] == 100 and after_relaxing["churnRisk"]["since"] is None
    assert regular_later["churnRisk"]["reasons"] == ["no check-in for 14 days"]


@pytest.mark.sqlite_only
def test_a_rescore_as_of_the_end_of_an_old_history_scores_it_as_it_stood(tmp_path: Path) -> None:
    """A history that ended long ago: scored today every customer is lost; scored as of its
    last day, the steady customer is active and healthy."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'asof.db'}"

    async def load() -> dict[str, int]:
        async with TenureHarness.start(url, plugins=["churn"], env=TUNED) as tenure:
            return await load_population(tenure)

    with freeze_time(NOW):
        ids = asyncio.run(load())
    env = {**TUNED, "TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "churn"}
    cli = __import__("tenure.cli", fromlist=["main"]).main
    today = CliRunner().invoke(cli, ["churn", "rescore"], env={**env, "TENURE_NOW": "2030-01-01T00:00:00+00:00"})

    async def stages() -> dict[str, Any]:
        async with TenureHarness.start(url, plugins=["churn"], create_tables=False, env=TUNED) as tenure:
            return {n: (await risk(tenure, ids[n]))["rfm"]["stage"] for n in ("S", "L")}

    with freeze_time(NOW):
        later = asyncio.run(stages())
    as_of = CliRunner().invoke(cli, ["churn", "rescore", "--as-of", NOW.isoformat()], env=env)
    with freeze_time(NOW):
        then = asyncio.run(stages())
    wrong = CliRunner().invoke(cli, ["churn", "rescore", "--as-of", "2026-06-01"], env=env)
    assert today.exit_code == 0 and as_of.exit_code == 0, (today.output, as_of.output)
    assert later == {"S": "lost", "L": "lost"}
    assert f"as of {NOW.isoformat()}" in as_of.output and "every figure counted afresh" in as_of.output
    assert then == {"S": "active", "L": "high_risk"}
    assert wrong.exit_code != 0 and "with its offset" in wrong.output


def test_the_churn_plugin_imports_no_other_plugin() -> None:
    """Signals come through the hook: the churn plugin's code names no other plugin."""
    import ast

    root = Path(__file__).parents[2] / "plugins" / "churn"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names
                      if n.startswith("plugins.") and not n.startswith("plugins.churn")]
    assert found == []


async def test_a_rescore_as_of_a_moment_before_the_last_one_starts_over(make_tenure: Any) -> None:
    """Scored in 2030 everyone is lost; scored again as of the history's last day, every row
    is written anew (a later rescore's rows are otherwise never overwritten)."""
    async with make_tenure(plugins=["churn"], env=TUNED) as tenure:
        with freeze_time(NOW):
            ids = await load_population(tenure)
        with freeze_time(NOW.replace(year=2030)):
            await tenure.jobs.run("churn.rescore")
        with freeze_time(NOW):
            later = {n: (await risk(tenure, ids[n]))["rfm"]["stage"] for n in ("S", "L")}
            await tenure.jobs.run("churn.rescore")
            then = {n: (await risk(tenure, ids[n]))["rfm"]["stage"] for n in ("S", "L")}
            open_ = await tenure.scalar("SELECT count(*) FROM churn_warnings WHERE status = 'open'")
    assert later == {"S": "lost", "L": "lost"}
    assert then == {"S": "active", "L": "high_risk"} and open_ == 1
