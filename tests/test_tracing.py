"""OpenTelemetry traces of GraphQL operations, when the packages are installed and configured."""

from __future__ import annotations

import pytest

from core.testing import TenureHarness
from core.tracing import exporter_from_env

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """An SDK tracer provider for this process (OpenTelemetry allows one) recording spans."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_the_standard_variables_choose_the_exporter() -> None:
    assert exporter_from_env({}) is None
    assert exporter_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == "otlp"
    assert exporter_from_env({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    assert exporter_from_env({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}) is None


async def test_operations_are_traced_with_the_request_id_and_no_argument_values(
    spans: InMemorySpanExporter, tenure: TenureHarness
) -> None:
    spans.clear()
    key = await tenure.key("admin")
    answer = await tenure.client.post(
        "/graphql",
        json={"query": "query FindAda($q: String) { customers(first: 1, filter: {search: $q}) { totalCount } }",
              "variables": {"q": "ada@example.com"}},
        headers={"Authorization": f"Bearer {key}", "X-Request-ID": "trace-1"})
    assert answer.json()["data"]["customers"]["totalCount"] == 0
    finished = spans.get_finished_spans()
    operation = next(s for s in finished if s.name == "GraphQL Query: FindAda")
    assert operation.attributes["tenure.request_id"] == "trace-1"
    children = [s for s in finished if s.parent is not None and s.parent.span_id == operation.context.span_id]
    assert {"GraphQL Parsing", "GraphQL Validation"} <= {s.name for s in children}
    recorded = [str(v) for s in finished for v in (s.attributes or {}).values()]
    assert recorded and not any("ada@example.com" in v for v in recorded)
