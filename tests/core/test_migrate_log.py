"""What `tenure serve` logs while it migrates: one readable line per step (the revision's
summary), not each revision's whole docstring over several lines."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tenure.core.migrate import upgrade
from tenure.core.plugins import load_plugins
from tenure.core.settings import Settings


def test_each_migration_step_is_one_line_with_its_summary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings.from_env({"TENURE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/log.db",
                                  "TENURE_PLUGINS": "renewals", "TENURE_ENVIRONMENT": "test"}, env_file=None)
    caplog.set_level(logging.INFO, logger="alembic")
    upgrade(settings, load_plugins(settings))
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert lines[0] == ("Running upgrade -> 0001, The core's tables: customers, interactions, orders, tasks, "
                        "staff, keys, events, outbox, webhooks and idempotency records.")
    steps = [line for line in lines if line.startswith("Running upgrade")]
    assert len(steps) == len(lines) >= 5  # nothing but the steps: no per-branch context notes
    assert all("\n" not in line and len(line) < 260 for line in lines)
    assert any(line.startswith("Running upgrade renewals_0001 -> renewals_0002, ") for line in steps)
