"""`tenure plugin new`: the generated project lints clean, installs with its entry point, and
its own tests pass as generated, installed or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tenure.cli import main

pytestmark = pytest.mark.slow


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a partner's shell: no Tenure settings from this test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    result = CliRunner().invoke(main, ["plugin", "new", "gift_cards", "--path", str(tmp_path),
                                       "--summary", "Gift cards for Tenure"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "tenure-gift-cards"
    assert f"created {root}" in result.output
    return root


def test_the_project_has_every_part_of_a_plugin(project: Path) -> None:
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert files == {
        "pyproject.toml", "README.md",
        "tenure_gift_cards/__init__.py", "tenure_gift_cards/models.py", "tenure_gift_cards/service.py",
        "tenure_gift_cards/schema.py", "tenure_gift_cards/jobs.py",
        "tenure_gift_cards/migrations/__init__.py", "tenure_gift_cards/migrations/gift_cards_0001_initial.py",
        "tests/conftest.py", "tests/test_gift_cards.py",
    }
    pyproject = (project / "pyproject.toml").read_text()
    assert '[project.entry-points."tenure.plugins"]\ngift_cards = "tenure_gift_cards"' in pyproject
    assert 'pytest_plugins = ["tenure.pytest_plugin"]' in (project / "tests/conftest.py").read_text()
    lint = run([sys.executable, "-m", "ruff", "check", "."], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_generated_tests_pass_without_installing(project: Path) -> None:
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "6 passed" in result.stdout


def test_installed_package_is_found_through_its_entry_point(project: Path, tmp_path: Path) -> None:
    # Installed into a folder of its own, so the package never leaks into this environment.
    target = tmp_path / "site"
    install = run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                   "--target", str(target), "."], project)
    assert install.returncode == 0, install.stdout + install.stderr
    (entry_points,) = target.glob("tenure_gift_cards-*.dist-info/entry_points.txt")
    assert "[tenure.plugins]\ngift_cards = tenure_gift_cards" in entry_points.read_text()

    listing = run([sys.executable, "-m", "tenure.cli", "plugins"], tmp_path, PYTHONPATH=str(target),
                  TENURE_PLUGINS="gift_cards")
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.startswith("gift_cards"))
    assert line.split()[1:4] == ["on", "0.1.0", "tenure-gift-cards"]
    assert "1 jobs" in listing.stdout and "1 tables" in listing.stdout

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, PYTHONPATH=str(target))
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "6 passed" in tests.stdout


def test_names_that_cannot_work_are_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    for name, reason in [("Gift-Cards", "lowercase letters"), ("loyalty", "taken by Tenure"), ("x", "2 to 30")]:
        result = runner.invoke(main, ["plugin", "new", name, "--path", str(tmp_path)])
        assert result.exit_code == 1 and reason in result.output, result.output
    assert list(tmp_path.iterdir()) == []
    assert runner.invoke(main, ["plugin", "new", "gifts", "--path", str(tmp_path)]).exit_code == 0
    again = runner.invoke(main, ["plugin", "new", "gifts", "--path", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output
