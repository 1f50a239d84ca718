"""The layers of docs/modules.md hold: the core imports no schema, plugin or worker module,
workers never import the schema, and the schema never imports a plugin. The few modules that
assemble the whole (the CLI, the test harness, the demo's plugin data, the plugin loader,
the server) are named below with the reason each may reach up; any other such import fails
here, naming the file and the line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Which top-level packages each layer must not import.
FORBIDDEN = {
    "core": ("schema", "plugins", "workers"),
    "workers": ("schema", "plugins"),
    "schema": ("plugins",),
}

#: The composition root, where it still lives inside a layer: file -> packages it may import.
ASSEMBLY = {
    "core/cli.py": {"schema", "workers"},  # the commands start the server, workers and scheduler
    "core/testing.py": {"schema"},  # the test harness builds the whole app
    "core/demo_plugins.py": {"plugins"},  # demo data for the built-in plugins
    "core/plugins.py": {"plugins"},  # the loader finds the built-in plugins' package
}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_no_layer_imports_one_above_it() -> None:
    wrong = []
    for layer, banned in FORBIDDEN.items():
        for path in sorted((ROOT / layer).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            allowed = ASSEMBLY.get(name, set())
            for line, module in imports(path):
                top = module.split(".")[0]
                if top in banned and top not in allowed:
                    wrong.append(f"{name}:{line} imports {module}")
    assert wrong == [], "imports against docs/modules.md:\n" + "\n".join(wrong)


def test_the_assembly_list_names_only_what_still_reaches_up() -> None:
    """An entry no longer needed must go, so the list only shrinks."""
    stale = []
    for name, allowed in ASSEMBLY.items():
        tops = {module.split(".")[0] for _, module in imports(ROOT / name)}
        stale.extend(f"{name}: {top}" for top in sorted(allowed - tops))
    assert stale == []
