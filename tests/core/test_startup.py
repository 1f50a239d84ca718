"""Start-up and a database that goes away, as an operator meets them: real `tenure`
processes, a real PostgreSQL reached directly or through a TCP relay the test opens and
closes (the shared server itself is never stopped), real Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from tests.support.receivers import free_port

REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL", "")
TENURE = [sys.executable, "-m", "tenure.cli"]


class Relay:
    """A TCP relay from a local port to PostgreSQL: ``close`` refuses new connections and
    cuts the open ones (the database is unreachable), ``open`` lets them through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(50)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.listener is not listener:  # closed meanwhile
                client.close()
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.listener is not None:
            listener, self.listener = self.listener, None
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting on it
            listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets = []


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    env.update({"TENURE_LOG_LEVEL": "INFO", **settings})
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path,
         prefix: list[str] = TENURE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def _with(url: str, **parts: object) -> str:
    return make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.fixture
def pg(postgres_url: str) -> str:
    return postgres_url


def test_a_wrong_password_stops_start_up_with_one_line(pg: str, tmp_path: Path) -> None:
    result = _run(["serve"], _env(TENURE_DATABASE_URL=_with(pg, password="not-the-password")), tmp_path)
    user, where = make_url(pg).username, f"{make_url(pg).host}:{make_url(pg).port or 5432}"
    assert result.returncode == 1
    assert _lines(result) == [f'Error: TENURE_DATABASE_URL: password authentication failed for user "{user}" at '
                              f"{where}: check the password"]


def test_a_missing_database_stops_start_up_with_one_line(pg: str, tmp_path: Path) -> None:
    name = f"{make_url(pg).database}_never_created"
    result = _run(["serve"], _env(TENURE_DATABASE_URL=_with(pg, database=name)), tmp_path)
    assert result.returncode == 1
    assert _lines(result) == [f'Error: TENURE_DATABASE_URL: database "{name}" does not exist at '
                              f"{make_url(pg).host}:{make_url(pg).port or 5432}: create it (createdb {name}) or "
                              "correct the name"]


def test_a_wrong_port_stops_start_up_with_one_line(pg: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = _run(["serve"], _env(TENURE_DATABASE_URL=_with(pg, port=port)), tmp_path)
    assert result.returncode == 1
    assert _lines(result) == [f"Error: TENURE_DATABASE_URL: nothing answers at 127.0.0.1:{port} (connection "
                              "refused): check the host and port, and that PostgreSQL is running"]


@pytest.mark.skipif(not REDIS_URL, reason="set TENURE_TEST_REDIS_URL to start a scheduler")
def test_a_database_behind_the_enabled_plugins_stops_the_scheduler(pg: str, tmp_path: Path) -> None:
    import asyncio

    from sqlalchemy import text

    from tenure.core.db import Database

    async def sql(statement: str) -> None:
        db = Database(pg)
        try:
            async with db.transaction() as session:
                await session.execute(text(statement))
        finally:
            await db.dispose()

    asyncio.run(sql("DELETE FROM alembic_version WHERE version_num = 'loyalty_0001'"))
    try:
        env = _env(TENURE_DATABASE_URL=pg, TENURE_BROKER_URL=REDIS_URL, TENURE_PLUGINS="loyalty")
        result = _run(["scheduler"], env, tmp_path)
        assert result.returncode == 1
        assert _lines(result) == ["Error: the database is not migrated to the enabled plugins' heads (missing: "
                                  "loyalty loyalty_0001): run `tenure migrate`"]
        assert _run(["worker"], env, tmp_path).returncode == 1
        # Without loyalty on, the same database is at every head asked for.
        env["TENURE_PLUGINS"] = ""
        env["TENURE_BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/13"
        broker_down = _run(["scheduler"], env, tmp_path)
        assert broker_down.returncode == 1
        (line,) = _lines(broker_down)
        broker_port = make_url(env["TENURE_BROKER_URL"]).port
        assert line.startswith(f"Error: TENURE_BROKER_URL: nothing answers at 127.0.0.1:{broker_port}")
        assert line.endswith("check the host and port, and that Redis is running")
    finally:
        asyncio.run(sql("INSERT INTO alembic_version VALUES ('loyalty_0001')"))


def test_an_empty_sqlite_file_is_not_migrated_and_serve_says_so(tmp_path: Path) -> None:
    env = _env(TENURE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    result = _run(["serve", "--no-migrate"], env, tmp_path)
    assert result.returncode == 1
    assert _lines(result) == ["Error: the database is not migrated (no revision of Tenure's is applied to it): "
                              "run `tenure migrate`"]


def test_a_postgresql_url_without_its_driver_says_which_extra_to_install(pg: str, tmp_path: Path) -> None:
    # Python's documented way to make an import fail as if the package were absent.
    prefix = [sys.executable, "-c", "import sys; sys.modules['asyncpg'] = None; "
              "sys.argv[0] = 'tenure'; from tenure.cli import main; main()"]
    result = _run(["serve"], _env(TENURE_DATABASE_URL=pg), tmp_path, prefix=prefix)
    assert result.returncode == 1
    assert _lines(result) == ["Error: TENURE_DATABASE_URL names PostgreSQL but its driver is not installed: "
                              "pip install 'tenure[postgres]'"]


class Server:
    """`tenure serve` in its own process, its log kept in a file."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.log = cwd / f"serve-{self.port}.log"
        self.handle = self.log.open("w")
        self.process = subprocess.Popen([*TENURE, "serve", "--port", str(self.port), *args], env=env, cwd=cwd,
                                        stdout=self.handle, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text()

    def wait_until(self, condition: object, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if condition():  # type: ignore[operator]
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, self.text()
            time.sleep(0.2)
        raise AssertionError(f"not within {seconds} s; log:\n{self.text()}")

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200

    def stop(self) -> bool:
        """SIGTERM; whether the server shut down gracefully (uvicorn then ends by the same
        signal, as a process stopped by it should)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        finally:
            self.handle.close()
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in self.text()


@contextlib.contextmanager
def serving(env: dict[str, str], cwd: Path, *args: str) -> Iterator[Server]:
    server = Server(env, cwd, *args)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)
        server.handle.close()


def _key(pg: str, cwd: Path) -> str:
    created = _run(["apikey", "create", "--name", "ops", "--role", "admin"], _env(TENURE_DATABASE_URL=pg), cwd)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


COUNT = "{ customers(first: 1) { totalCount } }"


def test_wait_waits_for_the_database_one_line_per_attempt_then_starts(pg: str, tmp_path: Path) -> None:
    parsed = make_url(pg)
    relay = Relay((parsed.host or "127.0.0.1", parsed.port or 5432))
    env = _env(TENURE_DATABASE_URL=_with(pg, port=relay.port), TENURE_PLUGINS="")
    with serving(env, tmp_path, "--wait", "120") as server:
        server.wait_until(lambda: server.text().count("waiting (attempt") >= 3)
        relay.open()  # the database appears
        try:
            server.wait_until(server.ready)
            assert server.stop()
        finally:
            relay.close()
    log = server.text()
    waits = [line for line in log.splitlines() if "waiting (attempt" in line]
    assert waits[0].endswith(f"WARNING tenure.startup [-] waiting (attempt 1): TENURE_DATABASE_URL: nothing answers "
                             f"at 127.0.0.1:{relay.port} (connection refused): check the host and port, and that "
                             "PostgreSQL is running; next try in 1 s")
    assert "(attempt 2)" in waits[1] and "next try in 2 s" in waits[1]
    assert "Traceback" not in log
    assert f"answers now (after {len(waits) + 1} attempts); starting" in log


def test_wait_with_a_limit_gives_up_with_the_one_line(pg: str, tmp_path: Path) -> None:
    port = free_port()
    result = _run(["serve", "--wait", "2"], _env(TENURE_DATABASE_URL=_with(pg, port=port)), tmp_path)
    assert result.returncode == 1
    assert _lines(result)[-1] == (f"Error: TENURE_DATABASE_URL: nothing answers at 127.0.0.1:{port} (connection "
                                  "refused): check the host and port, and that PostgreSQL is running (waited 2 s)")


def test_graphql_answers_503_unavailable_while_the_database_is_unreachable_and_recovers(
        pg: str, tmp_path: Path) -> None:
    parsed = make_url(pg)
    relay = Relay((parsed.host or "127.0.0.1", parsed.port or 5432))
    relay.open()
    key = _key(pg, tmp_path)
    headers = {"Authorization": f"Bearer {key}"}
    env = _env(TENURE_DATABASE_URL=_with(pg, port=relay.port), TENURE_PLUGINS="",
               TENURE_RELAY_INTERVAL_SECONDS="0.1")
    try:
        with serving(env, tmp_path) as server:
            server.wait_until(server.ready)
            assert httpx.post(f"{server.url}/graphql", json={"query": COUNT}, headers=headers).status_code == 200

            # Marked before the cut: the scheduler may say why within a tenth of a second.
            failed_at = len(server.text())
            relay.close()  # the database becomes unreachable
            answer = httpx.post(f"{server.url}/graphql", json={"query": COUNT}, headers=headers)
            assert answer.status_code == 503
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.headers["retry-after"]
            assert answer.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "unreachable"
            assert ready.json()["detail"].startswith("TENURE_DATABASE_URL: ")
            assert f"127.0.0.1:{relay.port}" in ready.json()["detail"]
            time.sleep(4)  # some forty rounds of the scheduler fail meanwhile
            during = server.text()[failed_at:]
            assert during.count("Traceback") <= 1, during
            scheduler_lines = [line for line in during.splitlines() if "tenure.scheduler" in line]
            assert len(scheduler_lines) == 1, during
            # One line saying why (the pool's connection cut mid-query, or none to be had).
            assert "the scheduler cannot work: TENURE_DATABASE_URL: " in scheduler_lines[0]
            assert f"127.0.0.1:{relay.port}" in scheduler_lines[0]

            relay.open()  # back
            server.wait_until(lambda: httpx.post(f"{server.url}/graphql", json={"query": COUNT},
                                                 headers=headers).status_code == 200)
            server.wait_until(server.ready)
            server.wait_until(lambda: "the scheduler works again" in server.text())
            assert server.stop()
    finally:
        relay.close()


def test_readyz_says_when_the_database_is_not_migrated(pg: str, tmp_path: Path) -> None:
    import asyncio

    from sqlalchemy import text

    from tenure.core.db import Database

    async def sql(statement: str) -> None:
        db = Database(pg)
        try:
            async with db.transaction() as session:
                await session.execute(text(statement))
        finally:
            await db.dispose()

    with serving(_env(TENURE_DATABASE_URL=pg, TENURE_PLUGINS="loyalty"), tmp_path) as server:
        server.wait_until(server.ready)
        asyncio.run(sql("DELETE FROM alembic_version WHERE version_num = 'loyalty_0001'"))
        try:
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable", "reason": "not_migrated", "detail": (
                "the database is not migrated to the enabled plugins' heads (missing: loyalty loyalty_0001): run "
                "`tenure migrate`")}
        finally:
            asyncio.run(sql("INSERT INTO alembic_version VALUES ('loyalty_0001')"))
        assert server.ready()


class Silent:
    """An HTTP endpoint that takes the request and never answers: a webhook delivery to it
    is a job that runs until it is stopped."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(10)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        for held in self.held:
            held.close()


def test_sigterm_to_serve_releases_a_running_job_at_once(tmp_path: Path) -> None:
    database = tmp_path / "tenure.db"
    env = _env(TENURE_DATABASE_URL=f"sqlite+aiosqlite:///{database}", TENURE_PLUGINS="",
               TENURE_WEBHOOK_TIMEOUT_SECONDS="600", TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
               TENURE_JOB_DRAIN_SECONDS="1")
    assert _run(["migrate"], env, tmp_path).returncode == 0
    key = _key(f"sqlite+aiosqlite:///{database}", tmp_path)
    silent = Silent()
    try:
        with serving(env, tmp_path) as server:
            server.wait_until(server.ready)
            for query in ('mutation($u: String!) { createWebhookSubscription(input: {url: $u}) { userErrors '
                          '{ message } } }', 'mutation { createCustomer(input: {name: "Held"}) { userErrors '
                          '{ message } } }'):
                answer = httpx.post(f"{server.url}/graphql", json={"query": query, "variables": {"u": silent.url}},
                                    headers={"Authorization": f"Bearer {key}"})
                assert answer.status_code == 200 and not answer.json().get("errors"), answer.text

            def running() -> bool:
                with contextlib.closing(sqlite3.connect(database)) as db:
                    return db.execute("SELECT count(*) FROM outbox WHERE job = 'core.deliver_webhook' "
                                      "AND status = 'running'").fetchone()[0] == 1

            server.wait_until(running)  # the delivery is claimed (lease: 300 s) and waits on the receiver
            assert server.stop()
    finally:
        silent.close()
    with contextlib.closing(sqlite3.connect(database)) as db:
        status, token, locked, attempts, available = db.execute(
            "SELECT status, claim_token, locked_until, attempts, available_at FROM outbox "
            "WHERE job = 'core.deliver_webhook'").fetchone()
        now = db.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").fetchone()[0]
    # Due again now, for the next process, and the stopped attempt not counted against it.
    assert (status, token, locked, attempts) == ("pending", None, None, 0)
    assert available <= now
    assert "released to run again" in server.text()
