"""`tenure import` / `tenure export`: rows go through the services one savepoint each, refused
rows are reported with their reason and leave nothing behind, and importing twice changes
nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tenure.cli import main
from tenure.core.db import Database
from tenure.core.exports import records
from tenure.core.import_files import ImportError_, Rejects, parse_mapping, read_rows
from tenure.core.imports import ImportReport, import_rows
from tenure.testing import TenureHarness

CUSTOMERS = """Kundennr,Name,E-Mail,tags,birthday,consent_email
C1,Ada Lovelace,ada@example.com,vip;early,1815-12-10,yes
C2,Grace Hopper,grace@example.com,,,no
C3,,nobody@example.com,,,
C4,Bad Mail,not-an-email,,,
C5,Katherine Johnson,kj@example.com;k.johnson@example.com,,1918-08-26,
"""
MAPPING = ("Kundennr=external_id", "E-Mail=email")
TABLES = ("customers", "customer_contacts", "customer_identities", "customer_tags", "orders", "order_lines",
          "interactions", "events", "outbox")


async def snapshot(tenure: TenureHarness) -> dict[str, Any]:
    """What a user could see change: every row count and the customers' last update."""
    state = {t: await tenure.scalar(f"SELECT count(*) FROM {t}") for t in TABLES}
    state["updated"] = str(await tenure.scalar("SELECT max(updated_at) FROM customers"))
    state["spent"] = await tenure.scalar("SELECT sum(total_spent) FROM customers")
    return state


async def run_import(tenure: TenureHarness, kind: str, path: Path, mapping: tuple[str, ...] = (),
                     **options: Any) -> ImportReport:
    rows, rejected, _ = read_rows(path, kind, None, parse_mapping(mapping, kind))
    report = await import_rows(tenure.db, tenure.settings, tenure.plugins, kind, rows, **options)
    report.rejected = Rejects(sorted([*rejected, *report.rejected], key=lambda r: r.line))
    return report


@pytest.fixture
def customers_csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text(CUSTOMERS)
    return path


async def test_customers_import_with_mapping_and_rejects_bad_rows_whole(
    tenure: TenureHarness, customers_csv: Path
) -> None:
    report = await run_import(tenure, "customers", customers_csv, MAPPING)
    assert (report.created, report.updated, report.already_imported) == (3, 0, 0)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (4, "name: must not be empty"),
        (5, "emails: 'not-an-email' is not an email address"),
    ]
    data = await tenure.ok("{ customers(first: 10) { edges { node { name emails tags consent { email } } } } }")
    people = {e["node"]["name"]: e["node"] for e in data["customers"]["edges"]}
    assert sorted(people) == ["Ada Lovelace", "Grace Hopper", "Katherine Johnson"]
    ada = people["Ada Lovelace"]
    assert sorted(ada["tags"]) == ["early", "vip"] and ada["consent"]["email"] is True
    assert people["Katherine Johnson"]["emails"] == ["kj@example.com", "k.johnson@example.com"]
    # The refused rows left nothing: not their contacts, not their identities.
    assert await tenure.scalar("SELECT count(*) FROM customer_contacts WHERE value IN "
                               "('nobody@example.com', 'not-an-email')") == 0
    assert await tenure.scalar("SELECT count(*) FROM customer_identities WHERE value IN ('C3', 'C4')") == 0


async def test_importing_the_same_files_twice_changes_nothing(
    tenure: TenureHarness, customers_csv: Path, tmp_path: Path
) -> None:
    orders = tmp_path / "orders.jsonl"
    orders.write_text("\n".join(json.dumps(o) for o in [
        {"customer_external_id": "C1", "channel": "shop", "external_id": "A-1", "amount": 1200,
         "placed_at": "2026-01-02T10:00:00Z"},
        {"customer_external_id": "C2", "channel": "shop", "external_id": "A-2",
         "lines": [{"sku": "tea", "quantity": 2, "unit_price": 450}]},
    ]) + "\n")
    visits = tmp_path / "visits.csv"
    # Two identical visits are two visits; without an external id only the import keeps them apart.
    visits.write_text("customer_external_id,kind,channel,occurred_at\n"
                      "C1,visit,store,2026-02-01T09:00:00Z\nC1,visit,store,2026-02-01T09:00:00Z\n")
    await run_import(tenure, "customers", customers_csv, MAPPING)
    assert (await run_import(tenure, "orders", orders)).created == 2
    assert (await run_import(tenure, "interactions", visits)).created == 2
    before = await snapshot(tenure)
    assert before["orders"] == 2 and before["interactions"] == 2 and before["spent"] == 2100

    exported = [r async for r in records(tenure.db, "orders")]
    assert [(o["customer_external_id"], o["external_id"], o["amount"]) for o in exported] == [
        ("C1", "A-1", 1200), ("C2", "A-2", 900)]
    assert exported[1]["lines"] == [{"sku": "tea", "name": "", "category": None, "quantity": 2, "unit_price": 450}]

    again = [await run_import(tenure, "customers", customers_csv, MAPPING),
             await run_import(tenure, "orders", orders), await run_import(tenure, "interactions", visits)]
    assert [(r.created, r.updated, r.already_imported) for r in again] == [(0, 0, 3), (0, 0, 2), (0, 0, 2)]
    assert await snapshot(tenure) == before


async def test_a_changed_row_updates_and_a_stopped_run_resumes(tenure: TenureHarness, customers_csv: Path) -> None:
    rows, _, _ = read_rows(customers_csv, "customers", None, parse_mapping(MAPPING, "customers"))
    first = await import_rows(tenure.db, tenure.settings, tenure.plugins, "customers", rows[:2])
    assert first.created == 2
    resumed = await import_rows(tenure.db, tenure.settings, tenure.plugins, "customers", rows)
    assert (resumed.created, resumed.already_imported, len(resumed.rejected)) == (1, 2, 2)

    customers_csv.write_text(CUSTOMERS.replace("Grace Hopper", "Grace B. Hopper"))  # noqa: ASYNC240
    changed = await run_import(tenure, "customers", customers_csv, MAPPING)
    assert (changed.created, changed.updated, changed.already_imported) == (0, 1, 2)
    assert await tenure.scalar("SELECT name FROM customers c JOIN customer_identities i ON i.customer_id = c.id "
                               "WHERE i.value = 'C2'") == "Grace B. Hopper"
    assert await tenure.scalar("SELECT count(*) FROM customers") == 3


async def test_a_dry_run_checks_every_row_and_writes_nothing(tenure: TenureHarness, customers_csv: Path) -> None:
    before = await snapshot(tenure)
    report = await run_import(tenure, "customers", customers_csv, MAPPING, dry_run=True)
    assert (report.created, len(report.rejected)) == (3, 2)
    assert "3 would be new" in report.lines()[0]
    assert await snapshot(tenure) == before
    assert await tenure.scalar("SELECT count(*) FROM idempotency_records") == 0


async def test_an_order_with_one_bad_line_is_refused_whole(tenure: TenureHarness, customers_csv: Path,
                                                          tmp_path: Path) -> None:
    await run_import(tenure, "customers", customers_csv, MAPPING)
    orders = tmp_path / "orders.csv"
    orders.write_text('customer_external_id,channel,external_id,lines\n'
                      'C1,shop,B-1,"[{""sku"": ""tea"", ""quantity"": 1, ""unit_price"": 300}, '
                      '{""sku"": ""cup"", ""quantity"": 0, ""unit_price"": 900}]"\n'
                      'C9,shop,B-2,"[]"\n'
                      'C1,shop,B-3,\n')
    report = await run_import(tenure, "orders", orders)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "lines[1].quantity: quantity must be between 1 and 100000"),
        (3, "customer_external_id: no customer is known as external 'C9'; import customers first"),
        (4, "amount: give the amount or the lines"),
    ]
    assert await tenure.scalar("SELECT count(*) FROM orders") == 0
    assert await tenure.scalar("SELECT count(*) FROM order_lines") == 0
    assert await tenure.scalar("SELECT sum(order_count) FROM customers") == 0


def test_files_that_cannot_be_read_are_refused_before_any_row(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"external_id,name\nX1,Jos\xe9\n")
    with pytest.raises(ImportError_, match=r"latin.csv is not UTF-8 \(byte 0xe9 on line 2\)"):
        read_rows(latin, "customers")
    unnamed = tmp_path / "people.csv"
    unnamed.write_text("id,full name\n1,Ada\n")
    with pytest.raises(ImportError_, match="no column gives external_id, name"):
        read_rows(unnamed, "customers")
    with pytest.raises(ImportError_, match="customers have no field 'mail'"):
        parse_mapping(["E-Mail=mail"], "customers")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"external_id": "X1", "name": "Jos\xc3\xa9"}\n[1]\n')
    rows, rejected, _ = read_rows(bom, "customers")
    assert rows[0].values == {"external_id": "X1", "name": "José"}
    assert [(r.line, r.reason) for r in rejected] == [(2, "each line must be a JSON object")]


@pytest.mark.sqlite_only
def test_cli_import_export_round_trip(tmp_path: Path, customers_csv: Path, database_url: str) -> None:
    """The commands as an operator runs them: a report file, exit status 1 on rejected rows,
    and an export that imports into a second Tenure unchanged."""
    runner = CliRunner()

    def tenure(url: str, *args: str) -> Any:
        env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "", "TENURE_ENVIRONMENT": "test"}
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    second = f"sqlite+aiosqlite:///{tmp_path / 'second.db'}"
    for url in (database_url, second):
        assert tenure(url, "migrate").exit_code == 0
    report = tmp_path / "rejected.csv"
    result = tenure(database_url, "import", "customers", str(customers_csv), "--map", MAPPING[0], "--map",
                    MAPPING[1], "--report", str(report))
    assert result.exit_code == 1
    assert "5 rows read: 3 were new, 0 were updates, 0 already imported, 2 rejected" in result.stdout
    assert "importing customers" in result.stderr and "line 5: emails:" in result.stderr
    assert report.read_text().splitlines() == [
        "Kundennr,E-Mail,Name,rejected_line,rejected_reason",
        "C3,nobody@example.com,,4,name: must not be empty",
        "C4,not-an-email,Bad Mail,5,emails: 'not-an-email' is not an email address"]
    # The rejects file, fixed in place, imports as it is.
    report.write_text(report.read_text().replace("C3,nobody@example.com,,", "C3,nobody@example.com,Nobody,")
                      .replace("not-an-email,Bad Mail", "bad@example.com,Bad Mail"))
    fixed = tenure(database_url, "import", "customers", str(report), "--map", MAPPING[0], "--map", MAPPING[1])
    assert fixed.exit_code == 0, fixed.output
    assert "2 rows read: 2 were new" in fixed.stdout and "ignored columns" not in fixed.stdout

    exported = tmp_path / "customers.jsonl"
    result = tenure(database_url, "export", "customers", str(exported))
    assert result.exit_code == 0 and "5 customers written" in result.stdout
    result = tenure(second, "import", "customers", str(exported))
    assert result.exit_code == 0, result.output
    assert "5 were new" in result.stdout and "ignored columns" in result.stdout

    def people(url: str) -> list[tuple[Any, ...]]:
        async def read() -> list[tuple[Any, ...]]:
            db = Database(url)
            try:
                return [(r["external_id"], r["name"], r["email"], r["tags"], r["birthday"], r["consent_email"])
                        async for r in records(db, "customers")]
            finally:
                await db.dispose()

        return asyncio.run(read())

    assert people(second) == people(database_url)
    assert len(people(second)) == 5
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"external_id,name\nX1,Jos\xe9\n")
    refused = tenure(second, "import", "customers", str(latin))
    assert refused.exit_code == 1 and "is not UTF-8" in refused.output



def test_rejected_rows_of_a_large_file_reach_the_rejects_file_in_line_order(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused rows are spooled to disk batch by batch: the report holds only the first few,
    and the rejects file gets every one, in the file's order, across batches."""
    from tenure.core import import_files

    monkeypatch.setattr(import_files.Rejects, "KEPT", 3)
    rows = ["external_id,name"] + [f"P{n},{'' if n % 5 == 0 else f'Person {n}'}" for n in range(1, 2601)]
    people = tmp_path / "people.csv"
    people.write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    env = {"TENURE_DATABASE_URL": database_url, "TENURE_PLUGINS": "", "TENURE_ENVIRONMENT": "test"}
    assert runner.invoke(main, ["migrate"], env=env, catch_exceptions=False).exit_code == 0
    report = tmp_path / "rejected.jsonl"
    result = runner.invoke(main, ["import", "customers", str(people), "--report", str(report)], env=env,
                           catch_exceptions=False)
    assert result.exit_code == 1
    assert "2600 rows read: 2080 were new, 0 were updates, 0 already imported, 520 rejected" in result.stdout
    assert "line 6: name: must not be empty" in result.stderr and "... and 517 more" in result.stderr
    written = [json.loads(line) for line in report.read_text().splitlines()]
    # Line n of the file holds person n - 1 (the header is line 1); every fifth has no name.
    assert [r["rejected_line"] for r in written] == [n + 1 for n in range(5, 2601, 5)]
    assert {r["rejected_reason"] for r in written} == {"name: must not be empty"}
    assert written[-1]["external_id"] == "P2600"
