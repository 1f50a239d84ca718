"""``checked_tenure``: Tenure whose invariants (``tenure check``: balances equal ledgers,
figures match orders, no stuck work) must all hold when the test is done."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tenure.core.checks import run_invariants
from tenure.testing import TenureHarness


@pytest.fixture
def checked_tenure(make_tenure: Callable[..., Any]) -> Callable[..., Any]:
    """``async with checked_tenure(plugins=[...]) as tenure:``; after the block, due jobs run
    and every invariant the enabled plugins declare is checked."""

    @contextlib.asynccontextmanager
    async def make(plugins: list[str] | None = None, **settings: Any) -> AsyncIterator[TenureHarness]:
        async with make_tenure(plugins=plugins, **settings) as tenure:
            yield tenure
            await tenure.run_jobs()
            problems = await run_invariants(tenure.db, tenure.plugins)
            assert problems == [], "invariants broken:\n" + "\n".join(problems)

    return make
