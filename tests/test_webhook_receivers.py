"""The receivers in examples/webhook-receivers take real deliveries from Tenure: they verify
them with the Standard Webhooks reference library (Python's ``standardwebhooks``, the npm
package of the same name), hand each event on once, and refuse a tampered body."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tenure.testing import TenureHarness, pk_of
from tests.core.helpers import ERRORS, create_customer, record_order
from tests.support.receivers import free_port

RECEIVERS = Path(__file__).parent.parent / "examples" / "webhook-receivers"
SUBSCRIBE = f"""mutation($u: String!) {{ createWebhookSubscription(input: {{url: $u, eventTypes: ["order.*"]}}) {{
  subscription {{ id }} secret {ERRORS} }} }}"""
DELIVERIES = """query($id: ID!) { webhookDeliveries(subscriptionId: $id, first: 10) { nodes { id ok statusCode } } }"""


def python_receiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver", RECEIVERS / "python" / "receiver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def serving(server: Any) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_the_python_receiver_takes_a_real_delivery_once_and_refuses_a_tampered_one(
    tenure: TenureHarness,
) -> None:
    example = python_receiver()
    port = free_port()
    hook = (await tenure.ok(SUBSCRIBE, {"u": f"http://127.0.0.1:{port}/tenure"}))["createWebhookSubscription"]
    assert hook["userErrors"] == []
    events: list[dict[str, Any]] = []
    raw: list[tuple[dict[str, str], bytes]] = []

    class Recording(example.Receiver):  # what arrived, to send again altered
        def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
            raw.append((headers, body))
            return super().receive(headers, body)

    with serving(example.serve(Recording(hook["secret"], events.append), port)):
        cid = await create_customer(tenure, "Receiver")
        await record_order(tenure, cid, "R-1", 2500)
        assert await tenure.run_jobs() == {"done": 1}
        assert [(e["type"], e["data"]["amount"], e["customerId"]) for e in events] == [
            ("order.recorded", 2500, pk_of(cid))]

        received, body = raw[0]
        # Sent again as they came, bar the framing headers httpx sets for each body.
        headers = {k: v for k, v in received.items() if k.lower() not in ("content-length", "host")}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            tampered = body.replace(b'"amount":2500', b'"amount":1')
            assert tampered != body
            refused = await client.post("/tenure", content=tampered, headers=headers)
            assert (refused.status_code, refused.text) == (400, "refused: No matching signature found")
            unsigned = await client.post("/tenure", content=body, headers={"Content-Type": "application/json"})
            assert (unsigned.status_code, unsigned.text) == (400, "refused: Missing required headers")
            again = await client.post("/tenure", content=body, headers=headers)
            assert (again.status_code, again.text) == (200, "already handled")
        # A replay from Tenure is the same delivery: accepted, not handled twice.
        (delivery,) = (await tenure.ok(DELIVERIES, {"id": hook["subscription"]["id"]}))["webhookDeliveries"]["nodes"]
        await tenure.ok(f"mutation($id: ID!) {{ replayWebhookDelivery(deliveryId: $id) {{ queued {ERRORS} }} }}",
                        {"id": delivery["id"]})
        assert await tenure.run_jobs() == {"done": 1}
    assert len(events) == 1 and len(raw) == 5
    nodes = (await tenure.ok(DELIVERIES, {"id": hook["subscription"]["id"]}))["webhookDeliveries"]["nodes"]
    assert [(n["ok"], n["statusCode"]) for n in nodes] == [(True, 200), (True, 200)]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed (Node 20 runs the Node receiver)")
@pytest.mark.sqlite_only
async def test_the_node_receiver_takes_a_real_delivery_and_refuses_a_tampered_one(
    tenure: TenureHarness, tmp_path: Path
) -> None:
    target = tmp_path / "node-receiver"
    shutil.copytree(RECEIVERS / "node", target, ignore=shutil.ignore_patterns("node_modules"))
    install = await asyncio.to_thread(
        subprocess.run, ["npm", "ci", "--no-audit", "--no-fund"], cwd=target, capture_output=True, text=True,
        timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    port = free_port()
    hook = (await tenure.ok(SUBSCRIBE, {"u": f"http://127.0.0.1:{port}/tenure"}))["createWebhookSubscription"]
    process = await asyncio.create_subprocess_exec(
        "node", "receiver.js", str(port), cwd=target,
        env={"PATH": os.environ.get("PATH", ""), "TENURE_WEBHOOK_SECRET": hook["secret"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stderr is not None and process.stdout is not None
        listening = await asyncio.wait_for(process.stderr.readline(), 30)
        assert listening.decode().startswith(f"listening on http://127.0.0.1:{port}/")
        cid = await create_customer(tenure, "Node")
        await record_order(tenure, cid, "N-1", 1200)
        assert await tenure.run_jobs() == {"done": 1}
        printed = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert printed["type"] == "order.recorded" and printed["customerId"] == pk_of(cid)
        # Signed now with the subscription's secret, then altered on the way.
        body = json.dumps({**printed, "id": 999}).encode()
        now = datetime.now(UTC)
        headers = {"webhook-id": "evt_999", "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": Webhook(hook["secret"]).sign("evt_999", now, body.decode())}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            refused = await client.post("/tenure", content=body.replace(b"999", b"998"), headers=headers)
            assert (refused.status_code, refused.text) == (400, "refused: No matching signature found")
            accepted = await client.post("/tenure", content=body, headers=headers)
            assert (accepted.status_code, accepted.text) == (200, "ok")
    finally:
        process.terminate()
        await process.wait()
