"""When the database cannot be reached (restarting, failed over, network cut), callers get
a clear answer instead of a stack trace: HTTP 503 with ``code: UNAVAILABLE`` when it fails
before the query runs (authenticating the caller), and a GraphQL error with the same code
when it fails inside a field. The pool hands out no connection the server has closed, so the
service recovers by itself once the database is back.

A field whose transaction the database gave up on for another's sake (a deadlock, a
serialization failure: two requests wanting the same rows in opposite order) gets
``code: RETRY``: its transaction was rolled back, so nothing was written and sending it
again is safe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

MESSAGE = ("the database cannot be reached right now; send the request again shortly (with the same "
           "externalId or idempotencyKey a change is still made only once)")
RETRY_MESSAGE = ("another request was changing the same records at the same moment and the database "
                 "stopped this one in its favour; nothing was written: send the request again")
#: PostgreSQL's codes for a transaction stopped for another's sake: a deadlock, a
#: serialization failure.
_GAVE_WAY = {"40P01", "40001"}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is out of reach (not that a query was wrong):
    down, refusing the credentials, without the database named, or not migrated."""
    import sqlalchemy.exc

    from tenure.core.startup import database_problem

    if database_problem(error) is not None:
        return True
    for cause in _chain(error):
        if isinstance(cause, OSError):  # refused, reset, unreachable, timed out (resolvers do no file I/O)
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        name = type(cause).__name__
        if name in {"CannotConnectNowError", "ConnectionDoesNotExistError", "AdminShutdownError",
                    "ConnectionFailureError", "InterfaceError"} and type(cause).__module__.startswith("asyncpg"):
            return True
    return False


def gave_way(error: BaseException) -> bool:
    """Whether the database stopped ``error``'s transaction for another's sake."""
    return any(getattr(cause, "sqlstate", None) in _GAVE_WAY or getattr(cause, "pgcode", None) in _GAVE_WAY
               for cause in _chain(error))


def unavailable_error() -> GraphQLError:
    return GraphQLError(MESSAGE, extensions={"code": "UNAVAILABLE"})


class DatabaseUnavailable:
    """ASGI middleware: a request that fails because the database is out of reach, before
    GraphQL could answer it, gets a 503 JSON answer with Retry-After."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            if started or not is_unavailable(error):
                raise
            body = {"errors": [{"message": MESSAGE, "extensions": {"code": "UNAVAILABLE"}}]}
            await JSONResponse(body, status_code=503, headers={"Retry-After": "2"})(scope, receive, send)


class UnavailableErrors(SchemaExtension):
    """Turns a field's database-connection failure into the ``UNAVAILABLE`` error, and a
    transaction the database stopped for another's sake into the ``RETRY`` error."""

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [_explained(e) for e in result.errors]


def _explained(error: GraphQLError) -> GraphQLError:
    cause = error.original_error
    if cause is None:
        return error
    if is_unavailable(cause):
        return GraphQLError(MESSAGE, nodes=error.nodes, path=error.path, extensions={"code": "UNAVAILABLE"})
    if gave_way(cause):
        return GraphQLError(RETRY_MESSAGE, nodes=error.nodes, path=error.path, extensions={"code": "RETRY"})
    return error
