"""The example industry plugin in examples/ (built from docs/plugins.md alone) passes its own
tests and lint, run as its author would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_education_plugin_tests_pass() -> None:
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], EXAMPLES / "education")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # Every test ran and passed (the plugin's 8 own tests and its journey trigger's, at least).
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed(, \d+ warnings?)? in .*", summary) and int(summary.split()[0]) >= 9, summary


def test_education_plugin_is_lint_clean_and_declares_its_entry_point() -> None:
    lint = run([sys.executable, "-m", "ruff", "check", "."], EXAMPLES / "education")
    assert lint.returncode == 0, lint.stdout
    pyproject = (EXAMPLES / "education" / "pyproject.toml").read_text()
    assert '[project.entry-points."tenure.plugins"]\neducation = "tenure_education"' in pyproject
