"""Request ids on every response and log line, JSON logs, and Prometheus metrics by
operation, for jobs and for the outbox."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenure.core import logging as tenure_logging
from tenure.core.clock import FrozenClock
from tenure.core.context import ServiceContext
from tenure.core.contributions import JobSpec, PluginInfo
from tenure.core.plugins import hookimpl
from tenure.core.settings import Settings, SettingsError
from tenure.testing import TenureHarness


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What Tenure logs while the test runs, as ``TENURE_LOG_FORMAT=json`` writes it."""
    stream = io.StringIO()
    handler = tenure_logging.handler_for("json")
    handler.setStream(stream)  # type: ignore[attr-defined]
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_request_ids_come_back_and_mark_the_log_lines(tenure: TenureHarness, json_log: io.StringIO) -> None:
    given = await tenure.client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
    assert given.headers["x-request-id"] == "lb-7f3a.1"
    made = [await tenure.client.get("/healthz") for _ in range(2)]
    ids = [r.headers["x-request-id"] for r in made]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    refused = await tenure.client.get("/healthz", headers={"X-Request-ID": "no spaces <allowed>"})
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
    too_big = await tenure.client.post("/graphql", content=b"{}", headers={"X-Request-ID": "big-1",
                                                                           "Content-Length": "99999999"})
    assert too_big.status_code == 413 and too_big.headers["x-request-id"] == "big-1"

    access = [r for r in records(json_log) if r["logger"] == "tenure.access"]
    first = next(r for r in access if r["request_id"] == "lb-7f3a.1")
    assert (first["method"], first["path"], first["status"], first["level"]) == ("GET", "/healthz", 200, "INFO")
    assert first["duration_ms"] >= 0 and first["time"].endswith("+00:00")
    assert {r["request_id"] for r in access} >= {"lb-7f3a.1", *ids, "big-1"}


def test_text_logs_carry_the_request_id_too() -> None:
    stream = io.StringIO()
    handler = tenure_logging.handler_for("text")
    handler.setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("tenure.test.text")
    log.addHandler(handler)
    log.propagate = False
    token = tenure_logging.REQUEST_ID.set("abc-123")
    try:
        log.warning("customer %s merged", 7)
    finally:
        tenure_logging.REQUEST_ID.reset(token)
        log.removeHandler(handler)
    assert re.fullmatch(r".+ WARNING tenure\.test\.text \[abc-123\] customer 7 merged\n", stream.getvalue())


def test_a_log_format_tenure_cannot_write_is_refused() -> None:
    with pytest.raises(SettingsError, match="TENURE_LOG_FORMAT: json or text"):
        Settings.from_env({"TENURE_LOG_FORMAT": "xml"}, env_file=None)


def flaky_plugin() -> types.ModuleType:
    """A plugin whose job fails on its first attempt and succeeds on the next."""
    module = types.ModuleType("probe_plugin")
    attempts: list[int] = []

    async def flaky(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the partner's API timed out")

    module.tenure_plugin_info = hookimpl(lambda: PluginInfo("probe", "1.0", "a flaky job"))  # type: ignore[attr-defined]
    module.tenure_jobs = hookimpl(lambda: [JobSpec("probe.flaky", flaky)])  # type: ignore[attr-defined]
    return module


def metric(text: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.MULTILINE)
    return float(match.group(1)) if match else None


async def test_metrics_by_operation_job_and_outbox_lag(
    make_tenure: Callable[..., Any], frozen_clock: FrozenClock
) -> None:
    async with make_tenure(plugins=["probe"], extra_plugins=[flaky_plugin()]) as tenure:
        await tenure.ok("query CountCustomers { customers(first: 1) { totalCount } }")
        await tenure.ok("query CountCustomers { customers(first: 1) { totalCount } }")
        await tenure.client.post("/graphql", json={"query": "query A { a: customers(first: 1) { totalCount } } "
                                                   "query B { b: customers(first: 2) { totalCount } }",
                                                   "operationName": "B"},
                                 headers={"Authorization": f"Bearer {await tenure.key('admin')}"})
        await tenure.gql("{ customers(first: 1) { totalCount } }")  # anonymous, and not signed in
        await tenure.gql('query Broken { customer(id: "0") { name } }', key=await tenure.key("admin"))

        async with tenure.transaction() as ctx:
            await ctx.enqueue("probe.flaky", {}, dedupe_key="probe-1")
        assert await tenure.run_jobs() == {"retry": 1}
        frozen_clock.advance(seconds=42)
        text = (await tenure.client.get("/metrics")).text
        assert metric(text, 'tenure_outbox_lag_seconds') == pytest.approx(42 - 5.0)  # due after a 5 s backoff
        assert metric(text, 'tenure_job_failed_attempts{job="probe.flaky"}') == 1
        assert metric(text, 'tenure_jobs{job="probe.flaky",status="pending"}') == 1

        assert await tenure.run_jobs() == {"done": 1}
        text = (await tenure.client.get("/metrics")).text

    assert metric(text, 'tenure_graphql_operations_total{operation="CountCustomers"}') == 2
    assert metric(text, 'tenure_graphql_operation_errors_total{operation="CountCustomers"}') == 0
    assert metric(text, 'tenure_graphql_operation_seconds_count{operation="CountCustomers"}') == 2
    assert metric(text, 'tenure_graphql_operations_total{operation="B"}') == 1
    assert metric(text, 'tenure_graphql_operations_total{operation="A"}') is None
    assert metric(text, 'tenure_graphql_operation_errors_total{operation="anonymous"}') == 1
    assert metric(text, 'tenure_graphql_operation_errors_total{operation="Broken"}') == 1
    assert metric(text, 'tenure_jobs{job="probe.flaky",status="done"}') == 1
    assert metric(text, 'tenure_job_failed_attempts{job="probe.flaky"}') == 1
    assert metric(text, "tenure_outbox_lag_seconds") == 0
    assert (metric(text, "tenure_graphql_requests_total") or 0) >= 5


def test_operation_names_from_clients_cannot_flood_the_metrics() -> None:
    from tenure.schema.metrics import MAX_OPERATIONS, Metrics, operation_label

    assert operation_label(None, "  mutation RecordSale($x: Int) { a }") == "RecordSale"
    assert operation_label("Given", "query Other { a }") == "Given"
    assert operation_label("bad name}", None) == "anonymous"
    metrics = Metrics()
    for n in range(MAX_OPERATIONS + 50):
        metrics.observe_operation(f"op{n}", 0.01, failed=False)
    text = metrics.request_figures().decode()
    series = re.findall(r'^tenure_graphql_operations_total\{operation="(\w+)"\} (\S+)$', text, flags=re.MULTILINE)
    assert len(series) == MAX_OPERATIONS + 1 and dict(series)["other"] == "50.0"
    assert "op199" in dict(series) and "op200" not in dict(series)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def figures_by_process(folder: Path, name: str) -> list[float]:
    """What each server process wrote for one unlabelled counter in the multiprocess folder."""
    from prometheus_client.mmap_dict import MmapedDict

    counted = []
    for path in sorted(folder.glob("counter_*.db")):
        values = [v for key, v, _, _ in MmapedDict.read_all_values_from_file(str(path)) if json.loads(key)[1] == name]
        counted.append(sum(values))
    return counted


@pytest.mark.slow
def test_one_scrape_counts_the_requests_of_every_worker_process(tmp_path: Path) -> None:
    """`tenure serve --workers 4` (real processes, a SQLite file): requests land on any
    process, and whichever process a scrape reaches, it counts them all."""
    tenure = shutil.which("tenure")
    assert tenure is not None
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "PROMETHEUS_"))}
    # A past run's figures in the folder: `tenure serve` must start from nothing.
    subprocess.run([sys.executable, "-c", "from prometheus_client import Counter; "
                    "Counter('tenure_graphql_requests', 'left over').inc(1000)"],
                   env=env | {"PROMETHEUS_MULTIPROC_DIR": str(folder)}, check=True)
    assert figures_by_process(folder, "tenure_graphql_requests_total") == [1000]
    port = free_port()
    env |= {"TENURE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'tenure.db'}", "TENURE_PLUGINS": "",
            "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    server = subprocess.Popen([tenure, "serve", "--workers", "4", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while len(list(folder.glob("counter_*.db"))) < 4 or not healthy(base):
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the four workers did not start"
            time.sleep(0.25)
        sent = 48

        def ask(n: int) -> int:
            # A new connection each time, so the requests spread over the processes.
            with httpx.Client(base_url=base, timeout=30) as client:
                answer = client.post("/graphql", json={"query": "query Ping { __typename }"})
                return answer.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(ask, range(sent))) == [200] * sent
        per_process = figures_by_process(folder, "tenure_graphql_requests_total")
        assert sum(per_process) == sent and sum(1 for n in per_process if n) >= 2, per_process
        for _ in range(6):  # each scrape on a new connection: any process, the same sums
            with httpx.Client(base_url=base, timeout=30) as client:
                text = client.get("/metrics").text
            assert metric(text, "tenure_graphql_requests_total") == sent
            assert metric(text, 'tenure_graphql_operations_total{operation="Ping"}') == sent
            assert metric(text, 'tenure_graphql_operation_seconds_count{operation="Ping"}') == sent
            assert metric(text, 'tenure_graphql_operation_errors_total{operation="Ping"}') == 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_with_several_workers_sets_up_a_fresh_folder_and_removes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenure.schema.metrics import multiprocess_folder

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with multiprocess_folder(1) as none:
        assert none is None and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    with multiprocess_folder(4) as made:
        assert made is not None and os.environ["PROMETHEUS_MULTIPROC_DIR"] == made
        assert list(Path(made).iterdir()) == []
    assert not Path(made).exists() and "PROMETHEUS_MULTIPROC_DIR" not in os.environ
