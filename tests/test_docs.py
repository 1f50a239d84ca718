"""The plugin guide documents every hook a plugin can implement (Datasette's check): a hook
added without its section in docs/plugins.md fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

from tenure.core import hookspecs
from tenure.core.plugins import builtin_candidates

GUIDE = Path(__file__).parent.parent / "docs" / "plugins.md"


def spec_names(module: ModuleType) -> list[str]:
    return [name for name, fn in inspect.getmembers(module, inspect.isfunction) if hasattr(fn, "tenure_spec")]


def documented() -> set[str]:
    return set(re.findall(r"^### `(\w+)`$", GUIDE.read_text(), flags=re.MULTILINE))


def test_the_core_offers_the_hooks_the_guide_starts_from() -> None:
    assert {"tenure_plugin_info", "tenure_schema", "tenure_jobs", "tenure_event_handlers"} <= set(
        spec_names(hookspecs))


@pytest.mark.parametrize("hook", spec_names(hookspecs))
def test_every_core_hook_has_a_section_with_an_example(hook: str) -> None:
    text = GUIDE.read_text()
    assert hook in documented(), f"docs/plugins.md has no '### `{hook}`' section"
    section = text.split(f"### `{hook}`", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    assert "```python" in section and hook in section.split("```python", 1)[1], f"{hook}: no example"


def test_hooks_that_plugins_offer_each_other_are_documented() -> None:
    offered = {name for c in builtin_candidates() if c.info.hookspecs for name in spec_names(c.info.hookspecs)}
    missing = sorted(offered - documented())
    assert missing == [], f"docs/plugins.md lacks sections for {missing}"
