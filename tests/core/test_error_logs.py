"""What the logs say about errors: a client's mistake is a line without a traceback, a bug
is one ERROR with its traceback and the request id, and a failure that repeats every second
costs one traceback a minute."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
import strawberry

from tenure.core.contributions import PluginInfo, SchemaContribution
from tenure.core.logging import REQUEST_ID, RepeatThrottle, handler_for
from tenure.core.models import Role
from tenure.core.plugins import hookimpl
from tenure.schema.permissions import allow


class BrokenPlugin:
    """A partner plugin with a bug in one resolver."""

    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[allow(Role.ADMIN)])
        def broken_figure(self) -> int:
            return {"a": 1}["b"]  # the bug: a key that is not there

    @staticmethod
    @hookimpl
    def tenure_plugin_info() -> PluginInfo:
        return PluginInfo(name="broken", version="1.0", summary="A resolver with a bug")

    @staticmethod
    @hookimpl
    def tenure_schema() -> SchemaContribution:
        return SchemaContribution(query=BrokenPlugin.Query)


@pytest.fixture
def records() -> Any:
    captured: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.request_seen = REQUEST_ID.get()
            captured.append(record)

    handler = Keep(level=logging.DEBUG)
    for name in ("tenure", "strawberry"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield captured
    for name in ("tenure", "strawberry"):
        logging.getLogger(name).removeHandler(handler)


@pytest.mark.sqlite_only
async def test_client_mistakes_are_lines_without_tracebacks_and_a_bug_is_one_error(
        make_tenure: Callable[..., Any], records: list[logging.LogRecord]) -> None:
    async with make_tenure(plugins=["broken"], extra_plugins=[BrokenPlugin]) as tenure:
        wrong_key = await tenure.gql("{ customers(first: 1) { totalCount } }", key="tnr_not_a_key")
        assert wrong_key["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        unknown = await tenure.gql("{ customerz { id } }", key=await tenure.key("admin"))
        assert "customerz" in unknown["errors"][0]["message"]
        too_big = await tenure.gql("{ customers(first: 5000) { totalCount } }", key=await tenure.key("admin"))
        assert too_big["errors"][0]["extensions"]["code"] in ("LIMIT_EXCEEDED", "BAD_USER_INPUT")
        api = [r for r in records if r.name in ("tenure.api", "strawberry.execution")]
        assert [r.levelname for r in api] == ["WARNING", "INFO", "INFO"], [r.getMessage() for r in api]
        assert all(r.exc_info is None for r in api)
        assert "UNAUTHENTICATED: not authenticated: unknown API key" in api[0].getMessage()

        records.clear()
        response = await tenure.client.post("/graphql", json={"query": "{ brokenFigure }"},
                                            headers={"Authorization": f"Bearer {await tenure.key('admin')}",
                                                     "X-Request-ID": "req-bug-1"})
        assert response.json()["errors"][0]["path"] == ["brokenFigure"]
        (bug,) = [r for r in records if r.levelno >= logging.ERROR]
        assert bug.name == "tenure.api" and bug.exc_info is not None and bug.exc_info[0] is KeyError
        assert bug.request_seen == "req-bug-1"  # type: ignore[attr-defined]
        assert "unexpected error in brokenFigure" in bug.getMessage()


def test_a_traceback_repeated_every_second_is_written_once_a_minute_with_the_count() -> None:
    now = [1000.0]
    stream = io.StringIO()
    handler = handler_for("text")
    handler.setStream(stream)  # type: ignore[attr-defined]
    for f in handler.filters:
        if isinstance(f, RepeatThrottle):
            f.clock = lambda: now[0]
    log = logging.getLogger("tenure.test_throttle")
    log.addHandler(handler)
    log.propagate = False
    try:
        for second in range(150):  # a database down for two and a half minutes, one failure a second
            now[0] = 1000.0 + second
            try:
                raise ConnectionRefusedError(111, "Connect call failed")
            except OSError:
                log.exception("the round failed")
            log.warning("another line, logged each time")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("Traceback (most recent call last)") == 3  # at 0 s, 60 s and 120 s
    assert text.count("another line, logged each time") == 150  # lines without a traceback are not held back
    assert "the round failed (59 more like this in the last 60 s were not logged)" in text
