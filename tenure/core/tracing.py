"""OpenTelemetry traces of GraphQL operations, when configured.

Traces are on when the ``opentelemetry`` packages are installed and either the process
already has a tracer provider (``opentelemetry-instrument tenure serve``) or the standard
variables name an exporter: ``OTEL_TRACES_EXPORTER=console|otlp`` or
``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP needs ``opentelemetry-exporter-otlp``). Otherwise
nothing is traced and nothing of OpenTelemetry is imported.

Each operation is a span named ``GraphQL Query: <operation>`` carrying the request id
(``tenure.request_id``), with child spans for parsing, validation and resolvers. Argument
values are left out of the spans (they hold emails, names and notes); only their names go.

With tracing on, the app is also instrumented with OpenTelemetry's own packages: a span for
each HTTP request (ASGI; the caller's ``traceparent`` header continues its trace), for each SQL
statement (SQLAlchemy) and for each outgoing HTTP call (httpx, which sends ``traceparent`` on,
so a webhook receiver can join the trace). An outbox entry stores the trace context it was
enqueued in (W3C ``traceparent``/``tracestate``) and the request id; its job runs in a span
``job <name>`` that is a child of that context, with the request id back on its log lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Generator, Iterator, Mapping
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

from tenure.core.logging import REQUEST_ID

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tenure.core.db import Database

log = logging.getLogger("tenure.tracing")
#: Requests that would only add noise to traces: probes and scrapes.
UNTRACED_PATHS = "/healthz,/readyz,/metrics,/graphiql/"


def exporter_from_env(env: Mapping[str, str]) -> str | None:
    """The exporter the OTEL_* variables ask for: ``console``, ``otlp`` or ``None``."""
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if chosen == "none":
        return None
    if chosen:
        return chosen
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return None


def _install_provider(exporter_name: str) -> bool:
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    exporter: Any
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    elif exporter_name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTEL_* asks for OTLP traces but opentelemetry-exporter-otlp is not installed; not tracing")
            return False
        exporter = OTLPSpanExporter()
    else:
        log.warning("OTEL_TRACES_EXPORTER=%s: Tenure knows console and otlp; not tracing", exporter_name)
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                       "tenure")}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether to trace; installs the exporter the environment names if nobody did."""
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return True
    exporter = exporter_from_env(os.environ if env is None else env)
    if exporter is None:
        return False
    try:
        return _install_provider(exporter)
    except ImportError:
        log.warning("OTEL_* is set but opentelemetry-sdk is not installed; not tracing")
        return False


def _argument_names_only(args: dict[str, Any], info: Any) -> dict[str, Any]:
    return dict.fromkeys(args, "(value not recorded)")


def tracing_extension() -> type:
    """A strawberry extension that traces operations (see the module notes)."""
    from opentelemetry import trace
    from strawberry.extensions import LifecycleStep
    from strawberry.extensions.tracing import OpenTelemetryExtension
    from strawberry.extensions.tracing.utils import should_skip_tracing

    class TenureTracing(OpenTelemetryExtension):
        def __init__(self, *, execution_context: Any = None) -> None:
            super().__init__(execution_context=execution_context, arg_filter=_argument_names_only)

        def on_operation(self) -> Generator[None, None, None]:
            steps = super().on_operation()
            next(steps)
            span = self._span_holder.get(LifecycleStep.OPERATION)
            request_id = REQUEST_ID.get()
            if span is not None and request_id:
                span.set_attribute("tenure.request_id", request_id)
            yield
            with contextlib.suppress(StopIteration):
                next(steps)

        def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
            """A span for each field that awaits (loaders, I/O), from its call to its result;
            a field that answers at once stays a plain call. (Wrapping every field in a
            coroutine, as the base class does, costs a task per field, and when one field of
            an object fails, graphql-core never awaits its siblings' coroutines.)"""
            result = _next(root, info, *args, **kwargs)
            if not isawaitable(result) or should_skip_tracing(_next, info):
                return result
            return self._traced(result, info, kwargs)

        async def _traced(self, result: Awaitable[Any], info: Any, arguments: dict[str, Any]) -> Any:
            parent = trace.set_span_in_context(self._span_holder[LifecycleStep.OPERATION])
            with self._tracer.start_as_current_span(f"GraphQL Resolving: {info.field_name}", context=parent) as span:
                self.add_tags(span, info, arguments)
                return await result

    return TenureTracing


def instrument(schema: Any) -> bool:
    """Add tracing to a built schema when :func:`tracing_enabled`; returns whether it did."""
    if not tracing_enabled():
        return False
    schema.extensions = (*schema.extensions, tracing_extension())
    return True


def tracing_on() -> bool:
    """Whether this process traces now, without importing OpenTelemetry when nothing did:
    a tracer provider of the SDK (or another real one) is installed."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def instrument_app(app: Starlette, db: Database) -> bool:
    """Spans for every HTTP request (outermost, so the access log line has the trace id), SQL
    statement and outgoing HTTP call, when :func:`tracing_enabled`; returns whether it did."""
    if not tracing_enabled():
        return False
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    except ImportError:
        log.warning("tracing HTTP requests needs opentelemetry-instrumentation-asgi (pip install 'tenure[otel]')")
    else:
        app.add_middleware(OpenTelemetryMiddleware, excluded_urls=UNTRACED_PATHS)
    instrument_database(db)
    return True


def instrument_database(db: Database) -> None:
    """Spans for the SQL statements of one database (each engine on its own: Tenure makes an
    engine per process and event loop), and for outgoing httpx calls; when tracing is on."""
    if not tracing_enabled():
        return
    _instrument_httpx()
    if getattr(db, "_traced", False):
        return
    try:
        from opentelemetry.instrumentation.sqlalchemy import __version__
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import get_meter
        from opentelemetry.trace import get_tracer
    except ImportError:
        log.warning("tracing SQL needs opentelemetry-instrumentation-sqlalchemy (pip install 'tenure[otel]')")
        return
    name = "opentelemetry.instrumentation.sqlalchemy"
    usage = get_meter(name, __version__).create_up_down_counter(
        "db.client.connections.usage", unit="connections", description="Connections in use or idle.")
    EngineTracer(get_tracer(name, __version__), db.engine.sync_engine, usage)
    db._traced = True  # type: ignore[attr-defined]


def _instrument_httpx() -> None:
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError:
        log.warning("tracing webhook deliveries needs opentelemetry-instrumentation-httpx (pip install 'tenure[otel]')")
        return
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No spans for what runs inside: background polling (the scheduler's ticks, claims,
    scrapes) that belongs to nobody's request and would make a trace a second."""
    if not tracing_on():
        yield
        return
    try:
        from opentelemetry.instrumentation.utils import suppress_instrumentation
    except ImportError:  # no instrumentation installed: nothing to quieten
        yield
        return
    with suppress_instrumentation():
        yield


def trace_context() -> dict[str, str] | None:
    """What an outbox entry keeps of the moment it was enqueued: the W3C ``traceparent`` (and
    ``tracestate``) of the current span when tracing, and the request id."""
    carrier: dict[str, str] = {}
    if tracing_on():
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        TraceContextTextMapPropagator().inject(carrier)
    request_id = REQUEST_ID.get()
    if request_id:
        carrier["request_id"] = request_id
    return carrier or None


@contextlib.contextmanager
def job_context(job: str, entry_id: int, attempt: int, stored: Mapping[str, str] | None) -> Iterator[None]:
    """Run a job in the context its entry was enqueued in (see :func:`trace_context`): the
    request id back for its log lines and, when tracing, a span ``job <name>`` whose parent
    is the span that enqueued it."""
    stored = stored or {}
    request_id = stored.get("request_id")
    token = REQUEST_ID.set(request_id) if request_id else None
    try:
        if not tracing_on():
            yield
            return
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(dict(stored))
        attributes: dict[str, Any] = {"tenure.job": job, "tenure.outbox_entry": entry_id, "tenure.attempt": attempt}
        if request_id:
            attributes["tenure.request_id"] = request_id
        with trace.get_tracer("tenure.jobs").start_as_current_span(
            f"job {job}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ):
            yield
    finally:
        if token is not None:
            REQUEST_ID.reset(token)


def job_failed(error: BaseException) -> None:
    """Mark the current job span failed (the outbox catches the error, so the span would not
    see it)."""
    if not tracing_on():
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
