"""The TypeScript example (examples/typescript-client) builds from the published schema.graphql
with GraphQL Code Generator and tsc, as a frontend team would build it, fails to build when an
operation or the client no longer fits the schema, and its client talks to a real Tenure server.

Needs Node and npm (and the npm registry for ``npm ci``); skipped only where Node is not
installed (CI installs Debian's nodejs and npm).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
if shutil.which("node") is None:
    pytest.skip("Node is not installed (apt-get install nodejs npm)", allow_module_level=True)

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "typescript-client"
PLUGINS = "churn,loyalty,nps,renewals,tiers"


def npm(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def client_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the example (no node_modules, nothing generated) next to a copy of
    schema.graphql, installed from the lock file and built once."""
    assert shutil.which("npm"), "Node is installed without npm (apt-get install npm)"
    root = tmp_path_factory.mktemp("ts")
    shutil.copy(ROOT / "schema.graphql", root / "schema.graphql")
    target = root / "examples" / "typescript-client"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("node_modules", "generated", "dist"))
    install = npm("ci", "--no-audit", "--no-fund", cwd=target)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    build = npm("run", "build", cwd=target)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return target


def test_build_generates_types_for_each_operation(client_dir: Path) -> None:
    generated = (client_dir / "src" / "generated" / "graphql.ts").read_text()
    for name in ("PortalCustomersQuery", "MeQuery", "RecordOrderMutation", "RecordOrderInput"):
        assert f"export type {name} =" in generated, name
    assert "churnRisk: { __typename?: 'ChurnRisk', score: number, level: RiskLevel" in generated
    # The schema's descriptions come along as doc comments, for the editor to show.
    assert re.search(r"export type RiskLevel =\n  /\*\* [^\n]+ \*/\n  \| 'HIGH'", generated), "RiskLevel"


def build_with_edit(client_dir: Path, path: Path, old: str, new: str) -> subprocess.CompletedProcess[str]:
    """Build with one edit to a file, then undo it and build again, leaving good types behind."""
    original = path.read_text()
    assert old in original, f"{old!r} not in {path.name}"
    path.write_text(original.replace(old, new, 1))
    try:
        return npm("run", "build", cwd=client_dir)
    finally:
        path.write_text(original)
        again = npm("run", "build", cwd=client_dir)
        assert again.returncode == 0, again.stdout[-3000:]


def test_an_operation_asking_for_a_field_the_schema_lacks_fails_the_build(client_dir: Path) -> None:
    operation = client_dir / "src" / "operations" / "portal.graphql"
    build = build_with_edit(client_dir, operation, "        reasons\n", "        reasonsText\n")
    assert build.returncode != 0
    assert 'Cannot query field "reasonsText" on type "ChurnRisk"' in build.stdout + build.stderr


def test_a_field_that_became_nullable_fails_the_type_check_of_the_client(client_dir: Path) -> None:
    schema = client_dir.parent.parent / "schema.graphql"
    build = build_with_edit(client_dir, schema, "  totalSpent: Money!\n", "  totalSpent: Money\n")
    assert build.returncode != 0
    assert "src/client.ts" in build.stdout and "totalSpent" in build.stdout, build.stdout[-3000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def manifest(client_dir: Path) -> Path:
    """The client's persisted documents, as `npm run persisted` writes them."""
    run = npm("run", "--silent", "persisted", cwd=client_dir)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return client_dir / "persisted-documents.json"


def test_the_manifest_holds_each_operation_by_its_hash(manifest: Path) -> None:
    documents = json.loads(manifest.read_text())
    assert len(documents) == 3
    for key, text in documents.items():
        assert hashlib.sha256(text.encode()).hexdigest() == key
    assert sorted(text.split("(")[0].split("{")[0].strip() for text in documents.values()) == [
        "mutation RecordOrder", "query Me", "query PortalCustomers"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, manifest: Path) -> Iterator[dict[str, Any]]:
    """Tenure with every built-in plugin on SQLite, one customer, keys and a member token;
    member tokens may run only the client's persisted documents."""
    folder = tmp_path_factory.mktemp("ts-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update(
        TENURE_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'tenure.db'}",
        TENURE_PLUGINS=PLUGINS,
        TENURE_ENVIRONMENT="test",
        # The demo reads the customer's churn risk right after its order: rescore at once
        # rather than in the next 5-second window.
        TENURE_CHURN_RESCORE_DELAY_SECONDS="0",
        TENURE_PERSISTED_DOCUMENTS=str(manifest),
        TENURE_MEMBER_PERSISTED_ONLY="true",
    )

    def tenure(*args: str) -> str:
        done = subprocess.run(["tenure", *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip()

    tenure("migrate")
    admin = tenure("apikey", "create", "--name", "ts admin", "--role", "admin")
    integration = tenure("apikey", "create", "--name", "ts shop", "--role", "integration")
    port = free_port()
    process = subprocess.Popen(
        ["tenure", "serve", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "tenure serve did not answer"
            time.sleep(0.25)

        def gql(query: str, variables: dict[str, Any]) -> Any:
            answer = httpx.post(
                f"{url}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {admin}"},
                timeout=30,
            ).json()
            assert "errors" not in answer, answer
            return answer["data"]

        customer = gql(
            "mutation($input: UpsertCustomerInput!) { upsertCustomer(input: $input) { customer { id } } }",
            {"input": {"identity": {"kind": "email", "value": "ada@example.com"}, "customer": {"name": "Ada"}}},
        )["upsertCustomer"]["customer"]["id"]
        token = gql("mutation($id: ID!) { issueMemberToken(input: {customerId: $id}) { token } }", {"id": customer})[
            "issueMemberToken"
        ]["token"]
        yield {
            "url": f"{url}/graphql",
            "admin": admin,
            "integration": integration,
            "token": token,
            "customer": customer,
        }
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_typed_client_records_an_order_and_reads_it_back_as_staff_and_as_the_member(
    client_dir: Path, server: dict[str, Any]
) -> None:
    env = dict(
        os.environ,
        TENURE_URL=server["url"],
        TENURE_STAFF_KEY=server["admin"],
        TENURE_INTEGRATION_KEY=server["integration"],
        TENURE_MEMBER_TOKEN=server["token"],
        TENURE_CUSTOMER_ID=server["customer"],
        TENURE_PERSISTED="1",
    )
    run = npm("run", "--silent", "demo", cwd=client_dir, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])

    order = result["recorded"]["order"]
    assert result["recorded"]["created"] is True
    assert order["amount"] == {"amount": 2500, "currency": "USD"}
    assert order["customer"]["id"] == server["customer"]
    assert result["rejected"] and result["rejected"][0].startswith("input.currency:"), result["rejected"]

    assert result["totalCount"] == 1
    [customer] = result["customers"]
    assert customer["id"] == server["customer"]
    assert customer["orderCount"] == 1
    assert customer["totalSpent"] == {"amount": 2500, "currency": "USD"}
    # The order earns points that stay pending through the return window.
    assert customer["points"]["pending"] > 0
    risk = customer["churnRisk"]
    assert result["lines"] == [f"Ada: 0 points, no tier, risk {risk['level']} ({risk['score']}), spent 2500 USD"]

    me = result["me"]
    assert me["id"] == server["customer"] and me["name"] == "Ada"
    assert me["points"]["balance"] == customer["points"]["balance"]
    assert me["points"]["pending"] == customer["points"]["pending"]


def test_a_member_token_cannot_run_a_document_the_app_did_not_ship(server: dict[str, Any]) -> None:
    answer = httpx.post(server["url"], json={"query": "{ me { name emails } }"},
                        headers={"Authorization": f"Bearer {server['token']}"}, timeout=30).json()
    assert answer.get("data") is None
    assert answer["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_REQUIRED"
