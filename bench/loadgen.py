"""A small HTTP/1.1 load generator, run as its own process so the server under test never
shares a core's time with the client that measures it.

``python -m bench.loadgen SPEC.json`` reads the target, the requests to send (cycled, each
body may carry ``__N__``, replaced by a number unique in the run) and how long to run, keeps
``concurrency`` keep-alive connections busy, and prints one JSON line: requests, errors,
requests per second and latency percentiles. Raw asyncio streams rather than an HTTP client
library, so the generator costs a few microseconds per request and is not what is measured.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Spec:
    host: str
    port: int
    path: str
    requests: list[dict[str, Any]]  # {"body": str, "headers": {..}}
    concurrency: int = 8
    duration: float = 10.0
    warmup: float = 2.0
    prefix: str = "r"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    total: int = 0  # answers received, warm-up included (to divide the server's CPU time by)
    samples: list[str] = field(default_factory=list)


def _request(spec: Spec, item: dict[str, Any], n: int) -> bytes:
    body = item["body"].replace("__N__", f"{spec.prefix}{n}").encode()
    headers = {"Host": f"{spec.host}:{spec.port}", "Content-Type": "application/json",
               "Content-Length": str(len(body)), **item.get("headers", {})}
    head = f"POST {spec.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


def _failed(status: int, body: bytes) -> bool:
    """A 2xx answer whose GraphQL payload carries errors or userErrors counts as an error."""
    if status >= 400:
        return True
    return b'"errors"' in body or b'"userErrors":[{' in body or b'"userErrors": [{' in body


async def _worker(spec: Spec, counter: itertools.count[int], start: float, stop: float, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(spec.host, spec.port)
    try:
        while True:
            n = next(counter)
            item = spec.requests[n % len(spec.requests)]
            sent = time.perf_counter()
            if sent >= stop:
                return
            try:
                writer.write(_request(spec, item, n))
                status, body = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                # The server dropped the connection (a request it could not answer): an error,
                # and a new connection for the next request.
                writer.close()
                status, body = 599, b"connection closed by the server"
                reader, writer = await asyncio.open_connection(spec.host, spec.port)
            done = time.perf_counter()
            tally.total += 1
            if done < start:
                continue
            if _failed(status, body):
                tally.errors += 1
                if len(tally.samples) < 3:
                    tally.samples.append(body[:300].decode("utf-8", "replace"))
            else:
                tally.latencies.append(done - sent)
    finally:
        writer.close()


async def run(spec: Spec) -> dict[str, Any]:
    counter = itertools.count(1)
    tally = Tally()
    begin = time.perf_counter()
    start, stop = begin + spec.warmup, begin + spec.warmup + spec.duration
    await asyncio.gather(*[_worker(spec, counter, start, stop, tally) for _ in range(spec.concurrency)])
    elapsed = max(time.perf_counter() - start, 1e-9)
    lat = sorted(tally.latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {"requests": len(lat), "errors": tally.errors, "all_requests": tally.total, "seconds": round(elapsed, 2),
            "rps": round(len(lat) / elapsed, 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "error_samples": tally.samples}


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = Spec(**json.load(f))
    try:
        import uvloop

        result = uvloop.run(run(spec))
    except ImportError:
        result = asyncio.run(run(spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
