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
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import httpx
from sqlalchemy import event, text

from tenure.core import auth, clock
from tenure.core.clock import FrozenClock
from tenure.core.context import ServiceContext
from tenure.core.db import Base, Database, enabled_tables
from tenure.core.outbox import drain
from tenure.core.plugins import PluginManager, load_plugins
from tenure.core.services.customers import merge_customers
from tenure.core.settings import Settings
from tenure.schema.relay import decode_id, to_global_id

#: Transaction control, not work: :meth:`TenureHarness.count_statements` leaves these out.
CONTROL_STATEMENTS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


#: What a plugin's tests import (with the pytest plugin ``tenure.pytest_plugin``).
__all__ = ["FrozenClock", "GraphQLErrors", "JobRunner", "RoleClient", "StatementCounter", "TenureHarness",
           "freeze_time", "merge_customers", "migration_differences", "not_installed"]

def global_id(type_name: str, pk: int | str) -> str:
    """The global id the API gives the ``type_name`` whose primary key is ``pk``."""
    return str(to_global_id(type_name, pk))


def pk_of(value: str | int) -> int:
    """The primary key a global id holds (a plain decimal id is its own)."""
    return decode_id(value)


class GraphQLErrors(AssertionError):
    """The response carried GraphQL errors where none were expected."""


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


class TenureHarness:
    def __init__(self, settings: Settings, plugins: PluginManager, *, background: bool = False) -> None:
        from tenure.schema.server import create_app

        self.settings = settings
        self.plugins = plugins
        self.app = create_app(settings, plugins, background=background)
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
        env: dict[str, str] | None = None,
        background: bool = False,
        **settings: Any,
    ) -> AsyncIterator[TenureHarness]:
        """An app on ``database_url`` with ``plugins`` on (``None``: every installed one).
        ``env`` adds settings by their variable names (a plugin's ``TENURE_<PLUGIN>_<FIELD>``).
        ``background`` runs queued work in the app, as ``tenure serve`` does; by default
        tests run it themselves (:meth:`run_jobs`)."""
        # Rescores after an event run as soon as the jobs do, not in a later window.
        # Tests' receivers listen on 127.0.0.1, an address webhooks are otherwise refused.
        env = {"TENURE_CHURN_RESCORE_DELAY_SECONDS": "0", "TENURE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
               **(env or {}), "TENURE_DATABASE_URL": database_url,
               "TENURE_ENVIRONMENT": "test"}
        if plugins is not None:
            env["TENURE_PLUGINS"] = ",".join(plugins) if plugins else ""
        base = Settings.from_env(env, env_file=None)
        cfg = base.replace(**settings) if settings else base
        manager = load_plugins(cfg, extra=extra_plugins)
        harness = cls(cfg, manager, background=background)
        if create_tables:
            await harness.create_tables()
        async with harness.app.router.lifespan_context(harness.app):
            try:
                yield harness
            finally:
                await harness.client.aclose()

    @property
    def db(self) -> Database:
        return self.runtime.db

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

    def member_token(self, customer_id: int | str) -> str:
        """A member token for the customer, given by primary key or global id."""
        token, _ = auth.member_token(self.settings.signing_key, pk_of(str(customer_id)), 3600)
        return token

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None
    ) -> dict[str, Any]:
        """POST a GraphQL request; returns the whole JSON answer (``data`` and ``errors``)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = await self.client.post("/graphql", json={"query": query, "variables": variables or {}},
                                          headers=headers)
        return response.json()

    async def ok(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None
    ) -> dict[str, Any]:
        """Like :meth:`gql`, for a request that must succeed: returns ``data``."""
        if key is None:
            key = await self.key("admin")
        answer = await self.gql(query, variables, key=key)
        if answer.get("errors"):
            raise GraphQLErrors(answer["errors"])
        return answer["data"]

    async def client_for(self, role: str = "admin", *, customer_id: int | str | None = None,
                         staff_email: str | None = None, scopes: list[str] | None = None) -> RoleClient:
        """A GraphQL client acting as ``role``; ``member`` needs the ``customer_id`` it acts as."""
        if role == "member":
            if customer_id is None:
                raise ValueError("a member client needs customer_id")
            return RoleClient(self, self.member_token(customer_id))
        return RoleClient(self, await self.key(role, staff_email=staff_email, scopes=scopes))

    @property
    def jobs(self) -> JobRunner:
        return JobRunner(self)

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
            if not statement.lstrip().upper().startswith(CONTROL_STATEMENTS):
                counter.statements.append(statement)

        target = self.db.engine.sync_engine
        event.listen(target, "before_cursor_execute", record)
        try:
            yield counter
        finally:
            event.remove(target, "before_cursor_execute", record)


@dataclass
class RoleClient:
    """GraphQL requests with one caller's credentials (see :meth:`TenureHarness.client_for`)."""

    harness: TenureHarness
    token: str

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.harness.gql(query, variables, key=self.token)

    async def ok(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.harness.ok(query, variables, key=self.token)


@dataclass
class JobRunner:
    """Runs background jobs in the test's process: everything due, or one job by name."""

    harness: TenureHarness

    async def run_due(self) -> dict[str, int]:
        """Every due outbox entry, and what those enqueue, until none is left."""
        return await self.harness.run_jobs()

    async def run(self, name: str, payload: dict[str, Any] | None = None) -> None:
        """One job now, in its own transaction, as the scheduler would start it; then what
        it enqueued."""
        spec = self.harness.plugins.jobs.get(name)
        if spec is None:
            raise KeyError(f"no job named {name!r} (enabled: {', '.join(self.harness.plugins.jobs)})")
        async with self.harness.transaction() as ctx:
            await spec.run(ctx, payload or {})
        await self.harness.run_jobs()


#: Where :func:`freeze_time` stops the clock unless told otherwise.
FROZEN_AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@contextlib.contextmanager
def freeze_time(at: datetime = FROZEN_AT) -> Iterator[clock.FrozenClock]:
    """Stop Tenure's clock at ``at`` for the block; ``.advance(days=...)`` moves it."""
    with clock.use_clock(clock.FrozenClock(at)) as frozen:
        yield frozen  # type: ignore[misc]


def not_installed(*modules: ModuleType) -> list[ModuleType]:
    """The plugin modules that no installed distribution provides through the
    ``tenure.plugins`` entry point, to pass as ``extra_plugins``: a plugin's own tests then
    run the same whether its package was ``pip install``-ed or not."""
    from tenure.core.plugins import entry_point_candidates

    installed = {c.info.name for c in entry_point_candidates()}
    return [m for m in modules if m.tenure_plugin_info().name not in installed]


def migration_differences(database_url: str, plugins: list[str], extra_plugins: list[ModuleType] = (),  # type: ignore[assignment]
                          *, only: str | None = None) -> list[Any]:
    """Migrate a database with ``plugins`` on, then return what alembic autogenerate would
    still write: empty when the migrations create exactly what the models declare. With
    ``only``, just the differences in that plugin's tables. Call it from a synchronous test
    (alembic runs its own event loop)."""
    from tenure.core.db import plugin_tables
    from tenure.core.migrate import differences, upgrade
    from tenure.core.plugins import load_plugins

    env = {"TENURE_DATABASE_URL": database_url, "TENURE_ENVIRONMENT": "test", "TENURE_PLUGINS": ",".join(plugins)}
    settings = Settings.from_env(env, env_file=None)
    manager = load_plugins(settings, extra=extra_plugins)
    upgrade(settings, manager)
    found = differences(settings, manager)
    if only is None:
        return found
    owned = {t.name for t in plugin_tables(only)}
    return [d for d in found if _table_name(d) in owned]


def _table_name(difference: Any) -> str | None:
    """The table an alembic autogenerate difference is about."""
    if isinstance(difference, list):  # column modifications come grouped
        return _table_name(difference[0]) if difference else None
    for part in difference[1:]:
        if isinstance(part, str) and part in Base.metadata.tables:
            return part
        table = getattr(part, "table", None) if not hasattr(part, "c") else part
        if table is not None and hasattr(table, "name"):
            return str(table.name)
    return None


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
    from tenure.core.plugins import installed_plugins

    installed_plugins()  # imports every plugin, so every table is known
    heads = _installed_heads()
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
            # Stamped as migrated (what `alembic stamp heads` writes): the tables are the
            # models', which the migrations match (tests/core/test_migrations.py), so the
            # processes a test starts find the database at the heads they check for.
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
            await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            for head in heads:
                await conn.execute(text("INSERT INTO alembic_version VALUES (:head)"), {"head": head})
    finally:
        await db.dispose()


def _installed_heads() -> list[str]:
    """The head revision of the core and of every installed plugin."""
    from alembic.script import ScriptDirectory

    from tenure.core.migrate import alembic_config

    settings = Settings.from_env({"TENURE_PLUGINS": "all"})
    return list(ScriptDirectory.from_config(alembic_config(settings, load_plugins(settings))).get_heads())
