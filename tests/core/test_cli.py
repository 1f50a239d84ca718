"""The `tenure` command: help on every command, one clear line for a wrong setting, and the
commands an operator runs first."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tenure.cli import main
from tenure.core import auth
from tenure.core.db import Database


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name in group.list_commands(click.Context(group)):
        command = group.get_command(click.Context(group), name)
        assert command is not None
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


def test_every_command_has_help() -> None:
    runner = CliRunner()
    commands = _commands(main)
    assert {("serve",), ("migrate",), ("worker",), ("scheduler",), ("plugins",), ("schema",),
            ("apikey", "create"), ("jobs", "failed"), ("check",)} <= set(commands)
    for path in commands:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        summary = result.output.split("\n\n")[1].strip()
        assert len(summary) > 15, (path, result.output)


@pytest.mark.parametrize(("env", "line"), [
    ({"TENURE_DATABASE_URL": "mysql://x/y"}, "Error: TENURE_DATABASE_URL: use sqlite+aiosqlite:///path.db"),
    ({"TENURE_BROKER_URL": "kafka://x"}, "Error: TENURE_BROKER_URL: use redis://host:6379/0 or amqp://host"),
    ({"TENURE_PLUGINS": "nosuchplugin"}, "Error: TENURE_PLUGINS: no plugin named nosuchplugin"),
    ({"TENURE_MAX_DEPTH": "deep"}, "Error: TENURE_MAX_DEPTH: expected a whole number, got 'deep'"),
    ({"TENURE_ENVIRONMENT": "production", "TENURE_SECRET_KEY": "short"}, "Error: TENURE_SECRET_KEY: production needs"),
])
def test_a_wrong_setting_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    # An empty working folder: no .env file is read and no tenure.db is left behind.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["migrate"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith(line), result.output
    assert result.output.count("\n") == 1, result.output


def test_migrate_then_create_a_key_printed_once(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": ""}
    migrated = runner.invoke(main, ["migrate"], env=env)
    assert migrated.exit_code == 0 and "up to date: core@head" in migrated.output
    created = runner.invoke(main, ["apikey", "create", "--name", "shop", "--role", "integration"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("tnr_") and "\n" not in key
    assert "it is not shown again" in created.stderr

    async def who() -> tuple[str, int]:
        db = Database(url)
        try:
            async with db.reader() as session:
                principal = await auth.authenticate(session, b"unused", key)
                stored = await session.scalar(auth.select(auth.ApiKey.key_hash))
            return principal.role.value, int(stored is not None and key not in stored)
        finally:
            await db.dispose()

    assert asyncio.run(who()) == ("integration", 1)
    worker = runner.invoke(main, ["worker"], env=env)
    assert worker.exit_code == 1 and "TENURE_BROKER_URL is not set" in worker.output
    schema = runner.invoke(main, ["schema"], env=env)
    assert schema.exit_code == 0 and "type Customer" in schema.output and "scalar Long" in schema.output


def test_a_key_made_in_a_new_folder_works_before_the_first_serve(tmp_path: Path) -> None:
    """The README's first steps: `tenure apikey create` comes before `tenure serve`, so on
    SQLite it brings the database up to date itself, and prints nothing but the key."""
    runner = CliRunner()
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    env = {"TENURE_DATABASE_URL": url, "TENURE_PLUGINS": "loyalty,tiers"}
    created = runner.invoke(main, ["apikey", "create", "--name", "me", "--role", "admin",
                                   "--staff-email", "me@example.com"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("tnr_") and "\n" not in key

    async def role() -> str:
        db = Database(url)
        try:
            async with db.reader() as session:
                return (await auth.authenticate(session, b"unused", key)).role.value
        finally:
            await db.dispose()

    assert asyncio.run(role()) == "admin"
    revoked = runner.invoke(main, ["apikey", "revoke", "1"], env=env)
    assert revoked.exit_code == 0 and "key 1 revoked" in revoked.output
