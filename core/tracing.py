"""OpenTelemetry traces of GraphQL operations, when configured.

Traces are on when the ``opentelemetry`` packages are installed and either the process
already has a tracer provider (``opentelemetry-instrument tenure serve``) or the standard
variables name an exporter: ``OTEL_TRACES_EXPORTER=console|otlp`` or
``OTEL_EXPORTER_OTLP_ENDPOINT`` (OTLP needs ``opentelemetry-exporter-otlp``). Otherwise
nothing is traced and nothing of OpenTelemetry is imported.

Each operation is a span named ``GraphQL Query: <operation>`` carrying the request id
(``tenure.request_id``), with child spans for parsing, validation and resolvers. Argument
values are left out of the spans (they hold emails, names and notes); only their names go.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Generator, Mapping
from typing import Any

from core.logging import REQUEST_ID

log = logging.getLogger("tenure.tracing")


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
    from strawberry.extensions import LifecycleStep
    from strawberry.extensions.tracing import OpenTelemetryExtension

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

    return TenureTracing


def instrument(schema: Any) -> bool:
    """Add tracing to a built schema when :func:`tracing_enabled`; returns whether it did."""
    if not tracing_enabled():
        return False
    schema.extensions = (*schema.extensions, tracing_extension())
    return True
