"""A Tenure cluster on this machine for the chaos test: ``tenure serve`` and ``tenure
worker`` processes (and one ``tenure scheduler``) on a PostgreSQL database of their own and
the Redis broker, all on loopback. Processes are killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
TENURE = [sys.executable, "-c", "from tenure.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def recreate_database(server_url: str, name: str) -> str:
    """A fresh, empty database ``name`` on the server of ``server_url``; returns its URL."""
    import asyncpg

    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen([*TENURE, *self.args], env=self.env, cwd=ROOT, stdout=handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as when a machine or container dies."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    async def ready(self, within: float = 60.0) -> None:
        if self.port is None:
            return
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited at start-up; see {self.log}")
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready after {within}s; see {self.log}")


@dataclass
class Cluster:
    database_url: str
    broker_url: str
    logs: Path
    apis: int = 2
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        env.update({
            "TENURE_DATABASE_URL": self.database_url,
            "TENURE_BROKER_URL": self.broker_url,
            "TENURE_SECRET_KEY": "chaos-test-secret-key-of-enough-length",
            "TENURE_LOG_LEVEL": "WARNING",
            "TENURE_DB_POOL_SIZE": "4",
            # A killed worker's job is taken over after its lease; a lost hand-off is sent
            # again by the scheduler after this long: short, so the test settles quickly.
            "TENURE_JOB_LEASE_SECONDS": "8",
            "TENURE_JOB_REDISPATCH_SECONDS": "4",
            "TENURE_JOB_BACKOFF_SECONDS": "0.5",
            "TENURE_RELAY_INTERVAL_SECONDS": "0.5",
            # The webhook receiver listens on 127.0.0.1; its retries as quick as the jobs'.
            "TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "TENURE_WEBHOOK_RETRY_SCHEDULE": "0.5s,1s,2s,4s,8s,16s,32s",
        })
        env.update(self.extra_env)
        return env

    def migrate(self) -> None:
        subprocess.run([*TENURE, "migrate"], env=self.env, cwd=ROOT, check=True, capture_output=True)

    async def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        env = self.env
        for n in range(self.apis):
            port = free_port()
            self.processes[f"api{n + 1}"] = Process(f"api{n + 1}", ["serve", "--port", str(port), "--no-migrate"],
                                                    env, self.logs / f"api{n + 1}.log", port=port)
        for n in range(self.workers):
            self.processes[f"worker{n + 1}"] = Process(f"worker{n + 1}", ["worker", "--threads", "4"], env,
                                                       self.logs / f"worker{n + 1}.log")
        self.processes["scheduler"] = Process("scheduler", ["scheduler"], env, self.logs / "scheduler.log")
        for process in self.processes.values():
            process.start()
        await asyncio.gather(*(p.ready() for p in self.processes.values()))

    @property
    def api_ports(self) -> list[int]:
        return [p.port for p in self.processes.values() if p.port is not None]

    async def kill_and_restart(self, name: str, down_for: float) -> None:
        process = self.processes[name]
        process.kill()
        self.kills[name] = self.kills.get(name, 0) + 1
        await asyncio.sleep(down_for)
        process.start()
        await process.ready()

    def stop(self) -> None:
        """Kill every process: the test is over, and SIGKILL is what they are built to survive."""
        for process in self.processes.values():
            process.kill()
