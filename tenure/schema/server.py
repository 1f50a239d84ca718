"""The Starlette application: ``/graphql`` (GraphiQL in a browser, JSON for clients),
``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from cross_web import HTTPException  # strawberry's own (its HTTP layer is cross-web)
from graphql import ExecutionResult, GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.unset import UNSET

from tenure.core import clock
from tenure.core.auth import AuthenticationError, Principal, authenticate, is_api_key, verify_bearer
from tenure.core.db import Database
from tenure.core.logging import RequestIdMiddleware
from tenure.core.logging import configure as configure_logging
from tenure.core.models import Role
from tenure.core.plugins import PluginManager, load_plugins
from tenure.core.settings import Settings
from tenure.core.tracing import instrument as instrument_tracing
from tenure.core.tracing import instrument_app
from tenure.schema import ide
from tenure.schema.admission import Busy, Turns
from tenure.schema.availability import DatabaseUnavailable
from tenure.schema.build import build_schema
from tenure.schema.context import Context
from tenure.schema.documents import PersistedDocuments
from tenure.schema.graphql_http import GRAPHQL_RESPONSE, JSON, error_body, is_request_error, negotiate
from tenure.schema.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tenure.schema.metrics import operation_label
from tenure.schema.runtime import Runtime

log = logging.getLogger("tenure.api")

#: A document that may hold a mutation (a query that merely mentions the word costs one
#: empty transaction).
_MAY_MUTATE = re.compile(r"\bmutation\b")


class TenureGraphQL(GraphQL):
    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.documents = PersistedDocuments.load(settings.persisted_documents, settings.member_persisted_only)
        self.turns = Turns(settings.max_concurrent_requests, settings.request_queue_seconds)
        super().__init__(build_schema(runtime.plugins, settings), **kwargs)

    async def get_context(self, request: Any, response: Any = None) -> Context:  # type: ignore[override]
        context = Context(runtime=self.runtime, principal=None, request=request)
        request.state.tenure_context = context  # closed when the request is answered (run)
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                context.auth_error = "the Authorization header must be 'Bearer <key>'"
            elif is_api_key(token.strip()):
                context.api_key = token.strip()  # read once the operation is known (execute_operation)
            else:
                try:
                    context.principal = verify_bearer(self.runtime.settings.signing_key, token.strip())
                except AuthenticationError as exc:
                    context.auth_error = f"not authenticated: {exc}"
        return context

    async def on_ws_connect(self, context: Context) -> Any:  # type: ignore[override]
        """A websocket authenticates by its header or, as browsers cannot set one, by
        ``Authorization`` in the ``connection_init`` payload; without valid credentials the
        connection is closed (4403) before anything is subscribed."""
        if context.api_key is not None:  # sent in the upgrade request's header
            key, context.api_key = context.api_key, None
            try:
                context.principal = await self._principal_of(key)
            except AuthenticationError as exc:
                context.auth_error = f"not authenticated: {exc}"
        if context.principal is None:
            params = context.connection_params or {}
            given = str(params.get("Authorization") or params.get("authorization") or "").strip()
            token = given[7:].strip() if given.lower().startswith("bearer ") else given
            if not token:
                raise ConnectionRejectionError({"message": context.auth_error or "authentication required"})
            try:
                context.principal = await self._principal_of(token)
            except AuthenticationError as exc:
                raise ConnectionRejectionError({"message": f"not authenticated: {exc}"}) from None
            context.auth_error = None
        return UNSET

    async def _principal_of(self, token: str) -> Principal:
        """A websocket's caller, read in a session of its own: the connection may stay open
        for hours, and must not hold a database connection all that time."""
        async with self.runtime.db.reader() as session:
            return await authenticate(session, self.runtime.settings.signing_key, token)

    async def render_graphql_ide(self, request: Request) -> Response:
        return ide.page(request)  # the package's own copy of GraphiQL: no CDN

    async def process_result(self, request: Any, result: Any) -> Any:
        """With ``application/graphql-response+json``, a request error has no ``data`` and
        answers 400 (see schema.graphql_http)."""
        answer = await super().process_result(request, result)
        if getattr(request.state, "graphql_media_type", JSON) == GRAPHQL_RESPONSE:
            request.state.graphql_results = getattr(request.state, "graphql_results", 0) + 1
            if is_request_error(result):
                answer.pop("data", None)
                request.state.graphql_status = 400
        return answer

    async def run(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        http = request.scope["type"] == "http"
        media_type = negotiate(request.headers.get("accept")) if http else JSON
        if http:
            request.state.graphql_media_type = media_type
        try:
            # A websocket would hold its turn for as long as it stays open.
            async with self.turns.take() if http else contextlib.nullcontext():
                response = await super().run(request, *args, **kwargs)
            if media_type == GRAPHQL_RESPONSE and response.headers.get("content-type") == JSON:
                response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
                if getattr(request.state, "graphql_results", 0) == 1:  # one operation, not a batch
                    response.status_code = getattr(request.state, "graphql_status", response.status_code)
            return response
        except Busy as busy:
            self.runtime.metrics.requests_refused_busy.inc()
            body = {"errors": [{"message": str(busy), "extensions": {"code": "UNAVAILABLE"}}]}
            return Response(self.encode_json(body), status_code=503, headers={"Retry-After": "1"},
                            media_type=f"{media_type}; charset=utf-8" if media_type == GRAPHQL_RESPONSE else JSON)
        except HTTPException as exc:
            if media_type != GRAPHQL_RESPONSE:
                raise  # strawberry answers it in plain text, as legacy clients saw it
            return Response(self.encode_json(error_body(exc.reason)), status_code=exc.status_code,
                            media_type=f"{GRAPHQL_RESPONSE}; charset=utf-8")
        finally:
            context = getattr(request.state, "tenure_context", None)
            if context is not None:
                await context.close()
            self.runtime.metrics.observe_request(time.perf_counter() - started)

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        """Persisted documents are resolved here, before the view picks a transport, so a
        member held to them cannot run another document over SSE either."""
        context, request_data = kwargs["context"], kwargs["request_data"]
        principal = context.principal
        member = principal is not None and principal.role == Role.MEMBER
        try:
            request_data.query = self.documents.resolve(request_data.query, request_data.extensions, member)
        except GraphQLError as refused:
            return ExecutionResult(data=None, errors=[refused])
        if context.api_key is not None:
            method = kwargs["request_adapter"].method
            await context.authenticate_key(
                may_write=method == "POST" and _MAY_MUTATE.search(request_data.query or "") is not None)
        return await super().execute_operation(*args, **kwargs)

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            request = kwargs.get("request")
            new_client = getattr(getattr(request, "state", None), "graphql_media_type", JSON) == GRAPHQL_RESPONSE
            if new_client and exc.status_code == 400 and isinstance(exc.__cause__, InvalidOperationTypeError):
                # GraphQL over HTTP: a mutation sent by GET is the wrong method (405); legacy clients keep 400.
                raise HTTPException(405, exc.reason) from exc.__cause__
            raise
        sub_response = kwargs.get("sub_response")
        if sub_response is not None and any((e.extensions or {}).get("code") == "UNAVAILABLE"
                                            for e in getattr(result, "errors", None) or ()):
            # The database is out of reach: 503 says "try again shortly" to clients and proxies.
            sub_response.status_code = 503
            sub_response.headers["Retry-After"] = "2"
        data = kwargs.get("request_data")
        self.runtime.metrics.observe_operation(
            operation_label(getattr(data, "operation_name", None), getattr(data, "query", None)),
            time.perf_counter() - started, bool(getattr(result, "errors", None)))
        return result


class BodyLimit:
    """Refuses request bodies over ``TENURE_MAX_BODY_BYTES``: at once when the declared
    length is over, and while reading when no length was declared (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"errors": [{"message": f"the request body is over {self.limit} bytes (TENURE_MAX_BODY_BYTES)",
                         "extensions": {"code": "LIMIT_EXCEEDED", "limit": "body_size"}}]},
            status_code=413,
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No declared length: read the body here, up to the limit, and hand it on.
        messages: list[Any] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


_frozen = False


def freeze_startup_objects() -> None:
    """Move what start-up made (modules, the schema, the plugins) out of the garbage
    collector's reach, once per process: otherwise every full collection walks them again,
    about a fifth of a portal page's CPU."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def create_app(
    settings: Settings | None = None,
    plugins: PluginManager | None = None,
    *,
    background: bool = True,
    dispatch: Callable[[list[int]], Awaitable[None]] | None = None,
) -> Starlette:
    """The ASGI app. ``background`` runs jobs in this process when no broker is set (the
    embedded default); tests pass ``False`` and run jobs themselves."""
    # Called without settings, this is a server process's app factory (``tenure serve``,
    # ``uvicorn --factory``), the one app of its process; tests and tools pass settings.
    serving = settings is None
    settings = settings or Settings.from_env()
    if serving:
        clock.freeze_from_setting(settings.now)
    plugins = plugins or load_plugins(settings)
    db = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
    holder: dict[str, Any] = {}

    async def hand_off(ids: list[int]) -> None:
        target = holder.get("dispatch")
        if target is not None:
            await target(ids)

    runtime = Runtime(settings, plugins, db, dispatch or hand_off)
    graphql = TenureGraphQL(runtime, graphql_ide="graphiql" if settings.graphiql else None)
    instrument_tracing(graphql.schema)  # OpenTelemetry spans, only when OTEL_* configures them

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Ready when the database answers and is migrated to the enabled plugins' heads;
        otherwise 503 with the reason (unreachable, refused, not_migrated) and the fix."""
        from tenure.core.startup import current_revisions, database_problem, missing_revisions, not_migrated

        try:
            async with db.read_engine.connect() as connection:  # no write lock on SQLite
                current = await current_revisions(connection)
            missing = missing_revisions(settings, plugins, current)
            problem = not_migrated(missing, current) if missing else None
        except Exception as exc:
            problem = database_problem(exc, db.url)
            if problem is None:
                raise
        if problem is not None:
            return JSONResponse({"status": "unavailable", "reason": problem.kind, "detail": problem.message}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(await runtime.metrics.render(db), media_type=METRICS_CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from tenure.workers.runner import start_background

        stop = None
        if dispatch is None:
            holder["dispatch"], stop = await start_background(runtime, run_jobs=background)
        if serving:
            freeze_startup_objects()
        try:
            yield
        finally:
            if stop is not None:
                await stop()
            await db.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            *([Route(ide.ASSET_ROUTE, ide.asset)] if settings.graphiql else []),  # GraphiQL's own files
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(DatabaseUnavailable)  # innermost: a 503 that says why, not a stack trace
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)  # outermost: every response, refusals too, carries its id
    instrument_app(app, db)  # when OTEL_* configures traces: request, SQL and httpx spans, around all the rest
    if not logging.getLogger().handlers:
        configure_logging(settings)  # a fresh `tenure serve --workers N` process: log like its parent
    return app
