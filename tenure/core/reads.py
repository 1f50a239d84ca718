"""Hot reads: a select built and compiled once, run straight on the driver on PostgreSQL.

Through an ``AsyncSession`` a primary-key select costs about 480 µs of CPU (ORM loading,
cache key, compiled-cache lookup, greenlet hop, cursor adaptation) where the same statement
on the asyncpg connection costs about 55 µs. The per-request loaders that every member and
portal query goes through use :class:`Read` instead: the statement is built once per dialect
with its parameters as bind parameters, compiled once, and on PostgreSQL sent as a prepared
statement on the request's own connection. Rows become mapped instances without the ORM's
loading machinery (the instances are not attached to a session, so they behave like the
loaders' results always did: columns only, no lazy loads).

It reads what SQLAlchemy's compiler leaves on a compiled statement (positional parameter
names, bind and result processors, the result columns), which is not public API: the
dependency is held below the next minor version, and every test on PostgreSQL runs it.

The hot writes go the same way (:class:`Write`): an ``INSERT ... RETURNING``, an ``UPDATE``
(its row count) or an executemany, inside the transaction SQLAlchemy began. Rows locked by a
compiled ``SELECT ... FOR UPDATE`` and then changed join the session as loaded
(:func:`attach`), so the rest of the transaction sees them where the ORM would have put them.

SQLite and an engine with statement listeners take the ordinary session path: the embedded
default is not where the floor is measured, and tracing or a statement count would miss a
statement sent around them. A session in a transaction whose ``BEGIN`` SQLAlchemy's adapter
has not sent yet (it sends it with the first statement) gets it sent first, on the adapter,
so a statement on the driver always runs inside the session's transaction.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam, event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, configure_mappers
from sqlalchemy.orm.attributes import instance_state, set_committed_value

#: Builds the statement for a dialect: ``keys(column)`` is the dialect's "column is one of
#: the keys" test (``= ANY($1)`` on PostgreSQL, one prepared statement whatever the count;
#: an expanding ``IN`` on SQLite).
KeysTest = Callable[[Any], ColumnElement[bool]]
Builder = Callable[[KeysTest], Any]


def _keys_any(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return column == any_(bindparam("keys", type_=ARRAY(column.type)))


def _keys_in(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return column.in_(bindparam("keys", expanding=True))


class _Compiled:
    """The statement compiled for one dialect, and how its flat columns become rows: a
    mapped entity takes the run of columns the ORM expanded it to and becomes an instance,
    any other selected item takes one column."""

    def __init__(self, stmt: Any, dialect: Any) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names: list[str] = list(compiled.positiontup or [])
        binds = compiled._bind_processors
        self.bind = [binds.get(name) for name in self.names]
        self.defaults = {name: compiled.binds[name].value for name in self.names}
        columns = compiled._result_columns
        self.result = [column[3]._cached_result_processor(dialect, None) for column in columns]
        self.parts: list[tuple[Any, list[str], int] | None] = []
        at = 0
        # An INSERT ... RETURNING gives plain values; a select may give mapped entities.
        described = getattr(stmt, "column_descriptions", None)
        if described is None:
            described = [{} for _ in columns]
        for item in described:
            entity = item.get("entity")
            if entity is None or item.get("expr") is not entity:
                self.parts.append(None)
                at += 1
                continue
            mapper = entity.__mapper__
            keys = []
            while at < len(columns):
                prop = next((mapper._columntoproperty.get(c) for c in columns[at][2]
                             if c in mapper._columntoproperty), None)
                if prop is None:
                    break
                keys.append(prop.key)
                at += 1
            primary = mapper.get_property_by_column(mapper.primary_key[0]).key
            self.parts.append((mapper.class_manager, keys, keys.index(primary)))
        if at != len(columns):
            raise ValueError(f"cannot map the columns of {self.sql!r} back to its entities")
        self.single = len(self.parts) == 1

    def build(self, values: Sequence[Any]) -> Any:
        out: list[Any] = []
        at = 0
        for part in self.parts:
            if part is None:
                out.append(values[at])
                at += 1
                continue
            manager, keys, identity = part
            if values[at + identity] is None:  # the outer side of a join found nothing
                out.append(None)
                at += len(keys)
                continue
            instance = manager.new_instance()
            state = instance.__dict__
            for key in keys:
                state[key] = values[at]
                at += 1
            out.append(instance)
        return out[0] if self.single else tuple(out)


class Read:
    """A read statement compiled once per dialect. ``build(keys)`` returns the select;
    ``await read.all(session, keys, **params)`` returns mapped instances for a one-entity
    select, else tuples (an entity as an instance, any other item as its value)."""

    def __init__(self, build: Builder) -> None:
        self._build = build
        # By the dialect object itself, held weakly: an id() could be reused by another
        # engine's dialect (SQLite after PostgreSQL) once the first is gone.
        self._compiled: weakref.WeakKeyDictionary[Any, tuple[Any, _Compiled]] = weakref.WeakKeyDictionary()

    def _for(self, dialect: Any) -> tuple[Any, _Compiled]:
        found = self._compiled.get(dialect)
        if found is None:
            stmt = self._build(_keys_any if dialect.name == "postgresql" else _keys_in)
            found = self._compiled[dialect] = (stmt, _Compiled(stmt, dialect))
        return found

    async def all(self, session: AsyncSession, keys: Sequence[Any] = (), **params: Any) -> list[Any]:
        return await self.run(await Route.of(session), keys, **params)

    async def run(self, route: Route, keys: Sequence[Any] = (), **params: Any) -> list[Any]:
        stmt, compiled = self._for(route.dialect)
        params["keys"] = list(keys)
        if route.driver is None:
            return [compiled.build(row) for row in (await route.connection.execute(stmt, params)).all()]
        records = await route.driver.fetch(compiled.sql, *_arguments(compiled, params))
        processors = compiled.result
        if not any(processors):
            return [compiled.build(record) for record in records]
        return [compiled.build([v if p is None or v is None else p(v) for p, v in zip(processors, record, strict=True)])
                for record in records]


def _arguments(compiled: _Compiled, params: dict[str, Any]) -> list[Any]:
    """The driver's positional arguments for ``params``, through the bind processors."""
    args = []
    for name, process in zip(compiled.names, compiled.bind, strict=True):
        value = params[name] if name in params else compiled.defaults[name]
        args.append(process(value) if process is not None and value is not None else value)
    return args


class Write(Read):
    """An ``INSERT ... RETURNING`` (or an ``UPDATE``) compiled once per dialect, sent the way
    :class:`Read` sends a select: inside the transaction SQLAlchemy began, on the driver."""

    async def one(self, session: AsyncSession, **params: Any) -> Any:
        """What ``RETURNING`` gives for the one row written."""
        rows = await self.all(session, **params)
        return rows[0]

    async def count(self, session: AsyncSession, **params: Any) -> int:
        """Run a statement without ``RETURNING``; how many rows it wrote."""
        route = await Route.of(session)
        stmt, compiled = self._for(route.dialect)
        if route.driver is None:
            return int((await route.connection.execute(stmt, params)).rowcount)
        status = await route.driver.execute(compiled.sql, *_arguments(compiled, params))
        return int(status.rsplit(" ", 1)[-1])

    async def many(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        """Run a statement without ``RETURNING`` once per row, as one executemany."""
        if not rows:
            return
        route = await Route.of(session)
        stmt, compiled = self._for(route.dialect)
        if route.driver is None:
            await route.connection.execute(stmt, list(rows))
            return
        await route.driver.executemany(compiled.sql, [_arguments(compiled, row) for row in rows])


def built(model: Any, values: dict[str, Any]) -> Any:
    """An instance of ``model`` holding ``values`` (columns) as if loaded, outside any
    session, as :class:`Read` builds its rows: a few microseconds where the ORM's
    constructor or loading takes tens. :func:`attach` makes it the session's own."""
    if model not in _CONFIGURED:
        # A mapper's attributes are set up by the first query or constructor; a process may
        # build an instance before either ran (its first customer, made in a fresh process).
        configure_mappers()
        _CONFIGURED.add(model)
    instance = model._sa_class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


_CONFIGURED: set[Any] = set()


def attach(session: AsyncSession, instances: Sequence[Any]) -> list[Any]:
    """Instances a :class:`Read` built (rows just locked, say) as the session's own, as if the
    ORM had loaded them with ``populate_existing``: an instance the session holds already
    takes the row's values and is returned in its place; the others join as persistent and
    unchanged, so a later change to one is flushed as usual. A few microseconds an instance
    where the ORM's select costs hundreds."""
    sync = session.sync_session
    identity_map = sync.identity_map
    out = []
    for instance in instances:
        state = instance_state(instance)
        key = state.mapper._identity_key_from_state(state)
        held = identity_map.get(key)
        if held is not None:
            for prop in state.mapper.column_attrs:
                if prop.key in instance.__dict__:
                    set_committed_value(held, prop.key, instance.__dict__[prop.key])
            out.append(held)
            continue
        # What make_transient_to_detached() and Session.add() do for it, less their checks
        # and the cascade along its relationships: the instance is new to every session,
        # and what it refers to is attached only when passed too (as created customers
        # pass their contacts), so there is nothing to cascade to. Half the cost an instance.
        state.key = key
        state._commit_all(state.dict)  # unchanged, whatever was set on it before
        state._expire_attributes(state.dict, state.unloaded)  # relationships load when asked
        if sync._before_attach(state, instance):
            identity_map.add(state)
            sync._after_attach(state, instance)
        out.append(instance)
    return out


def set_loaded(instance: Any, values: dict[str, Any]) -> None:
    """Columns of a session's instance set as if loaded with ``values`` (a statement just
    wrote them), so that no flush writes them again: straight into its ``__dict__`` when it
    holds no change of its own (nothing to keep apart), else through ``set_committed_value``;
    an instance left with no change to write is clean again (the commit's flush then has
    nothing to look through: a quarter of a millisecond a redemption)."""
    state = instance_state(instance)
    if not state.modified and not state.expired_attributes:
        instance.__dict__.update(values)
        return
    for name, value in values.items():
        set_committed_value(instance, name, value)
    if not state.committed_state:
        state._commit_all(state.dict, state._instance_dict())


def mark_written(instances: Sequence[Any]) -> None:
    """Instances of the session whose every column a statement has just written as they
    hold it: their changes become what was loaded, so no flush writes them again (and none
    is needed for them)."""
    for instance in instances:
        state = instance_state(instance)
        state._commit_all(state.dict, state._instance_dict())


@dataclass(frozen=True)
class Route:
    """Where a session's reads go: the asyncpg connection, when a statement sent on it runs
    where the session's would (in autocommit, as the request's reads do, or inside the
    transaction SQLAlchemy began) and nothing listens to the engine's statements (tracing,
    the tests' statement counts would not see a statement sent around them); otherwise the
    session's own connection. Valid while the session keeps its connection: a request
    finds it once for its reads (:meth:`tenure.schema.context.Context.read_route`)."""

    connection: Any
    dialect: Any
    driver: Any = None

    @classmethod
    async def of(cls, session: AsyncSession) -> Route:
        """The session's route; found once per transaction (finding it costs two greenlet
        hops), and checked for statement listeners each time."""
        kept: Route | None = session.info.get(_ROUTE)
        if kept is not None and not _listened(kept.connection.sync_connection):
            return kept
        connection = await session.connection()
        dialect = connection.dialect
        sync = connection.sync_connection
        if dialect.name != "postgresql" or sync is None or _listened(sync):
            return cls(connection, dialect)
        fairy = await connection.get_raw_connection()
        adapted = fairy.dbapi_connection
        if (adapted is not None and session.in_transaction() and getattr(adapted, "_transaction", False) is None
                and getattr(adapted, "isolation_level", None) != "autocommit"):
            # The session's transaction has not sent its BEGIN yet (the adapter sends it with
            # the first statement): send it now, as that statement would, and go on the driver.
            async with adapted._execute_mutex:
                if adapted._transaction is None:
                    await adapted._start_transaction()
        if adapted is None or not (getattr(adapted, "isolation_level", None) == "autocommit"
                                   or getattr(adapted, "_transaction", None) is not None):
            return cls(connection, dialect)
        route = cls(connection, dialect, adapted.driver_connection)
        if getattr(adapted, "_transaction", None) is not None:  # this transaction's connection until it ends
            session.info[_ROUTE] = route
        return route


_ROUTE = "tenure.route"


def _listened(sync: Any) -> bool:
    return bool(sync is None or sync.dispatch.before_cursor_execute or sync.dispatch.after_cursor_execute)


@event.listens_for(Session, "after_transaction_end")
def _forget_route(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_ROUTE, None)
