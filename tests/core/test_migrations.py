"""Migrations: a fresh database migrated with every plugin on matches the models (SQLite and
PostgreSQL); a plugin switched off after migrating leaves a database that still opens and
migrates; one uninstalled altogether is named in a clear error."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from click.testing import CliRunner

from tenure.cli import main
from tenure.core.migrate import MigrationError, differences, upgrade
from tenure.core.plugins import installed_plugins, load_plugins
from tenure.core.settings import Settings
from tenure.testing import TenureHarness

POSTGRES_URL = os.environ.get("TENURE_TEST_POSTGRES_URL", "")


def _settings(url: str, plugins: str) -> Settings:
    return Settings.from_env({"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": plugins, "TENURE_ENVIRONMENT": "test"},
                             env_file=None)


def _migrate(url: str, plugins: str) -> list[object]:
    settings = _settings(url, plugins)
    manager = load_plugins(settings)
    upgrade(settings, manager)
    return differences(settings, manager)


async def _tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    from tenure.core.db import Database

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await db.dispose()


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A temporary PostgreSQL database, created and dropped through the test database."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (set TENURE_TEST_POSTGRES_URL)")
    parts = urlsplit(POSTGRES_URL)
    name = f"{parts.path.lstrip('/')}_mig"
    admin = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    return str(request.getfixturevalue("fresh_postgres"))


def test_every_plugin_on_migrates_to_exactly_the_models(fresh_url: str) -> None:
    names = [c.info.name for c in installed_plugins()]
    assert "visits" in names  # the partner plugin's branch is part of it
    assert _migrate(fresh_url, "all") == []
    tables = asyncio.run(_tables(fresh_url))
    assert {"customers", "orders", "outbox", "visits_visits", "alembic_version"} <= tables
    # Migrating again is a no-op.
    assert _migrate(fresh_url, "all") == []


def test_a_plugin_switched_off_after_migrating(fresh_url: str) -> None:
    assert _migrate(fresh_url, "visits") == []
    # Off now: its table stays (nothing is dropped), the core still migrates and matches.
    assert _migrate(fresh_url, "") == []
    assert "visits_visits" in asyncio.run(_tables(fresh_url))

    async def serve() -> dict[str, object]:
        async with TenureHarness.start(fresh_url, plugins=[], create_tables=False) as tenure:
            await tenure.ok('mutation { createCustomer(input: {name: "Still here"}) { customer { id } } }')
            return await tenure.ok("{ customers(first: 5) { totalCount } }")

    assert asyncio.run(serve()) == {"customers": {"totalCount": 1}}
    # On again: it picks up where it was.
    assert _migrate(fresh_url, "visits") == []


def test_a_plugin_uninstalled_after_migrating_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gone.db'}"
    assert _migrate(url, "visits") == []

    monkeypatch.setattr("tenure.core.plugins.entry_point_candidates", lambda: [])
    settings = _settings(url, "")
    with pytest.raises(MigrationError, match=r"visits_0001") as raised:
        upgrade(settings, load_plugins(settings))
    assert "a plugin that is not installed any more" in str(raised.value)
    # The command line says the same in one line, and fails.
    result = CliRunner().invoke(main, ["migrate"], env={"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": ""})
    assert result.exit_code == 1
    assert "Error: Can't locate revision identified by 'visits_0001'" in result.output
