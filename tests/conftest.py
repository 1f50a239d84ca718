"""Fixtures: every test that takes ``tenure`` runs on SQLite and on PostgreSQL.

PostgreSQL is used when ``TENURE_TEST_POSTGRES_URL`` is set (``make test`` and CI set it);
with ``TENURE_TEST_REQUIRE_POSTGRES=1`` its absence is an error rather than a skip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tenure.core import clock
from tenure.testing import TenureHarness, create_all, truncate_all

POSTGRES_URL = os.environ.get("TENURE_TEST_POSTGRES_URL", "")
REQUIRE_POSTGRES = os.environ.get("TENURE_TEST_REQUIRE_POSTGRES") == "1"
REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "")


@pytest.fixture(autouse=True)
def restore_clock() -> Iterator[None]:
    """The CLI and ``create_app()`` freeze the process's clock at ``TENURE_NOW`` or
    ``--at``, as they should in a real process; in the test process the next test must
    find the clock as it was."""
    with clock.use_clock(clock.current()):
        yield


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("TENURE_TEST_POSTGRES_URL is not set but TENURE_TEST_REQUIRE_POSTGRES=1")
        pytest.skip("PostgreSQL not configured (set TENURE_TEST_POSTGRES_URL)")
    asyncio.run(create_all(POSTGRES_URL))
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'tenure.db'}"
        return
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("SQLite only")
    url = request.getfixturevalue("postgres_url")
    yield url
    asyncio.run(truncate_all(url))


@pytest.fixture
def make_tenure(database_url: str) -> Callable[..., Any]:
    """``async with make_tenure(plugins=[...], **settings) as tenure:`` for tests that need
    a particular set of plugins or settings."""

    def make(plugins: list[str] | None = None, **kwargs: Any) -> Any:
        return TenureHarness.start(database_url, plugins=plugins, create_tables=database_url.startswith("sqlite"),
                                   **kwargs)

    return make


@pytest.fixture
async def tenure(make_tenure: Callable[..., Any]) -> AsyncIterator[TenureHarness]:
    """An app with no optional plugin on: the core alone."""
    async with make_tenure(plugins=[]) as harness:
        yield harness


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    with clock.use_clock(clock.FrozenClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))) as frozen:
        yield frozen  # type: ignore[misc]
