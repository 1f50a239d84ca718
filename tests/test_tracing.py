"""OpenTelemetry traces, when the packages are installed and configured: GraphQL operations,
HTTP requests, SQL statements and outgoing calls, and the trace context carried through the
outbox to the job and its webhook delivery; trace and request ids on the JSON log lines."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from tenure.core import logging as tenure_logging
from tenure.core.context import ServiceContext
from tenure.core.contributions import JobSpec, PluginInfo
from tenure.core.models import OutboxEntry
from tenure.core.plugins import hookimpl
from tenure.core.tracing import exporter_from_env
from tenure.testing import TenureHarness
from tests.support.receivers import http_receiver

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this process (OpenTelemetry allows one) recording spans.
    The provider stays for the rest of the run; the exporter stops keeping spans after this
    module, and outgoing httpx calls are no longer traced."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()
    exporter.shutdown()
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().uninstrument()


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


SUBSCRIBE = """mutation($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) { userErrors { message } } }"""
CREATE = 'mutation NewCustomer { createCustomer(input: {name: "Traced Tess"}) { customer { id } } }'


async def test_a_job_and_its_webhook_delivery_continue_the_trace_of_the_request_that_queued_it(
    spans: InMemorySpanExporter, tenure: TenureHarness
) -> None:
    key = await tenure.key("admin")
    headers = {"Authorization": f"Bearer {key}"}
    with http_receiver() as receiver:
        subscribed = await tenure.client.post("/graphql", json={"query": SUBSCRIBE, "variables": {
            "input": {"url": receiver.url, "eventTypes": ["customer.created"]}}}, headers=headers)
        assert subscribed.json()["data"]["createWebhookSubscription"]["userErrors"] == []
        spans.clear()
        # The caller's own trace: Tenure's spans join it (W3C traceparent in, ASGI instrumentation).
        caller = "0af7651916cd43dd8448eb211c80319c"
        answer = await tenure.client.post("/graphql", json={"query": CREATE}, headers=headers | {
            "X-Request-ID": "traced-1", "traceparent": f"00-{caller}-b7ad6b7169203331-01"})
        assert answer.json()["data"]["createCustomer"]["customer"]["id"]
        request_spans = spans.get_finished_spans()
        server = next(s for s in request_spans if s.kind == trace.SpanKind.SERVER)
        assert format(server.context.trace_id, "032x") == caller
        assert any(s.name.startswith(("INSERT", "SELECT", "BEGIN")) or "sqlite" in str(s.attributes)
                   or "postgresql" in str(s.attributes) for s in request_spans if s.kind == trace.SpanKind.CLIENT)

        async with tenure.db.reader() as session:
            stored = await session.scalar(select(OutboxEntry.trace_context)
                                          .where(OutboxEntry.job == "core.deliver_webhook"))
        assert stored is not None and stored["request_id"] == "traced-1"
        assert stored["traceparent"].split("-")[1] == caller

        spans.clear()
        assert await tenure.run_jobs() == {"done": 1}
        job_spans = spans.get_finished_spans()
        job = next(s for s in job_spans if s.name == "job core.deliver_webhook")
        assert format(job.context.trace_id, "032x") == caller
        assert job.parent is not None and job.parent.is_remote
        assert job.parent.span_id in {s.context.span_id for s in request_spans}  # the span that enqueued it
        assert job.attributes["tenure.request_id"] == "traced-1"
        outgoing = next(s for s in job_spans if s.kind == trace.SpanKind.CLIENT and s.name.startswith("POST"))
        assert outgoing.parent is not None and outgoing.parent.span_id == job.context.span_id

        (delivery,) = receiver.delivered
        version, trace_id, parent_id, _ = delivery.headers["traceparent"].split("-")
        assert (version, trace_id) == ("00", caller) and parent_id == format(outgoing.context.span_id, "016x")


def logging_probe() -> types.ModuleType:
    """A plugin whose job logs a line."""
    module = types.ModuleType("logging_probe")

    async def say(ctx: ServiceContext, payload: dict[str, Any]) -> None:
        logging.getLogger("tenure.test.probe").info("probe job ran")

    module.tenure_plugin_info = hookimpl(lambda: PluginInfo("logprobe", "1.0", "a job that logs"))  # type: ignore[attr-defined]
    module.tenure_jobs = hookimpl(lambda: [JobSpec("logprobe.say", say)])  # type: ignore[attr-defined]
    return module


async def test_json_log_lines_carry_the_trace_id_and_the_request_id_in_requests_and_jobs(
    spans: InMemorySpanExporter, make_tenure: Callable[..., Any]
) -> None:
    stream = io.StringIO()
    handler = tenure_logging.handler_for("json")
    handler.setStream(stream)  # type: ignore[attr-defined]
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        async with make_tenure(plugins=["logprobe"], extra_plugins=[logging_probe()]) as tenure:
            spans.clear()
            await tenure.client.get("/graphql", params={"query": "{ __typename }"}, headers={"X-Request-ID": "log-1"})
            server = next(s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER)
            # Enqueued inside a request's span with its id (as a mutation does), run later.
            tracer = trace.get_tracer("tests")
            token = tenure_logging.REQUEST_ID.set("log-2")
            try:
                with tracer.start_as_current_span("a request") as request_span:
                    async with tenure.transaction() as ctx:
                        await ctx.enqueue("logprobe.say", {})
            finally:
                tenure_logging.REQUEST_ID.reset(token)
            assert await tenure.run_jobs() == {"done": 1}
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = next(r for r in lines if r["logger"] == "tenure.access" and r.get("request_id") == "log-1")
    assert access["trace_id"] == format(server.context.trace_id, "032x")
    probe = next(r for r in lines if r["message"] == "probe job ran")
    assert probe["request_id"] == "log-2"
    assert probe["trace_id"] == format(request_span.get_span_context().trace_id, "032x")
    assert probe["span_id"] != format(request_span.get_span_context().span_id, "016x")  # the job's own span


def test_without_tracing_an_entry_keeps_only_the_request_id() -> None:
    """With no span current (tracing off, or outside any), nothing of a trace is stored."""
    from tenure.core.tracing import trace_context

    assert trace_context() is None
    token = tenure_logging.REQUEST_ID.set("plain-1")
    try:
        assert trace_context() == {"request_id": "plain-1"}
    finally:
        tenure_logging.REQUEST_ID.reset(token)


async def test_background_polling_leaves_no_traces_while_a_statement_of_its_own_does(
    spans: InMemorySpanExporter, tenure: TenureHarness
) -> None:
    """The scheduler polls every second: a trace each time would bury the requests'."""
    from tenure.workers import scheduler

    db = tenure.runtime.db
    spans.clear()
    async with db.reader() as session:
        await session.execute(text("SELECT 1"))
    assert [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.CLIENT]  # SQL is traced

    spans.clear()
    stop = asyncio.Event()
    handed: list[int] = []

    async def dispatch(ids: list[int]) -> None:
        handed.extend(ids)

    async with tenure.transaction() as ctx:  # due work the round hands on, through the database
        await ctx.enqueue("core.deliver_webhook", {"eventId": 0, "subscriptionId": 0})
    spans.clear()
    at_once = dataclasses.replace(tenure.settings, job_redispatch_seconds=0)  # hand on what is due now
    rounds = asyncio.create_task(scheduler.run_forever(db, tenure.plugins, at_once, dispatch, stop))
    for _ in range(100):
        if handed:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await rounds
    assert handed and spans.get_finished_spans() == ()
