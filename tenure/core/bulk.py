"""Many rows into a table at once, at the driver's speed.

On PostgreSQL a batch of rows goes in by binary ``COPY`` on the transaction's own asyncpg
connection (``copy_records_to_table``), and ids for rows that need them are taken from the
table's sequence in one statement beforehand; elsewhere (SQLite), and while statement
listeners watch the engine (tracing, the tests' statement counts, which a COPY would slip
past), the same rows go as one executemany. Either way the values are the columns' bound
values (JSON serialised, times in UTC), so both paths write the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core.reads import Read

#: What a duplicate key raises, through SQLAlchemy or straight from the driver (a COPY, a
#: compiled statement of :mod:`tenure.core.reads`): callers that expect a clash catch both.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (IntegrityError,)
try:
    from asyncpg.exceptions import IntegrityConstraintViolationError
except ImportError:  # PostgreSQL's driver is an extra
    pass
else:
    INTEGRITY_ERRORS += (IntegrityConstraintViolationError,)

#: Below this many rows an executemany costs no more than the COPY's own round trips.
COPY_FROM = 50


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction, or ``None`` where the rows
    should go through SQLAlchemy (another database, or listeners on the engine)."""
    connection = await session.connection()
    if connection.dialect.name != "postgresql":
        return None
    sync = connection.sync_connection
    if sync is None or sync.dispatch.before_cursor_execute or sync.dispatch.after_cursor_execute:
        return None
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]],
                      columns: Sequence[str] | None = None) -> None:
    """Insert ``rows`` (dicts with the same keys, column names) into ``table``, no ids back.
    With ``columns``, only those keys are written (a row may hold others: an instance's
    ``__dict__``)."""
    if not rows:
        return
    driver = await _driver(session) if len(rows) >= COPY_FROM else None
    if driver is None:
        await session.execute(insert(table), list(rows) if columns is None else
                              [{name: row[name] for name in columns} for row in rows])
        return
    dialect = session.bind.dialect if session.bind is not None else (await session.connection()).dialect
    names = list(rows[0]) if columns is None else list(columns)
    # Column by column: a comprehension per column and one zip build the records at a
    # fraction of a generator per row (an import sends hundreds of thousands of values).
    values_of: list[list[Any]] = []
    for name in names:
        process = table.c[name].type._cached_bind_processor(dialect)
        values = [row[name] for row in rows]
        values_of.append(values if process is None else [None if v is None else process(v) for v in values])
    await driver.copy_records_to_table(table.name, records=list(zip(*values_of, strict=True)), columns=names)


async def new_ids(session: AsyncSession, table: Table, count: int) -> list[int] | None:
    """``count`` fresh ids for ``table`` (ascending), for rows about to be inserted by
    :func:`insert_rows`; ``None`` where the database had better give them as it inserts
    (then insert with ``RETURNING``).

    PostgreSQL takes them from the table's sequence in one statement (for a batch worth a
    COPY). SQLite gives ids one row at a time when asked to return them in order, a round
    trip to its thread each; a writing transaction there holds the database's one write
    lock from its ``BEGIN IMMEDIATE`` (:mod:`tenure.core.db`), so the ids after the
    largest one are free until it commits, which is what SQLite itself would give (and a
    deferred transaction that wrote after another writer committed would fail, not clash)."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        if count < 2:
            return None
        largest = (await session.execute(text(f'SELECT max(id) FROM "{table.name}"'))).scalar()
        return list(range(int(largest or 0) + 1, int(largest or 0) + 1 + count))
    if count < COPY_FROM or await _driver(session) is None:
        return None
    return sorted(int(i) for i in await _NEXT_IDS.all(session, t=table.name, n=count))


async def insert_returning_ids(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` into ``table``; their new ids, in the rows' order. A batch takes its
    ids first (:func:`new_ids`) and goes by :func:`insert_rows`; otherwise one executemany
    returning the ids."""
    if not rows:
        return []
    ids = await new_ids(session, table, len(rows))
    if ids is not None:
        await insert_rows(session, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
        return ids
    result = await session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows))
    return [int(i) for i in result.scalars()]


async def update_rows(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]], *, each: Any,
                      where: str, set_: dict[str, str] | None = None, types: dict[str, Any] | None = None) -> None:
    """Change many rows of ``table``, each by its own values.

    On PostgreSQL the rows go as arrays, one per value, in a single ``UPDATE ... FROM
    unnest(...) AS v`` that sets each column to ``set_[column]`` (SQL over the row ``t``
    and its values ``v``; by default the value of the same name) where ``where`` holds: the
    server runs one statement for the batch instead of one per row, which is most of what
    an executemany of thousands costs it. A value is typed by its column, or by ``types``
    when it has no column of its name. ``each`` is the same change as a compiled statement
    (:class:`tenure.core.reads.Write`) for one row: what runs for a single row, on SQLite,
    and while statement listeners watch the engine."""
    if not rows:
        return
    driver = await _driver(session) if len(rows) > 1 else None
    if driver is None:
        await each.many(session, rows)
        return
    dialect = session.bind.dialect if session.bind is not None else (await session.connection()).dialect
    names = list(rows[0])
    kinds = [table.c[name].type if name in table.c else (types or {})[name] for name in names]
    assignments = set_ if set_ is not None else {name: f"v.{name}" for name in names if name in table.c}
    arrays = []
    for name, kind in zip(names, kinds, strict=True):
        process = kind._cached_bind_processor(dialect)
        values = [row[name] for row in rows]
        arrays.append(values if process is None else [None if v is None else process(v) for v in values])
    unnest = ", ".join(f"${n}::{kind.compile(dialect=dialect)}[]" for n, kind in enumerate(kinds, 1))
    sql = (f'UPDATE "{table.name}" AS t SET {", ".join(f"{c} = {e}" for c, e in assignments.items())} '
           f'FROM unnest({unnest}) AS v({", ".join(names)}) WHERE {where}')
    await driver.execute(sql, *arrays)


#: ``n`` ids from table ``t``'s sequence (compiled once, sent on the driver).
_NEXT_IDS = Read(lambda _keys: text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
                 .columns(id=BigInteger()))
