"""``tenure plugin new NAME``: a plugin package a partner can install, test and reshape.

The files come from ``core/scaffold_templates/`` with ``%%token%%`` placeholders (Python's
``{}`` and ``$`` both appear in the templates' own code and GraphQL). The generated project
installs with ``pip install -e .`` (entry point ``tenure.plugins``) and its tests pass as
generated, which ``tests/test_scaffold.py`` proves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).parent / "scaffold_templates"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
TOKEN = re.compile(r"%%(\w+)%%")
#: Names taken by the core or by Tenure's own plugins, or that would shadow Python modules.
RESERVED = frozenset({"core", "schema", "plugins", "migrations", "workers", "tests", "test", "tenure",
                      "loyalty", "tiers", "nps", "renewals", "churn", "messages"})


class ScaffoldError(ValueError):
    """The name or the target folder cannot be used; the message says why."""


@dataclass(frozen=True)
class Names:
    name: str  # education, gift_cards: TENURE_PLUGINS, table prefix, job prefix, branch label
    summary: str

    @property
    def package(self) -> str:
        return f"tenure_{self.name}"

    @property
    def dist(self) -> str:
        return f"tenure-{self.name.replace('_', '-')}"

    @property
    def pascal(self) -> str:
        return "".join(part.title() for part in self.name.split("_"))

    @property
    def camel(self) -> str:
        return self.pascal[0].lower() + self.pascal[1:]

    def tokens(self) -> dict[str, str]:
        from tenure.core import __version__

        return {
            "name": self.name,
            "NAME": self.name.upper(),
            "Name": self.pascal,
            "camel": self.camel,
            "package": self.package,
            "dist": self.dist,
            "summary": self.summary,
            "tenure_version": __version__,
            "core_head": core_head(),
        }


def core_head() -> str:
    """The core's latest revision, which a plugin's first revision depends on."""
    from alembic.script import ScriptDirectory

    from tenure.core.migrate import resolve_location

    script = ScriptDirectory(resolve_location("tenure.migrations"),
                             version_locations=[resolve_location("tenure.migrations:versions")])
    head = script.get_revision("core@head")
    assert head is not None
    return head.revision


def render(text: str, tokens: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in tokens:
            raise KeyError(f"template token %%{key}%% has no value")
        return tokens[key]

    return TOKEN.sub(one, text)


def target_path(relative: str, names: Names) -> str:
    """Where a template lands: ``package/`` becomes the package, ``.tmpl`` goes."""
    path = relative.removesuffix(".tmpl")
    if path.startswith("package/"):
        path = names.package + path[len("package"):]
    if path == "tests/test_plugin.py":
        path = f"tests/test_{names.name}.py"
    return path


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise ScaffoldError(
            f"plugin name {name!r}: use 2 to 30 lowercase letters, digits and underscores, starting with a letter "
            "(it names the package, its tables, its jobs and TENURE_<NAME>_* settings)"
        )
    if name in RESERVED:
        raise ScaffoldError(f"plugin name {name!r} is taken by Tenure itself; choose another")


def new_plugin(name: str, where: Path, summary: str | None = None) -> Path:
    """Write the project ``<where>/tenure-<name>/`` and return its folder."""
    check_name(name)
    names = Names(name, summary or f"{name.replace('_', ' ').capitalize()} for Tenure")
    root = where / names.dist
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or --path")
    tokens = names.tokens()
    files = sorted(p for p in TEMPLATES.rglob("*.tmpl") if p.is_file())
    rendered = {render(target_path(p.relative_to(TEMPLATES).as_posix(), names), tokens): render(p.read_text(), tokens)
                for p in files}
    for relative, text in rendered.items():
        out = root / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return root
