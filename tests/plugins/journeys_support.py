"""GraphQL snippets and helpers shared by the journeys tests."""

from __future__ import annotations

from typing import Any

from tenure.core.services.customers import CustomerData, create_customer
from tenure.testing import TenureHarness

ERRORS = "userErrors { field message code }"
JOURNEY = """id name status trigger triggerParams version holdoutPercent conversionDays exits template
  conditions { tags withoutTags consent channels tiers } steps { position wait at action params }"""
CREATE = f"""mutation($input: CreateJourneyInput!) {{ createJourney(input: $input) {{
  journey {{ {JOURNEY} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdateJourneyInput!) {{ updateJourney(input: $input) {{
  journey {{ {JOURNEY} }} {ERRORS} }} }}"""
PAUSE = f"""mutation($id: ID!) {{ pauseJourney(id: $id) {{ journey {{ id status }} {ERRORS} }} }}"""
RESUME = f"""mutation($id: ID!) {{ resumeJourney(id: $id) {{ journey {{ id status }} {ERRORS} }} }}"""
START = f"""mutation($input: StartJourneyTemplateInput!) {{ startJourneyTemplate(input: $input) {{
  journey {{ {JOURNEY} }} {ERRORS} }} }}"""
FIGURES = """query($id: ID!) { journey(id: $id) { figures { entered heldOut active completed exited
  steps { position action done skipped } converted holdoutConverted conversionRate holdoutConversionRate lift } } }"""
PREVIEW = """query($id: ID!, $days: Int!) { journeyPreview(id: $id, days: $days) {
  days entries customers heldOut sampleCustomerIds } }"""

JOURNEY_TABLES = ("journeys_journeys", "journeys_entries", "journeys_step_runs")


async def create(tenure: TenureHarness, **fields: Any) -> dict[str, Any]:
    """createJourney with ``fields`` (camelCase); returns the payload."""
    data = await tenure.ok(CREATE, {"input": fields})
    return data["createJourney"]  # type: ignore[no-any-return]


async def created(tenure: TenureHarness, **fields: Any) -> dict[str, Any]:
    payload = await create(tenure, **fields)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["journey"]  # type: ignore[no-any-return]


async def customers(tenure: TenureHarness, count: int, *, prefix: str = "c", consent: bool = True,
                    **fields: Any) -> list[int]:
    ids = []
    async with tenure.transaction() as ctx:
        for n in range(count):
            row = await create_customer(ctx, CustomerData(name=f"Customer {prefix}{n}",
                                                          emails=[f"{prefix}{n}@example.com"],
                                                          consent_email=consent, **fields))
            ids.append(row.id)
    return ids


async def counts(tenure: TenureHarness, *tables: str) -> dict[str, int]:
    return {t: int(await tenure.scalar(f"SELECT count(*) FROM {t}")) for t in tables}


async def run_journeys(tenure: TenureHarness) -> None:
    """The journeys job once, then everything it queued (message deliveries ...)."""
    await tenure.jobs.run("journeys.run")
