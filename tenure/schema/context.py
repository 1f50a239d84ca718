"""The per-request context: the caller, one database session for reads, a transaction per
mutation, and fresh dataloaders."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from tenure.core.auth import AuthenticationError, Principal, authenticate
from tenure.core.context import ServiceContext
from tenure.core.db import Database
from tenure.core.reads import Route

if TYPE_CHECKING:
    from tenure.schema.runtime import Runtime

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
BatchLoad = Callable[["Context", Sequence[Any]], Awaitable[Sequence[Any]]]


_READS: weakref.WeakKeyDictionary[Database, async_sessionmaker[AsyncSession]] = weakref.WeakKeyDictionary()


def _request_reads(db: Database) -> async_sessionmaker[AsyncSession]:
    """Sessions for a request's reads. On PostgreSQL they run without a transaction: under
    READ COMMITTED each statement sees its own snapshot either way, and BEGIN and ROLLBACK
    are two more round trips per request (about 0.2 ms of CPU). SQLite keeps its deferred
    read transaction, which is what keeps its writers' lock out of the way."""
    if db.dialect != "postgresql":
        return db.read_sessions
    found = _READS.get(db)
    if found is None:
        engine = db.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        found = _READS[db] = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return found


@dataclass
class Context:
    runtime: Runtime
    principal: Principal | None
    auth_error: str | None = None
    request: Any = None
    #: The ``connection_init`` payload of a websocket (graphql-transport-ws).
    connection_params: dict[str, Any] | None = None
    _loaders: dict[Any, DataLoader[Any, Any]] = field(default_factory=dict)
    _session: AsyncSession | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _exit: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _closed: bool = False
    _route: Route | None = None
    #: The audit entry of the mutation field running now: written in that mutation's own
    #: transaction when it commits (one transaction, not two), and by the audit trail on
    #: its own when the mutation is refused and rolls back.
    pending_audit: Any = None
    #: An API key the request sent, read once the operation is known (:meth:`authenticate_key`).
    api_key: str | None = None
    #: The write transaction the key was read in, kept for the operation's first write.
    _opened: tuple[contextlib.AsyncExitStack, AsyncSession] | None = None

    @property
    def settings(self) -> Any:
        return self.runtime.settings

    @property
    def plugins(self) -> Any:
        return self.runtime.plugins

    @contextlib.asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's read session. Resolvers run concurrently and one session serves one
        statement at a time, so its use is serialised here."""
        async with self._lock:
            if self._closed:
                # A resolver left running after its request was answered (a sibling field
                # failed and the answer went out without it) must not open a new session.
                raise RuntimeError("the request has already been answered")
            if self._session is None:
                self._session = await self._exit.enter_async_context(_request_reads(self.runtime.db)())
            yield self._session

    @contextlib.asynccontextmanager
    async def read_route(self) -> AsyncIterator[Route]:
        """Where the request's compiled reads (:class:`tenure.core.reads.Read`) go, found once per
        read session rather than once per statement."""
        async with self.db() as session:
            if self._route is None:
                self._route = await Route.of(session)
            yield self._route

    async def authenticate_key(self, *, may_write: bool) -> None:
        """Read the request's API key. An operation that may write reads it inside the write
        transaction that its first mutation field then runs in: one transaction and one
        connection for the request, where a read of its own would take a second of each.
        Any other operation reads it on the request's read session, which its fields use
        next. A key that fails leaves the caller unauthenticated, with the reason."""
        key, self.api_key = self.api_key, None
        if key is None:
            return
        secret = self.settings.signing_key
        try:
            if may_write:
                opened = contextlib.AsyncExitStack()
                session = await opened.enter_async_context(self.runtime.db.transaction())
                self._opened = (opened, session)
                self.principal = await authenticate(session, secret, key)
            else:
                async with self.db() as session:
                    self.principal = await authenticate(session, secret, key)
        except AuthenticationError as exc:
            self.auth_error = f"not authenticated: {exc}"
            await self._close_opened()
        except BaseException as exc:  # the database failed: roll back, and let the request say so
            await self._close_opened(exc)
            raise

    async def _close_opened(self, error: BaseException | None = None) -> None:
        """End the transaction the key was read in when no write took it (it wrote nothing):
        committed, or rolled back after ``error``."""
        opened, self._opened = self._opened, None
        if opened is None:
            return
        if error is None:
            await opened[0].aclose()
        else:
            await opened[0].__aexit__(type(error), error, error.__traceback__)

    @contextlib.asynccontextmanager
    async def _write_session(self) -> AsyncIterator[AsyncSession]:
        """The transaction the key was read in, the first time; a new one after that."""
        opened, self._opened = self._opened, None
        if opened is None:
            async with self.runtime.db.transaction() as session:
                yield session
            return
        async with opened[0]:  # commits, or rolls back on an error, as db.transaction() does
            yield opened[1]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[ServiceContext]:
        """One write transaction for one mutation; queued work is handed on after commit."""
        async with self._lock:
            if self._session is not None:
                # Close the read transaction, so the write sees fresh data and SQLite's
                # write lock is not waiting on our own reader.
                await self._session.commit()
                self._route = None
            async with self._write_session() as session:
                ctx = ServiceContext(session, self.settings, self.plugins,
                                     actor=self.principal.actor if self.principal else "anonymous")
                yield ctx
                if self.pending_audit is not None:
                    from tenure.core import audit

                    await audit.record(session, self.pending_audit)
                    self.pending_audit = None
        self._loaders.clear()
        if ctx.enqueued:
            await self.runtime.dispatch(ctx.enqueued)

    def loader(self, load: BatchLoad, *, key: Hashable | None = None) -> DataLoader[Any, Any]:
        """The request's DataLoader for ``load(context, keys)``, created on first use."""
        cache_key = key if key is not None else load
        found = self._loaders.get(cache_key)
        if found is None:
            async def batch(keys: list[Any]) -> Sequence[Any]:
                return await load(self, keys)

            found = DataLoader(load_fn=batch, max_batch_size=1000)
            self._loaders[cache_key] = found
        return found

    async def close(self) -> None:
        """Release the request's session once no resolver is using it: resolvers still
        running when the answer is sent finish their statement first."""
        async with self._lock:
            self._closed = True
            await self._close_opened()
            await self._exit.aclose()
