"""Tenure installs next to anything: every import name its distribution puts on the path is
``tenure`` or under it, whether installed from a wheel or in editable mode, and partners get
their names from one module, ``tenure.plugin``."""

from __future__ import annotations

import ast
import importlib
import re
import site
import subprocess
import sys
import zipfile
from importlib.metadata import Distribution
from pathlib import Path

import pytest

import tenure.plugin

ROOT = Path(__file__).resolve().parents[1]


def import_names(paths: list[str]) -> set[str]:
    """The top-level import names a set of installed file paths provides."""
    names = set()
    for path in paths:
        top = path.split("/")[0]
        if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
            continue
        if top.startswith("__editable__") and top.endswith(".pth"):
            continue
        names.add(top.removesuffix(".py"))
    return names


def installed() -> Distribution:
    """Tenure's distribution as installed, not the ``tenure.egg-info`` that an editable
    install's build leaves in the checkout (on the path when the tests run from it)."""
    places = [*site.getsitepackages(), site.getusersitepackages()]
    (found,) = [d for d in Distribution.discover(name="tenure", path=places)][:1]
    return found


def test_the_installed_distribution_provides_only_tenure() -> None:
    dist = installed()
    assert (dist.read_text("top_level.txt") or "").split() == ["tenure"]
    files = [str(f) for f in dist.files or []]
    finders = [f for f in files if re.fullmatch(r"__editable___tenure_.*_finder\.py", f)]
    names = import_names([f for f in files if f not in finders])
    for finder in finders:  # an editable install: the names its finder maps are what it provides
        source = Path(str(dist.locate_file(finder))).read_text()
        mapping = ast.literal_eval(re.search(r"^MAPPING\b[^=]*=\s*(\{.*?\})$", source, re.M).group(1))
        names |= set(mapping)
    assert names == {"tenure"}


@pytest.mark.slow
def test_a_wheel_holds_only_the_tenure_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("tenure-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = archive.namelist()
    assert import_names(files) == {"tenure"}
    for expected in ("tenure/plugin.py", "tenure/cli.py", "tenure/core/models.py", "tenure/schema/server.py",
                     "tenure/plugins/loyalty/__init__.py", "tenure/migrations/env.py", "tenure/workers/runner.py",
                     "tenure/schema/graphiql/index.html"):
        assert expected in files


def test_every_name_of_the_partner_api_resolves() -> None:
    missing = [name for name in tenure.plugin.__all__ if not hasattr(tenure.plugin, name)]
    assert missing == []
    assert tenure.plugin.API_VERSION[0] >= 1


@pytest.mark.parametrize("package", ["tests/partner_plugin/tenure_visits", "examples/education/tenure_education"])
def test_partner_packages_import_only_the_partner_api(package: str) -> None:
    """The partner plugin and the example use ``tenure.plugin`` and, where they work with a
    built-in plugin, its hookspecs, signals or service; never Tenure's internals."""
    allowed = re.compile(r"tenure\.plugin$|tenure\.plugins\.\w+\.(hookspecs|signals|service)$")
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:  # alembic renders column types by their module
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.startswith("tenure.")):
                continue
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            if not (allowed.match(names[0]) or all(allowed.match(n) for n in names[1:])):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
    assert wrong == []


def test_the_top_level_folders_are_the_packages_under_tenure() -> None:
    for folder in ("core", "schema", "plugins", "migrations", "workers"):
        module = importlib.import_module(f"tenure.{folder}")
        assert Path(next(iter(module.__path__))).resolve() == (ROOT / folder).resolve() == ROOT / "tenure" / folder
