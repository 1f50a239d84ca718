"""The layers of docs/modules.md hold: the core imports no schema, plugin or worker module,
workers never import the schema, the schema never imports a plugin, and nothing below the
composition root (``tenure/*.py``: the commands, the test harness, the demo, the partner
API) imports it. No layer has a circle of imports, and nothing imports a folder by its bare
name (``core``, ``schema``...), which would load a second copy of it beside ``tenure.core``.
Each failure names the file and the line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tenure"
LAYERS = ("core", "workers", "schema", "plugins")
FOLDERS = ("core", "schema", "plugins", "migrations", "workers")

#: The composition root's modules: only the root itself (and tests) may import them.
COMPOSITION = {f"tenure.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"}

#: What each layer must not import, beside the composition root.
FORBIDDEN = {
    "core": ("tenure.schema", "tenure.plugins", "tenure.workers"),
    "workers": ("tenure.schema", "tenure.plugins"),
    "schema": ("tenure.plugins",),
    "plugins": (),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(*folders: str) -> Iterator[Path]:
    """The modules of the package's folders (``core`` is ``tenure/core``), of ``tenure``'s own
    top (the composition root), or of a folder outside the package (``tests``)."""
    for folder in folders:
        if folder == "tenure":
            yield from sorted(PACKAGE.glob("*.py"))
        elif folder in FOLDERS:
            yield from sorted((PACKAGE / folder).glob("**/*.py"))
        else:
            yield from sorted((ROOT / folder).glob("**/*.py"))


def statements(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` for every absolute import (``names`` empty for ``import
    module``); with ``top_level_only``, those that run when the module is imported (not
    inside a function, not under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str, list[str]]] = []

    def add(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            add(node)
            if isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    if top_level_only:
        visit(tree.body)
    else:
        for node in ast.walk(tree):
            add(node)
    return found


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every absolute import, ``from a import b`` as both ``a`` and
    ``a.b`` (``b`` may be a submodule)."""
    return [(line, name) for line, module, names in statements(path)
            for name in (module, *(f"{module}.{n}" for n in names))]


def reaches(module: str, banned: str) -> bool:
    return module == banned or module.startswith(banned + ".")


def test_no_layer_imports_one_above_it() -> None:
    wrong = []
    for layer, banned in FORBIDDEN.items():
        for path in sources(layer):
            for line, module in imports(path):
                if any(reaches(module, b) for b in (*banned, *COMPOSITION)):
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == [], "imports against docs/modules.md:\n" + "\n".join(wrong)


def test_nothing_imports_a_folder_by_its_bare_name() -> None:
    wrong = []
    for path in sources(*FOLDERS, "tenure", "tests", "bench", "examples"):
        if "node_modules" in path.parts:
            continue
        for line, module in imports(path):
            if module.split(".")[0] in FOLDERS:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert wrong == [], "import these as tenure.<folder>:\n" + "\n".join(wrong)


def is_module(name: str) -> bool:
    """Whether ``tenure.x.y`` is a module or package of the checkout."""
    relative = Path(*name.split("."))
    return name.startswith("tenure.") and ((ROOT / relative).with_suffix(".py").exists()
                                             or (ROOT / relative / "__init__.py").exists())


def imported_modules(path: Path, modules: dict[str, Path], *, every_import: bool = False) -> set[str]:
    """The modules of ``modules`` that ``path`` imports when it is imported (with
    ``every_import``, also inside functions and under ``TYPE_CHECKING``). ``from package
    import submodule`` imports the submodule, not the package's own names: a package whose
    ``__init__`` lists its submodules is no circle with them."""
    targets = set()
    for _, module, names in statements(path, top_level_only=not every_import):
        members = [f"{module}.{n}" for n in names]
        if members and all(is_module(m) for m in members):
            targets.update(members)
        else:
            targets.update([module, *members])
    return {m for m in targets if m in modules}


def circles(modules: dict[str, Path], *, every_import: bool = False) -> list[list[str]]:
    """The groups of modules that import each other in a circle (Tarjan's strongly connected
    components over the imports that run at import time, or over every import)."""
    graph = {name: sorted(imported_modules(path, modules, every_import=every_import) - {name})
             for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for neighbour in graph[node]:
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for name in graph:
        if name not in index:
            visit(name)
    return found


#: The circle that remains when deferred and type-only imports count too: the core's
#: ServiceContext is named as a type by the events, contributions and services it calls into
#: (docs/modules.md). The list may only shrink.
DEFERRED_CIRCLES = [
    sorted(f"tenure.core.{name}" for name in (
        "builtin", "context", "contributions", "events", "hookspecs", "messages", "messages.channels",
        "messages.service", "messages.templates", "outbox", "plugins", "services.order_months",
        "services.webhooks")),
]


def test_no_circle_of_imports() -> None:
    modules = {module_name(path): path for path in sources(*LAYERS)}
    assert circles(modules) == []


def test_no_circle_even_through_deferred_and_type_only_imports_but_the_known_one() -> None:
    modules = {module_name(path): path for path in sources(*LAYERS)}
    assert sorted(circles(modules, every_import=True)) == DEFERRED_CIRCLES


def test_the_circle_check_sees_a_circle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from tenure.b import thing\n")
    (tmp_path / "b.py").write_text("import tenure.a\n")
    (tmp_path / "c.py").write_text("def later():\n    import tenure.a\n")
    assert circles({"tenure.a": tmp_path / "a.py", "tenure.b": tmp_path / "b.py",
                    "tenure.c": tmp_path / "c.py"}) == [["tenure.a", "tenure.b"]]
