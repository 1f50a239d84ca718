"""pytest fixtures for plugin authors: Tenure with your plugin on, on a fresh SQLite database.

Register it in your project's ``tests/conftest.py`` and say which plugins are on::

    pytest_plugins = ["tenure.pytest_plugin"]

    @pytest.fixture
    def tenure_plugins() -> list[str]:
        return ["education", "tiers"]

    @pytest.fixture
    def tenure_extra_plugins() -> list[ModuleType]:
        return not_installed(tenure_education)   # your module, unless pip installed it

Fixtures:

- ``tenure_app``: a running :class:`~tenure.testing.TenureHarness` (the API, its database,
  the plugins), tables created.
- ``tenure_client``: ``await tenure_client("staff")`` (or ``"admin"``, ``"integration"``,
  ``"member", customer_id=...``) gives a GraphQL client acting as that caller.
- ``frozen_clock``: Tenure's clock stopped at 2026-06-01 09:00 UTC; ``.advance(days=8)``.
- ``job_runner``: ``await job_runner.run("myplugin.job")`` runs a job now;
  ``await job_runner.run_due()`` runs everything queued.
- ``tenure_database_url``: the SQLite file the app uses (override it for PostgreSQL).
- ``tenure_settings``: extra settings for the app (``{"currency": "EUR"}``).

Tests are ``async def``; set ``asyncio_mode = "auto"`` in your pytest configuration.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tenure.core import clock
from tenure.testing import JobRunner, RoleClient, TenureHarness, freeze_time


@pytest.fixture
def tenure_plugins() -> list[str]:
    """The plugins switched on (override it); the core alone by default."""
    return []


@pytest.fixture
def tenure_extra_plugins() -> list[ModuleType]:
    """Plugin modules to register that are not installed packages (override it)."""
    return []


@pytest.fixture
def tenure_settings() -> dict[str, Any]:
    """Settings the app starts with, as ``Settings`` field names (override it)."""
    return {}


@pytest.fixture
def tenure_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'tenure.db'}"


@pytest.fixture
async def tenure_app(
    tenure_database_url: str,
    tenure_plugins: list[str],
    tenure_extra_plugins: list[ModuleType],
    tenure_settings: dict[str, Any],
) -> AsyncIterator[TenureHarness]:
    """Tenure with ``tenure_plugins`` on, tables created, jobs run only when asked."""
    async with TenureHarness.start(tenure_database_url, plugins=tenure_plugins, extra_plugins=tenure_extra_plugins,
                                   **tenure_settings) as harness:
        yield harness


@pytest.fixture
def tenure_client(tenure_app: TenureHarness) -> Callable[..., Awaitable[RoleClient]]:
    """``client = await tenure_client("staff")``; then ``await client.ok(query, variables)``."""

    async def make(role: str = "admin", **options: Any) -> RoleClient:
        return await tenure_app.client_for(role, **options)

    return make


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    with freeze_time() as frozen:
        yield frozen


@pytest.fixture
def job_runner(tenure_app: TenureHarness) -> JobRunner:
    return tenure_app.jobs
