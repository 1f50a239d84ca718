"""The public GraphQL API is compared with the SDL stored in tests/schema/, per configuration:
the core alone and each built-in plugin (with the plugins it requires); with all of them,
the published schema.graphql. A change
to any of them fails here until it is accepted on purpose:

    TENURE_UPDATE_SDL=1 python -m pytest tests/test_schema_snapshot.py

which rewrites tests/schema/*.graphql and schema.graphql (the file frontend teams generate
typed clients from); review and commit the diff with the change that caused it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tenure.core.plugins import Candidate, PluginManager, builtin_candidates
from tenure.core.settings import Settings
from tenure.schema.build import build_schema

ROOT = Path(__file__).parent.parent
STORED = Path(__file__).parent / "schema"
PUBLISHED = ROOT / "schema.graphql"
UPDATE = os.environ.get("TENURE_UPDATE_SDL") == "1"
ACCEPT = "TENURE_UPDATE_SDL=1 python -m pytest tests/test_schema_snapshot.py"

BUILTIN = {c.info.name: c for c in builtin_candidates()}


def with_requirements(name: str) -> list[Candidate]:
    """The plugin and, transitively, the plugins its PluginInfo.requires, in built-in order."""
    wanted: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current not in wanted:
            wanted.add(current)
            pending.extend(BUILTIN[current].info.requires)
    return [c for n, c in BUILTIN.items() if n in wanted]


CONFIGURATIONS: dict[str, list[Candidate]] = {
    "core": [],
    **{name: with_requirements(name) for name in BUILTIN},
    "all": list(BUILTIN.values()),
}


def sdl(candidates: list[Candidate]) -> str:
    # No environment and no .env: the stored SDL must not depend on who runs the test.
    settings = Settings.from_env({}, env_file=Path(os.devnull))
    return str(build_schema(PluginManager(candidates, candidates), settings)) + "\n"


def stored_path(configuration: str) -> Path:
    """Where a configuration's SDL is kept: every built-in plugin's is the published file."""
    return PUBLISHED if configuration == "all" else STORED / f"{configuration}.graphql"


def difference(actual: str, path: Path) -> str | None:
    """What stands between the stored SDL and ``actual``, said for a person; ``None`` when
    they agree (or when ``TENURE_UPDATE_SDL=1`` has just stored ``actual``)."""
    if UPDATE:
        path.write_text(actual)
        return None
    if not path.exists():
        return f"{path.relative_to(ROOT)} does not exist; create it with:\n  {ACCEPT}"
    stored = path.read_text()
    if actual != stored:
        diff = "".join(
            difflib.unified_diff(
                stored.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{path.relative_to(ROOT)} (stored)",
                tofile="built now",
            )
        )
        return (
            f"The GraphQL API changed against {path.relative_to(ROOT)}:\n{diff}\n"
            f"If the change is intended, accept it with:\n  {ACCEPT}\nand commit the rewritten files."
        )
    return None


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_schema_matches_stored_sdl(configuration: str) -> None:
    problem = difference(sdl(CONFIGURATIONS[configuration]), stored_path(configuration))
    assert problem is None, problem


def test_published_schema_is_what_tenure_schema_prints_with_every_builtin_plugin() -> None:
    from tenure.cli import main

    env = {"TENURE_PLUGINS": ",".join(BUILTIN)}
    result = CliRunner().invoke(main, ["schema"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == sdl(CONFIGURATIONS["all"])
    problem = difference(result.output, PUBLISHED)
    assert problem is None, problem


def test_every_stored_sdl_belongs_to_a_configuration() -> None:
    """A plugin removed or renamed leaves no stale file that nobody checks any more."""
    # released.graphql is the last release's schema, for tests/test_schema_breaking_changes.py.
    stored = {p.stem for p in STORED.glob("*.graphql")} - {"released"}
    kept_here = set(CONFIGURATIONS) - {"all"}
    assert stored == kept_here, f"stale: {sorted(stored - kept_here)}"


def test_each_plugin_sdl_adds_to_the_core_and_all_holds_every_plugin() -> None:
    core = sdl([])
    for name, candidates in CONFIGURATIONS.items():
        if name in ("core", "all"):
            continue
        assert sdl(candidates) != core, f"plugin {name} contributes nothing to the schema"
    everything = set(sdl(CONFIGURATIONS["all"]).splitlines())
    for name in BUILTIN:
        assert set(sdl(CONFIGURATIONS[name]).splitlines()) <= everything | {""}, name
