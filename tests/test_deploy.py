"""The Docker deployment, checked without Docker: the image's shape, and docker-compose.yml's
own commands and settings run here against a real PostgreSQL and Redis (only the host names
and the port change), carrying a webhook from the API through Redis to a worker."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenure.core.settings import Settings
from tenure.testing import pk_of

yaml = pytest.importorskip("yaml")  # PyYAML: in the [dev] extra

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
TENURE_SERVICES = ("migrate", "api", "worker", "scheduler")
SUBSTITUTION = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def test_the_compose_file_runs_the_tested_commands() -> None:
    assert set(SERVICES) == {"migrate", "proxy", "api", "worker", "scheduler", "postgres", "redis"}
    assert SERVICES["migrate"]["command"] == ["tenure", "migrate"]
    assert SERVICES["api"]["command"][:2] == ["tenure", "serve"]
    assert SERVICES["api"]["command"][2:4] == ["--host", "0.0.0.0"]
    assert SERVICES["worker"]["command"][:2] == ["tenure", "worker"]
    assert SERVICES["scheduler"]["command"] == ["tenure", "scheduler"]
    for name in ("api", "worker", "scheduler"):
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert SERVICES["postgres"]["image"].startswith("postgres:") and SERVICES["redis"]["image"].startswith("redis:")


def published_ports(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_only_the_proxy_publishes_a_port_so_the_api_scales() -> None:
    """`docker compose up --scale api=3` works: no api replica claims a host port; the proxy
    alone does, and its Caddyfile sends requests to every address of the api service."""
    publishing = {name for name, service in SERVICES.items() if published_ports(service)}
    assert publishing == {"proxy"}
    assert SERVICES["proxy"]["image"].startswith(("caddy:", "nginx:"))
    (published,) = published_ports(SERVICES["proxy"])
    host_port, container_port = published.rsplit(":", 1)
    assert SUBSTITUTION.sub(lambda m: m.group(3) or "", host_port) == "8000"
    api = SERVICES["api"]
    assert "ports" not in api and "container_name" not in api
    assert api.get("deploy", {}).get("replicas", 1) >= 1 and "--workers" in api["command"]
    api_port = api["command"][api["command"].index("--port") + 1]
    assert api["expose"] == [api_port]

    mounts = [m.split(":") for m in SERVICES["proxy"]["volumes"]]
    caddyfile = next(ROOT / source for source, target, *_ in mounts if target == "/etc/caddy/Caddyfile")
    config = caddyfile.read_text()
    site = re.search(r"^:(\d+) \{", config, flags=re.MULTILINE)
    assert site is not None and site.group(1) == container_port
    upstream = re.search(r"dynamic a \{\s*name (\S+)\s*port (\d+)", config)
    assert upstream is not None and upstream.groups() == ("api", api_port)
    assert config.count("{") == config.count("}")


def test_one_scheduler_however_the_rest_scales() -> None:
    scheduler = SERVICES["scheduler"]
    assert scheduler["deploy"]["replicas"] == 1
    assert "ports" not in scheduler and scheduler["command"] == ["tenure", "scheduler"]
    assert "--workers" not in SERVICES["worker"]["command"]  # workers scale by containers


def test_every_setting_the_compose_file_uses_is_a_real_one() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in TENURE_SERVICES:
        env = SERVICES[name]["environment"]
        unknown = [k for k in env if not k.startswith("TENURE_") or k.removeprefix("TENURE_").lower() not in fields]
        assert unknown == [], f"{name}: {unknown} are not Tenure settings"
        # And together they are valid: production with a real secret, PostgreSQL and Redis.
        settings = Settings.from_env(resolve(env, {"TENURE_SECRET_KEY": "k" * 40}), env_file=None)
        assert settings.production and settings.broker_url.startswith("redis://")
        assert settings.resolved_database_url.startswith("postgresql+asyncpg://")


def test_the_image_is_slim_non_root_and_checks_its_health() -> None:
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.MULTILINE) == ["python:3.11-slim"] * 2
    users = re.findall(r"^USER (\S+)", DOCKERFILE, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(rf"useradd .*\b{users[-1]}\b", DOCKERFILE)
    healthcheck = DOCKERFILE.split("HEALTHCHECK", 1)[1].split("\nCMD [", 1)[0]
    assert "/healthz" in healthcheck
    assert DOCKERFILE.rstrip().splitlines()[-1] == 'CMD ["tenure", "serve", "--host", "0.0.0.0"]'
    assert "tests" in (ROOT / ".dockerignore").read_text().split()


def resolve(env: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``, from ``given``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in given:
            return given[name]
        if kind == "-":
            return rest
        raise KeyError(f"{name} must be set: {rest}")

    return {k: SUBSTITUTION.sub(one, str(v)) for k, v in env.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint that records what is POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": json.loads(body), "signature": self.headers.get("webhook-signature"),
                             "traceparent": self.headers.get("traceparent")})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


async def empty_database(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        names = (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars()
        for name in list(names):
            await conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    await engine.dispose()


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.slow
def test_compose_commands_serve_and_work_with_postgres_and_redis(
    postgres_url: str, receiver: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    redis_url = os.environ.get("TENURE_TEST_REDIS_URL")
    if not redis_url:
        pytest.skip("Redis not configured (set TENURE_TEST_REDIS_URL)")
    hook_url, received = receiver
    # The core alone: each plugin's migrations and jobs are tested with the plugin itself.
    env = resolve(SERVICES["api"]["environment"], {"TENURE_SECRET_KEY": "s" * 40, "TENURE_PLUGINS": ""})
    env["TENURE_DATABASE_URL"] = postgres_url
    env["TENURE_BROKER_URL"] = redis_url
    # The receiver is this test's, on 127.0.0.1 over http: production refuses both unless told.
    env["TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = env["TENURE_WEBHOOK_ALLOW_HTTP"] = "true"
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("TENURE_", "OTEL_"))} | env
    # Traces on, as OTEL_* turns them on in the image (which has tenure[otel]): spans on stdout.
    process_env["OTEL_TRACES_EXPORTER"] = "console"
    tenure = shutil.which("tenure")
    assert tenure is not None
    port = free_port()
    api_command = list(SERVICES["api"]["command"])
    api_command[api_command.index("--port") + 1] = str(port)

    def start(command: list[str], log: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([tenure, *command[1:]], cwd=tmp_path, env=process_env,
                                stdout=(tmp_path / f"{log}.spans").open("wb"), stderr=(tmp_path / log).open("wb"))

    asyncio.run(empty_database(postgres_url))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        migrate = subprocess.run([tenure, *SERVICES["migrate"]["command"][1:]], cwd=tmp_path, env=process_env,
                                 capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr
        key = subprocess.run([tenure, "apikey", "create", "--name", "deploy", "--role", "admin"], cwd=tmp_path,
                             env=process_env, capture_output=True, text=True, timeout=60).stdout.strip()
        processes = [start(api_command, "api.log"), start(SERVICES["worker"]["command"], "worker.log"),
                     start(SERVICES["scheduler"]["command"], "scheduler.log")]
        base = f"http://127.0.0.1:{port}"
        health = wait_for(lambda: httpx.get(f"{base}/healthz", headers={"X-Request-ID": "probe-1"}), 60, "/healthz")
        assert health.status_code == 200 and health.headers["x-request-id"] == "probe-1"
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}

        def graphql(query: str, variables: dict[str, Any], request_id: str) -> dict[str, Any]:
            answer = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables},
                                headers={"Authorization": f"Bearer {key}", "X-Request-ID": request_id,
                                         "traceparent": f"00-{CALLER_TRACE}-b7ad6b7169203331-01"}, timeout=30)
            assert answer.headers["x-request-id"] == request_id
            return answer.json()["data"]  # type: ignore[no-any-return]

        graphql("mutation Subscribe($url: String!) { createWebhookSubscription(input: {url: $url}) "
                "{ userErrors { message } } }", {"url": hook_url}, "deploy-1")
        created = graphql('mutation NewCustomer { createCustomer(input: {name: "Docker Dora"}) '
                          "{ customer { id } userErrors { message } } }", {}, "deploy-2")
        customer_id = pk_of(created["createCustomer"]["customer"]["id"])

        wait_for(lambda: any(r["body"]["type"] == "customer.created" for r in received), 60,
                 "the worker to deliver the webhook")
        delivery = next(r for r in received if r["body"]["type"] == "customer.created")
        assert delivery["body"]["customerId"] == customer_id and delivery["signature"].startswith("v1,")

        def delivered_in_metrics() -> str | None:
            text = httpx.get(f"{base}/metrics").text
            return text if 'tenure_jobs{job="core.deliver_webhook",status="done"} 1' in text else None

        metrics = wait_for(delivered_in_metrics, 30, "the delivery to show in /metrics")
        assert 'tenure_graphql_operations_total{operation="NewCustomer"} 1' in metrics
        assert all(p.poll() is None for p in processes), "a compose service exited"
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        asyncio.run(empty_database(postgres_url))
        from tenure.testing import create_all

        asyncio.run(create_all(postgres_url))

    access = [json.loads(line) for line in (tmp_path / "api.log").read_text().splitlines() if line.startswith("{")]
    lines = [a for a in access if a.get("request_id") == "deploy-2" and a.get("logger") == "tenure.access"]
    assert lines and lines[0]["path"] == "/graphql" and lines[0]["status"] == 200
    # The caller's trace runs through the API, the outbox and the worker to the receiver.
    assert lines[0]["trace_id"] == CALLER_TRACE
    jobs = [s for s in console_spans(tmp_path / "worker.log.spans") if s["name"] == "job core.deliver_webhook"]
    assert [s["context"]["trace_id"] for s in jobs] == [f"0x{CALLER_TRACE}"]
    assert jobs[0]["attributes"]["tenure.request_id"] == "deploy-2"
    assert delivery["traceparent"].split("-")[1] == CALLER_TRACE


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def console_spans(path: Path) -> list[dict[str, Any]]:
    """The spans OTEL_TRACES_EXPORTER=console wrote: JSON objects one after another."""
    text, decoder, found, at = path.read_text(), json.JSONDecoder(), [], 0
    while (at := text.find("{\n", at)) >= 0:
        span, at = decoder.raw_decode(text, at)
        found.append(span)
    return found
