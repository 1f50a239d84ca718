"""Logs: one JSON object per line (``TENURE_LOG_FORMAT=json``) or plain text, each line
carrying the id of the request it belongs to.

The id comes from the caller's ``X-Request-ID`` header when it is a sensible token (so a
load balancer's or client's id follows the request through), or is made up; it is sent back
in the response's ``X-Request-ID`` header, and every log line written while the request is
served carries it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenure.core.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("tenure_request_id", default=None)
HEADER = "x-request-id"
VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id",
                                                                            "repeat_key"}

access_log = logging.getLogger("tenure.access")
error_log = logging.getLogger("tenure.api")


def shown_url(url: str) -> str:
    """``url`` as errors and logs may show it: a password in it and the values of its query
    (where receivers often put a token) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        query = "&".join(f"{pair.split('=', 1)[0]}=***" if "=" in pair else pair
                         for pair in parts.query.split("&")) if parts.query else ""
        return parts._replace(netloc=netloc, query=query, fragment="").geturl()
    except ValueError:
        return "(a malformed URL)"


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or ``-``) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., "request_id": ...}``, with
    ``trace_id`` and ``span_id`` while a span is current, plus whatever the call passed as
    ``extra``, and the traceback under ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id and request_id != "-":
            line["request_id"] = request_id
        ids = trace_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class RepeatThrottle(logging.Filter):
    """Lets a repeated failure through once a ``window`` (60 s): a record with a traceback
    is keyed by where it was logged and the kind of exception, and a record logged with
    ``extra={"repeat_key": ...}`` by that key. Repeats inside the window are dropped and
    counted; the next one that passes says how many were left out. A database that stays
    down then costs one traceback a minute, not one a second per process."""

    def __init__(self, window: float = 60.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window, self.clock = window, clock
        self.seen: dict[tuple[Any, ...], list[float]] = {}  # key -> [last let through, left out since]
        self.lock = threading.Lock()

    @staticmethod
    def key(record: logging.LogRecord) -> tuple[Any, ...] | None:
        given = getattr(record, "repeat_key", None)
        if given is not None:
            return ("key", record.name, given)
        if record.exc_info and record.exc_info[0] is not None:
            return ("exc", record.name, record.pathname, record.lineno, record.exc_info[0].__qualname__)
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        key = self.key(record)
        if key is None:
            return True
        now = self.clock()
        with self.lock:
            last = self.seen.get(key)
            if last is not None and now - last[0] < self.window:
                last[1] += 1
                return False
            self.seen[key] = [now, 0]
        if last is not None and last[1]:
            record.msg = f"{record.getMessage()} ({int(last[1])} more like this in the last {now - last[0]:.0f} s " \
                         "were not logged)"
            record.args = None
            record.suppressed = int(last[1])
        return True


def trace_ids() -> tuple[str, str] | None:
    """The current OpenTelemetry trace and span ids in W3C form, when a span is current
    (core.tracing); OpenTelemetry is not imported here when nothing traces."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def handler_for(log_format: str) -> logging.Handler:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RepeatThrottle())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler._tenure = True  # type: ignore[attr-defined]
    return handler


def configure(settings: Settings) -> None:
    """Send every log line to stderr in ``settings.log_format``; calling it again replaces
    Tenure's handler rather than adding a second one."""
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, "_tenure", False)]:
        root.removeHandler(existing)
    root.addHandler(handler_for(settings.log_format))
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own lines go through the same handler, in the same format.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def request_id_from(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == HEADER.encode():
            given = value.decode("latin-1").strip()
            if VALID_ID.match(given):
                return given
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each HTTP request an id (see the module notes) and logs one access line per
    request with its method, path, status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug: one ERROR line with its traceback and the request id (here, where the
            # id is still known), and an answer in JSON that gives the caller the id to quote.
            error_log.error("unexpected error serving %s %s", scope.get("method", "WEBSOCKET"), scope.get("path", ""),
                            exc_info=True)
            if scope["type"] == "http" and not answered:
                from starlette.responses import JSONResponse

                body = {"errors": [{"message": f"an unexpected error occurred (request id {request_id}); it is "
                                               "logged with this id", "extensions": {
                                               "code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}]}
                await JSONResponse(body, status_code=500)(scope, receive, send_with_id)
            elif scope["type"] == "websocket":
                with contextlib.suppress(Exception):  # 1011: the server met an unexpected condition
                    await send({"type": "websocket.close", "code": 1011})
        finally:
            if scope["type"] == "http":
                access_log.info("%s %s %s", scope.get("method", ""), scope.get("path", ""), status,
                                extra={"method": scope.get("method"), "path": scope.get("path"), "status": status,
                                       "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
            REQUEST_ID.reset(token)
