"""A receiver of Tenure's webhooks that verifies every delivery with ``standardwebhooks``,
the reference library of the Standard Webhooks specification, before it acts on it.

Run it with the secret that ``createWebhookSubscription`` (or ``rotateWebhookSecret``)
showed::

    pip install standardwebhooks
    TENURE_WEBHOOK_SECRET=whsec_... python receiver.py 8080

What it does with each delivery, in order:

- refuses (400) one whose signature does not match the body, id and timestamp, or whose
  timestamp is more than five minutes from now: a tampered or a replayed delivery;
- answers 200 at once to one whose ``webhook-id`` it has handled before: Tenure sends a
  delivery again when it heard no answer, and a replay keeps the id;
- otherwise hands the event to :func:`handle_event` and answers 200. Answer fast and do slow
  work later: Tenure waits ``TENURE_WEBHOOK_TIMEOUT_SECONDS`` and retries when it hears
  nothing, on its schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), then gives up.

During a secret rotation each delivery carries a signature by the old and by the new secret,
so the receiver can switch to the new one whenever it likes before the old one expires.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


def handle_event(event: dict[str, Any]) -> None:
    """Your code: ``event`` has ``id``, ``type`` (``order.recorded``, ``import.completed``
    ...), ``customerId``, ``occurredAt``, ``summary`` and ``data``."""
    print(json.dumps({"type": event["type"], "id": event["id"], "customerId": event["customerId"]}), flush=True)


class Receiver:
    """Verifies deliveries with one secret and hands each new one to ``on_event``."""

    def __init__(self, secret: str, on_event: Callable[[dict[str, Any]], None] = handle_event) -> None:
        self.webhook = Webhook(secret)
        self.on_event = on_event
        # A real receiver keeps the handled ids in its database, with the work they caused.
        self.handled: set[str] = set()
        self.lock = threading.Lock()

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """The HTTP status and text to answer a POST with these headers and body."""
        try:
            event = self.webhook.verify(body, headers)
        except WebhookVerificationError as exc:
            return 400, f"refused: {exc}"
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self.lock:
            if webhook_id in self.handled:
                return 200, "already handled"
            self.handled.add(webhook_id)
        self.on_event(event)
        return 200, "ok"


def serve(receiver: Receiver, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server that answers every POST through ``receiver``; call ``serve_forever``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, text = receiver.receive(dict(self.headers.items()), body)
            answer = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return ThreadingHTTPServer((host, port), Handler)


def main() -> None:
    secret = os.environ.get("TENURE_WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        sys.exit("set TENURE_WEBHOOK_SECRET to the subscription's secret (whsec_...)")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = serve(Receiver(secret), port, host=os.environ.get("HOST", "127.0.0.1"))
    print(f"listening on http://{server.server_address[0]}:{port}/", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
