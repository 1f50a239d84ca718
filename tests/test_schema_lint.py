"""graphql-schema-linter (npm) on the published schema.graphql: every type, field, argument,
input field and enum value described, GraphQL's naming conventions, and Relay's connection
rules. tests/schema_lint/graphql-schema-linter.config.js says which rules run and why the
others do not; any finding fails here, listed with its line in schema.graphql.

Needs Node and npm; .ci/run installs them and the linter (``npm ci`` in tests/schema_lint).
Elsewhere the test installs the linter from its lock file on first use, and skips only where
Node is missing and ``CI`` is not set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LINT = ROOT / "tests" / "schema_lint"
PUBLISHED = ROOT / "schema.graphql"


def linter() -> tuple[str, Path]:
    """Node and the linter's entry point, installed from the lock file when missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the schema linter: .ci/run installs nodejs and npm")
        pytest.skip("node and npm are not installed (.ci/run installs them)")
    entry = LINT / "node_modules" / "graphql-schema-linter" / "lib" / "cli.js"
    if not entry.is_file():
        installed = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=LINT, capture_output=True,
                                   text=True, timeout=300)
        assert installed.returncode == 0, installed.stderr
    return node, entry


def lint(path: Path) -> list[str]:
    """The linter's findings on one SDL file, one line each: ``line:column message (rule)``."""
    node, entry = linter()
    run = subprocess.run([node, str(entry), "--format", "json", "--config-directory", str(LINT), str(path)],
                         cwd=LINT, capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads(run.stdout)
    return [f"{e['location']['line']}:{e['location']['column']} {e['message']} ({e['rule']})"
            for e in report["errors"]]


def test_the_configured_rules_find_what_they_are_for(tmp_path: Path) -> None:
    """The configuration is read: an undescribed field, a lowercase type and a connection
    field without paging arguments are each found."""
    sample = tmp_path / "sample.graphql"
    sample.write_text('"""Root."""\ntype Query {\n  """Things."""\n  things: thingConnection!\n  count: Int!\n}\n\n'
                      '"""A page."""\ntype thingConnection {\n  """Edges."""\n  edges: [Int!]!\n}\n')
    rules = {finding.rsplit("(", 1)[1].rstrip(")") for finding in lint(sample)}
    assert {"fields-have-descriptions", "types-are-capitalized", "relay-page-info-spec"} <= rules, rules


def test_published_schema_has_no_lint_findings() -> None:
    findings = lint(PUBLISHED)
    assert not findings, f"graphql-schema-linter: {len(findings)} finding(s) in schema.graphql:\n" + "\n".join(
        findings)
