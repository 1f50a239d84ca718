"""Persisted documents: an app names its operations by SHA-256 from the manifest its build
wrote, and with TENURE_MEMBER_PERSISTED_ONLY a member token runs nothing else, while staff
keys keep sending any document."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tenure.core.settings import SettingsError
from tests.core.helpers import create_customer

ME = "query Me { me { id name } }"
OTHER = "query Mine { me { name emails } }"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps({digest(ME): ME}))
    return path


def by_hash(document: str) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest(document)}}, "variables": {}}


async def member_of(tenure: Any, name: str) -> str:
    """A member token for a new customer called ``name``."""
    await create_customer(tenure, name)
    return str(tenure.member_token(await tenure.scalar("SELECT id FROM customers WHERE name = :name", name=name)))


async def post(tenure: Any, body: dict[str, Any], key: str) -> dict[str, Any]:
    response = await tenure.client.post("/graphql", json=body, headers={"Authorization": f"Bearer {key}"})
    return response.json()


async def test_a_member_app_runs_its_documents_by_hash_and_nothing_else(
        make_tenure: Callable[..., Any], manifest: Path) -> None:
    async with make_tenure(plugins=[], persisted_documents=str(manifest), member_persisted_only=True) as tenure:
        member = await member_of(tenure, "Ada Member")

        answer = await post(tenure, by_hash(ME), member)
        assert answer["data"]["me"]["name"] == "Ada Member"
        assert "errors" not in answer

        # The full text of a listed document is fine too (an app that sends both).
        answer = await post(tenure, {"query": ME, **by_hash(ME)}, member)
        assert answer["data"]["me"]["name"] == "Ada Member"

        refused = await post(tenure, {"query": OTHER}, member)
        assert refused.get("data") is None
        assert refused["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
        assert "TENURE_MEMBER_PERSISTED_ONLY" in refused["errors"][0]["message"]

        unknown = await post(tenure, by_hash(OTHER), member)
        assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert unknown["errors"][0]["message"].startswith("PersistedQueryNotFound")

        forged = await post(tenure, {"query": OTHER, **by_hash(ME)}, member)
        assert forged["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"

        # Staff keys are not held to the manifest (the portal, scripts, GraphiQL).
        staff = await tenure.key("staff")
        viewer = await post(tenure, {"query": "{ viewer { role } }"}, staff)
        assert viewer["data"]["viewer"]["role"].lower() == "staff"


async def test_without_the_setting_members_may_send_any_document(
        make_tenure: Callable[..., Any], manifest: Path) -> None:
    async with make_tenure(plugins=[], persisted_documents=str(manifest)) as tenure:
        member = await member_of(tenure, "Cy Free")
        assert (await post(tenure, {"query": OTHER}, member))["data"]["me"]["name"] == "Cy Free"
        assert (await post(tenure, by_hash(ME), member))["data"]["me"]["name"] == "Cy Free"


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("content", "says"), [
    ("not json", "is not JSON"),
    ('["a list"]', "must be a JSON object"),
    (json.dumps({"0" * 64: ME}), "not the SHA-256 of their document"),
])
async def test_a_bad_manifest_stops_the_server_with_what_is_wrong(
        make_tenure: Callable[..., Any], tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "documents.json"
    path.write_text(content)
    with pytest.raises(SettingsError, match=says):
        async with make_tenure(plugins=[], persisted_documents=str(path)):
            pass


@pytest.mark.sqlite_only
async def test_members_only_without_a_manifest_is_refused(make_tenure: Callable[..., Any]) -> None:
    with pytest.raises(SettingsError, match="TENURE_MEMBER_PERSISTED_ONLY needs TENURE_PERSISTED_DOCUMENTS"):
        async with make_tenure(plugins=[], member_persisted_only=True):
            pass
