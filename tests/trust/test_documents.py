"""Documents built to cost the server before anyone is authenticated: nested fragment
spreads are measured once each, so every limit answers at once and the server keeps
answering others; several operations need a name; suggestions are for known callers."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenure.testing import TenureHarness
from tests.test_deploy import free_port


def nested_spreads(levels: int, leaf: str = "__typename") -> str:
    """``query { ...L0 }`` where each fragment spreads the next ten times: ``10 ** levels``
    leaves once expanded, in a document of a few hundred bytes per ten levels."""
    parts = ["query { ...L0 }"]
    parts += [f"fragment L{k} on Query {{ {' '.join([f'...L{k + 1}'] * 10)} }}" for k in range(levels)]
    parts.append(f"fragment L{levels} on Query {{ {leaf} }}")
    return " ".join(parts)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``tenure serve`` as its own process on a fresh SQLite file, for tests that must see
    the server stay responsive while it answers something else."""
    port = free_port()
    tenure = shutil.which("tenure")
    assert tenure, "the tenure command is installed with the package"
    env = {**os.environ, "TENURE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 't.db'}", "TENURE_PLUGINS": ""}
    process = subprocess.Popen([tenure, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "tenure serve did not answer /healthz within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.sqlite_only
def test_nested_fragments_are_refused_at_once_while_healthz_answers(served: str) -> None:
    slowest: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert httpx.get(f"{served}/healthz", timeout=10).status_code == 200
            slowest.append(time.monotonic() - started)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for levels in (10, 30):
            for leaf, limit in (("__typename", "complexity"), ("a: viewer { role } b: viewer { role }", "aliases"),
                                ("viewer { role }", "complexity")):
                document = nested_spreads(levels, leaf)
                started = time.monotonic()
                answer = httpx.post(f"{served}/graphql", json={"query": document}, timeout=30).json()
                took = time.monotonic() - started
                assert answer["errors"][0]["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": limit}, answer
                assert answer.get("data") is None
                # Expanded, the 10-level document alone is ten billion fields; measured once per
                # fragment it is a few hundred, answered in milliseconds.
                assert took < 5, f"{levels} levels took {took:.1f} s"
    finally:
        stop.set()
        watcher.join()
    assert slowest and max(slowest) < 5, f"/healthz took up to {max(slowest):.1f} s"


async def test_a_document_of_several_operations_must_name_one(tenure: TenureHarness) -> None:
    document = "query A { viewer { role } } query B { viewer { name } }"
    unnamed = await tenure.gql(document, key=await tenure.key())
    assert unnamed.get("data") is None
    assert unnamed["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "operationName"}
    assert "operationName" in unnamed["errors"][0]["message"]
    named = await tenure.client.post("/graphql", json={"query": document, "operationName": "A"},
                                     headers={"Authorization": f"Bearer {await tenure.key()}"})
    assert named.json() == {"data": {"viewer": {"role": "ADMIN"}}}


@pytest.mark.parametrize("introspection", [True, False])
async def test_suggestions_go_only_to_known_callers_of_an_open_schema(make_tenure: Any, introspection: bool) -> None:
    async with make_tenure(plugins=[], introspection=introspection) as tenure:
        typo = "{ customr(id: 1) { id } }"
        anonymous = await tenure.gql(typo)
        assert anonymous["errors"][0]["message"] == "Cannot query field 'customr' on type 'Query'."
        known = await tenure.gql(typo, key=await tenure.key())
        assert ("Did you mean 'customer'" in known["errors"][0]["message"]) is introspection
