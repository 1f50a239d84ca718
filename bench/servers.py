"""Servers under test, each in its own process on loopback, and the load generator beside
them; peak memory is read from the kernel (VmHWM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Server:
    def __init__(self, name: str, app: str, port: int, env: dict[str, str]) -> None:
        self.name, self.app, self.port, self.env = name, app, port, env
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in: float = 0.0

    def __enter__(self) -> Server:
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", self.app, "--factory", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log", "--loop", "uvloop", "--http", "httptools"],
            env={**os.environ, **self.env}, cwd=ROOT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    self.started_in = time.perf_counter() - began
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not start on port {self.port}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def memory_mb(self, field: str = "VmHWM") -> float:
        """Peak (VmHWM) or current (VmRSS) resident memory of the server process."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """User and system CPU time the server process has used so far."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        response = httpx.post(f"http://127.0.0.1:{self.port}{path}", json=body,
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
        answer: dict[str, Any] = response.json()
        return answer


def load(server: Server, path: str, requests: list[dict[str, Any]], *, concurrency: int, duration: float,
         warmup: float, prefix: str) -> dict[str, Any]:
    """Run the load generator in its own process against ``server``; its JSON result, with the
    server's CPU milliseconds per request (what the server would need of a core to itself)."""
    port = server.port
    cpu_before = server.cpu_seconds()
    spec = {"host": "127.0.0.1", "port": port, "path": path, "requests": requests, "concurrency": concurrency,
            "duration": duration, "warmup": warmup, "prefix": prefix}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run([sys.executable, "-m", "bench.loadgen", f.name], cwd=ROOT, capture_output=True,
                             text=True, timeout=duration + warmup + 120)
        if out.returncode != 0:
            raise RuntimeError(f"the load generator failed against port {port}{path}:\n{out.stderr[-2000:]}")
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    used = server.cpu_seconds() - cpu_before
    result["cpu_ms_per_request"] = round(1000 * used / max(result["all_requests"], 1), 3)
    return result


def startup_seconds(code: str, env: dict[str, str], runs: int = 3) -> float:
    """The best of ``runs`` wall times of ``python -c code`` (the best is the least disturbed)."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - began)
    return min(times)
