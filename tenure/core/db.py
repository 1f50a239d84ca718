"""The database: declarative base, column types, engine and sessions.

One ``MetaData`` holds the core's tables and every plugin's (plugins subclass :class:`Base`);
which plugin owns a table is recorded in ``table.info["plugin"]``, so a plugin that is off
contributes no table. On SQLite (the embedded default) writes begin ``IMMEDIATE`` with a
busy timeout and the journal is WAL, so concurrent writers queue instead of failing with
"database is locked"; reads begin deferred.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A big integer key that is still SQLite's ``INTEGER PRIMARY KEY`` (its rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: JSON that is ``JSONB`` on PostgreSQL.
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC time on both databases (SQLite stores none; we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Tenure stores timezone-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def plugin_tables(plugin: str | None) -> list[Any]:
    """The tables a plugin owns (``None``: the core's)."""
    return [t for t in Base.metadata.sorted_tables if t.info.get("plugin") == plugin]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class Database:
    """An engine and its sessions. Create one per event loop (asyncpg pools belong to one)."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False,
                 connect: Callable[[], Awaitable[Any]] | None = None) -> None:
        """``connect`` makes the driver connections itself (SQLAlchemy's ``async_creator``)."""
        self.url = url
        self.dialect = "sqlite" if is_sqlite(url) else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if connect is not None:
            kwargs["async_creator"] = connect
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        else:
            _skip_closed_connections(self.engine)
        self.read_engine = self.engine.execution_options(tenure_readonly=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.read_sessions = async_sessionmaker(
            self.read_engine, expire_on_commit=False, autoflush=False
        )

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (on SQLite it does not take the write lock)."""
        async with self.read_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


EPOCH = date(1970, 1, 1)


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def business_day_number(stored: str | None, zone: str) -> int | None:
    """SQLite's ``business_day(time, zone)``: the whole days from 1970-01-01 to the calendar
    day a stored UTC time falls on in ``zone`` (SQLite knows no time zones; PostgreSQL does
    this with ``AT TIME ZONE``)."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC).astimezone(_zone(zone))
    return (moment.date() - EPOCH).days


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so writes can begin IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function("business_day", 2, business_day_number, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("tenure_readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _skip_closed_connections(engine: AsyncEngine) -> None:
    """Hand out no connection the server has closed (a restart, a fail-over, an idle
    timeout): asyncpg notices the closed socket as it happens, so asking it costs nothing,
    where SQLAlchemy's ``pool_pre_ping`` costs three round trips on every checkout. A
    connection cut without a word (a network partition) fails its first statement instead;
    SQLAlchemy then discards every connection of the pool opened before the failure."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the database closed this connection")


def insert_ignoring_conflicts(dialect: str, table: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the dialect in use."""
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return postgresql.insert(table).on_conflict_do_nothing()


def plugin_model_base(plugin: str) -> type[Base]:
    """The declarative base for a plugin's tables: marks each table as the plugin's, so it
    is created and migrated only while the plugin is on. Use one per plugin::

        Model = plugin_model_base("loyalty")

        class PointsLot(Model):
            __tablename__ = "loyalty_lots"
            ...
    """

    class PluginModel(Base):
        __abstract__ = True

        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            table = cls.__dict__.get("__table__")
            if table is not None:
                table.info["plugin"] = plugin

    PluginModel.__name__ = f"{plugin.title()}Model"
    return PluginModel


def enabled_tables(plugins: list[str]) -> list[Any]:
    """The core's tables and those of the named plugins, in dependency order."""
    return [
        t
        for t in Base.metadata.sorted_tables
        if t.info.get("plugin") is None or t.info.get("plugin") in plugins
    ]
