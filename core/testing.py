"""Test support for Tenure and for plugin authors: a running app on a real database, a
GraphQL client with a chosen role, the job runner, a frozen clock, and a statement counter.

Use it from pytest (see ``tests/conftest.py``)::

    async with TenureHarness.start(database_url, plugins=["loyalty"]) as tenure:
        key = await tenure.key("staff")
        data = await tenure.ok("{ customers(first: 5) { totalCount } }", key=key)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import event, text

from core import auth
from core.context import ServiceContext
from core.db import Base, Database, enabled_tables
from core.outbox import drain
from core.plugins import PluginManager, load_plugins
from core.settings import Settings


class GraphQLErrors(AssertionError):
    """The response carried GraphQL errors where none were expected."""


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


class TenureHarness:
    def __init__(self, settings: Settings, plugins: PluginManager) -> None:
        from schema.server import create_app

        self.settings = settings
        self.plugins = plugins
        self.app = create_app(settings, plugins, background=False)
        self.runtime = self.app.state.runtime
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://tenure.test")
        self._keys: dict[str, str] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        database_url: str,
        plugins: list[str] | None = None,
        extra_plugins: list[ModuleType] = (),  # type: ignore[assignment]
        create_tables: bool = True,
        **settings: Any,
    ) -> AsyncIterator[TenureHarness]:
        """An app on ``database_url`` with ``plugins`` on (``None``: every installed one)."""
        env = {"TENURE_DATABASE_URL": database_url, "TENURE_ENVIRONMENT": "test"}
        if plugins is not None:
            env["TENURE_PLUGINS"] = ",".join(plugins) if plugins else ""
        base = Settings.from_env(env, env_file=None)
        cfg = base.replace(**settings) if settings else base
        manager = load_plugins(cfg, extra=extra_plugins)
        harness = cls(cfg, manager)
        if create_tables:
            await harness.create_tables()
        async with harness.app.router.lifespan_context(harness.app):
            try:
                yield harness
            finally:
                await harness.client.aclose()

    @property
    def db(self) -> Database:
        return self.runtime.db  # type: ignore[no-any-return]

    async def create_tables(self) -> None:
        tables = enabled_tables([n for n in self.plugins.names() if n != "core"])
        async with self.db.engine.begin() as conn:
            await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=tables))

    async def key(self, role: str = "admin", *, staff_email: str | None = None, scopes: list[str] | None = None) -> str:
        """An API key with ``role`` (cached per role when no options are given)."""
        cache = role if staff_email is None and scopes is None else None
        if cache and cache in self._keys:
            return self._keys[cache]
        async with self.db.transaction() as session:
            created = await auth.create_api_key(session, name=f"test {role}", role=role,
                                                staff_email=staff_email, scopes=scopes)
        if cache:
            self._keys[cache] = created.key
        return created.key

    def member_token(self, customer_id: int) -> str:
        token, _ = auth.member_token(self.settings.signing_key, customer_id, 3600)
        return token

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict[str, Any]:
        """POST a GraphQL request; returns the whole JSON answer (``data`` and ``errors``)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await self.client.post("/graphql", json={"query": query, "variables": variables or {}},
                                          headers=headers)
        return response.json()  # type: ignore[no-any-return]

    async def ok(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict[str, Any]:
        """Like :meth:`gql`, for a request that must succeed: returns ``data``."""
        if key is None:
            key = await self.key("admin")
        answer = await self.gql(query, variables, key=key)
        if answer.get("errors"):
            raise GraphQLErrors(answer["errors"])
        return answer["data"]  # type: ignore[no-any-return]

    async def run_jobs(self) -> dict[str, int]:
        """Run every due job (and what they enqueue) until none is left."""
        return await drain(self.db, self.plugins, self.settings)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[ServiceContext]:
        """A service context in one transaction, to call services directly."""
        async with self.db.transaction() as session:
            yield ServiceContext(session, self.settings, self.plugins, actor="test")

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.reader() as session:
            return await session.scalar(text(sql), params)

    @contextlib.contextmanager
    def count_statements(self) -> Iterator[StatementCounter]:
        counter = StatementCounter()

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")):
                counter.statements.append(statement)

        target = self.db.engine.sync_engine
        event.listen(target, "before_cursor_execute", record)
        try:
            yield counter
        finally:
            event.remove(target, "before_cursor_execute", record)


async def truncate_all(database_url: str) -> None:
    """Empty every table of a PostgreSQL test database between tests."""
    db = Database(database_url)
    try:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


async def create_all(database_url: str) -> None:
    from core.plugins import installed_plugins

    installed_plugins()  # imports every plugin, so every table is known
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
    finally:
        await db.dispose()
