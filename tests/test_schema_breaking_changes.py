"""No breaking change to the GraphQL API by accident: the schema built now (every built-in
plugin on, as in schema.graphql) is compared with the last release's, kept in
tests/schema/released.graphql, by graphql-core's ``find_breaking_changes``.

A breaking change fails here unless tests/schema/intended-breaking-changes.txt lists it, one
line per change as graphql-core words it, followed by ``# why``:

    Field Viewer.role changed type from String! to Role!.  # roles are an enum, not free text

An entry that matches no change fails too, so the list holds the real changes and nothing
else. Dangerous changes (an enum value or an optional argument added ...) are printed, not
failed. A release copies schema.graphql over released.graphql and empties the list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema
from graphql.utilities import DangerousChangeType, find_breaking_changes, find_dangerous_changes

from tests.test_schema_snapshot import CONFIGURATIONS, sdl

HERE = Path(__file__).parent / "schema"
RELEASED = HERE / "released.graphql"
INTENDED = HERE / "intended-breaking-changes.txt"
#: The last release's schema and the one built now.
Schemas = tuple[GraphQLSchema, GraphQLSchema]


def intended_changes(text: str) -> dict[str, str]:
    """The list's entries, each change with its reason; blank and ``#`` lines are left out."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        change, _, reason = line.partition(" # ")
        if not reason.strip():
            raise ValueError(f"{INTENDED.name}:{number}: say why after ' # ': {line!r}")
        entries[change.strip()] = reason.strip()
    return entries


def test_intended_changes_are_read_with_their_reasons() -> None:
    text = "# header\n\nQuery.a was removed.  # replaced by b\nQuery.c was removed. # gone\n"
    assert intended_changes(text) == {"Query.a was removed.": "replaced by b", "Query.c was removed.": "gone"}
    with pytest.raises(ValueError, match="say why"):
        intended_changes("Query.a was removed.\n")


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return build_schema(RELEASED.read_text()), build_schema(sdl(CONFIGURATIONS["all"]))


def test_no_breaking_change_against_the_released_schema_unless_intended(schemas: Schemas) -> None:
    released, now = schemas
    found = {change.description for change in find_breaking_changes(released, now)}
    intended = intended_changes(INTENDED.read_text())
    unlisted = sorted(found - intended.keys())
    stale = sorted(intended.keys() - found)
    problems = []
    if unlisted:
        problems.append(
            f"{len(unlisted)} breaking change(s) against {RELEASED.name} (the last release). If one is "
            f"intended, add its line to tests/schema/{INTENDED.name} with the reason after ' # ':\n"
            + "\n".join(f"{change}  # " for change in unlisted))
    if stale:
        problems.append(f"{INTENDED.name} lists change(s) the schema does not make; remove them:\n"
                        + "\n".join(stale))
    assert not problems, "\n\n".join(problems)


def test_dangerous_changes_are_reported(schemas: Schemas, capsys: pytest.CaptureFixture[str]) -> None:
    """Changes that break no valid query but may surprise a client that switches over every
    value (an enum value added) or relies on a default: said in the test output, not failed."""
    released, now = schemas
    found = find_dangerous_changes(released, now)
    dangerous = sorted(change.description for change in found)
    with capsys.disabled():
        print(f"\n{len(dangerous)} dangerous change(s) against {RELEASED.name}:")
        for change in dangerous:
            print(f"  {change}")
    # A default that changed makes an unchanged query answer differently: never by accident.
    changed_defaults = [c.description for c in found if c.type in (
        DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE, DangerousChangeType.INPUT_FIELD_DEFAULT_VALUE_CHANGE)]
    assert changed_defaults == [], changed_defaults
    # Nothing reported here is also a breaking change (those fail the test above instead).
    assert not set(dangerous) & {c.description for c in find_breaking_changes(released, now)}
