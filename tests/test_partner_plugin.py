"""The partner plugin (tests/partner_plugin, installed as its own package) end to end: its
table and migration, type, Customer fields, mutation, job and merge handler; and a schema
built with it off carries no trace of it, even in the same process."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner

from tenure.cli import main
from tenure.core.plugins import entry_point_candidates, load_plugins
from tenure.core.settings import Settings
from tenure.schema.build import build_schema
from tenure.testing import pk_of
from tests.core.helpers import ERRORS, create_customer

RECORD = f"""mutation($input: RecordVisitInput!) {{
  recordVisit(input: $input) {{ created visit {{ id venue visitedAt thankedAt }} {ERRORS} }}
}}"""
VISITS = """query($id: ID!) { customer(id: $id) { visitCount visits { venue thankedAt }
  timeline { edges { node { kind summary } } } } }"""
MERGE = f"""mutation($input: MergeCustomersInput!) {{
  mergeCustomers(input: $input) {{ moved {{ kind count }} customer {{ visitCount }} {ERRORS} }}
}}"""
TRACES = re.compile(r"\bVisit\b|\bvisits\b|visitCount|recordVisit|RecordVisit")


def test_it_is_installed_through_the_entry_point() -> None:
    (candidate,) = [c for c in entry_point_candidates() if c.info.name == "visits"]
    assert candidate.origin == "tenure-visits"
    assert candidate.info.migrations == "tenure_visits:migrations"


async def test_visits_end_to_end(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["visits"]) as tenure:
        cid = await create_customer(tenure, "Vera")
        given = {"customerId": cid, "venue": "North", "externalId": "door-1", "visitedAt": "2026-01-10T10:00:00Z"}
        first = (await tenure.ok(RECORD, {"input": given}))["recordVisit"]
        assert first["created"] is True and first["visit"]["thankedAt"] is None
        again = (await tenure.ok(RECORD, {"input": given}))["recordVisit"]
        assert again["created"] is False and again["visit"]["id"] == first["visit"]["id"]
        assert await tenure.run_jobs() == {"done": 1}
        data = (await tenure.ok(VISITS, {"id": cid}))["customer"]
        assert data["visitCount"] == 1 and data["visits"][0]["venue"] == "North"
        assert data["visits"][0]["thankedAt"] is not None
        timeline = [(e["node"]["kind"], e["node"]["summary"]) for e in data["timeline"]["edges"]]
        assert ("event", "Thanked for the visit to North") in timeline
        assert ("interaction", "Visited North") in timeline
        # The job is idempotent: run again by hand, it thanks nobody twice.
        await tenure.jobs.run("visits.thank", {"visitId": pk_of(first["visit"]["id"])})
        assert await tenure.scalar("SELECT count(*) FROM events WHERE type = 'visits.thanked'") == 1
        before = await tenure.scalar("SELECT count(*) FROM visits_visits")
        late = (await tenure.ok(RECORD, {"input": {**given, "externalId": "door-2",
                                                   "visitedAt": "2999-01-01T00:00:00Z"}}))["recordVisit"]
        assert late["userErrors"] == [{"field": ["input", "visitedAt"], "message": "must not be in the future",
                                       "code": "INVALID_TIME"}]
        assert await tenure.scalar("SELECT count(*) FROM visits_visits") == before


async def test_a_merge_moves_the_plugins_rows(make_tenure: Callable[..., Any]) -> None:
    async with make_tenure(plugins=["visits"]) as tenure:
        survivor = await create_customer(tenure, "Vera")
        merged = await create_customer(tenure, "Vera B.")
        for n, cid in enumerate([survivor, merged, merged]):
            await tenure.ok(RECORD, {"input": {"customerId": cid, "venue": "South", "externalId": f"d{n}"}})
        dry = (await tenure.ok(MERGE, {"input": {"survivorId": survivor, "mergedId": merged, "dryRun": True}}))
        assert dry["mergeCustomers"]["customer"]["visitCount"] == 1
        assert await tenure.scalar("SELECT count(*) FROM visits_visits WHERE customer_id = :c", c=pk_of(merged)) == 2
        done = (await tenure.ok(MERGE, {"input": {"survivorId": survivor, "mergedId": merged}}))["mergeCustomers"]
        assert done["userErrors"] == [] and done["customer"]["visitCount"] == 3
        assert await tenure.scalar("SELECT count(*) FROM visits_visits WHERE customer_id = :c", c=pk_of(merged)) == 0
        assert await tenure.scalar("SELECT count(*) FROM visits_visits") == 3


def _settings(plugins: str) -> Settings:
    return Settings.from_env({"TENURE_PLUGINS": plugins, "TENURE_DATABASE_URL": "sqlite+aiosqlite:///unused.db"},
                             env_file=None)


def test_off_leaves_no_trace_even_in_the_same_process() -> None:
    on = load_plugins(_settings("visits"))
    sdl_on = str(build_schema(on, _settings("visits")))
    assert "visitCount: Int!" in sdl_on and "recordVisit(input: RecordVisitInput!)" in sdl_on
    assert "visits.thank" in on.jobs
    off = load_plugins(_settings(""))
    sdl_off = str(build_schema(off, _settings("")))
    assert TRACES.search(sdl_off) is None, TRACES.search(sdl_off)
    assert not any(name.startswith("visits.") for name in off.jobs)
    assert not off.is_enabled("visits")
    # Built again with it on, after the off one: the same fields come back.
    assert str(build_schema(load_plugins(_settings("visits")), _settings("visits"))) == sdl_on


def test_tenure_plugins_lists_it_on_or_off() -> None:
    runner = CliRunner()
    on = runner.invoke(main, ["plugins"], env={"TENURE_PLUGINS": "visits"})
    assert on.exit_code == 0, on.output
    line = next(line for line in on.output.splitlines() if line.startswith("visits"))
    assert line.split()[:4] == ["visits", "on", "1.0.0", "tenure-visits"]
    off = runner.invoke(main, ["plugins"], env={"TENURE_PLUGINS": ""})
    assert next(line for line in off.output.splitlines() if line.startswith("visits")).split()[1] == "off"
