"""What an import does around its batches to keep the process and the database in shape:
fewer passes of Python's cyclic collector while it runs, and PostgreSQL's statistics
renewed for the tables it grows, beside the batches (:class:`Upkeep`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import text

from tenure.core.db import Database

#: Batches between the import's full collections (see :func:`fewer_collections`).
COLLECT_EVERY = 10


@contextmanager
def fewer_collections() -> Iterator[Callable[[], None]]:
    """Python's cyclic collector, tuned for an import: a batch allocates hundreds of
    thousands of short-lived objects (rows, instances, parameters), and each of the
    collector's passes walked everything the process held, a fifth of an import's CPU. What
    exists before the import (modules, the schema, the plugins) is set aside (``gc.freeze``)
    and young objects are collected every 500,000 allocations instead of 700 (at 50,000, the
    young passes still cost a twentieth of an import's CPU). Yields what to
    call after each batch: every :data:`COLLECT_EVERY` batches, one full pass, for the
    cycles the batches' ORM instances left (several kilobytes a customer row), which the
    rare full passes would otherwise let pile up; so memory stays flat (a pass after every
    batch cost a tenth of a 100,000-order import on SQLite, as it walks whatever the import
    keeps)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(500_000, 20, 100)
    batches = 0

    def after_batch() -> None:
        nonlocal batches
        batches += 1
        if batches % COLLECT_EVERY == 0:
            gc.collect()

    try:
        yield after_batch
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


#: The tables on disk at least twice the size the planner believes (and past 16 pages): the
#: file's size is known at once, where the statistics views lag by up to a second.
_GROWN = text("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema() "
              "AND pg_relation_size(c.oid) >= greatest(2 * c.relpages, 16) * current_setting('block_size')::bigint")


async def refresh_statistics(db: Database) -> None:
    """Have PostgreSQL count the tables an import has (at least) doubled. Its planner goes by
    each table's statistics, and a table filled faster than the autovacuum's analyze comes
    round is taken for the size it had: a look-up of a batch's keys is then planned as a
    scan, each row compared with every key, and a batch's reads slow down with every row
    already imported. Counted at each doubling, a large import analyzes a table a dozen
    times, a few tens of milliseconds each."""
    if db.dialect != "postgresql":
        return
    async with db.transaction() as session:
        for table in (await session.execute(_GROWN)).scalars().all():
            await session.execute(text(f"ANALYZE {table}"))


class Upkeep:
    """The upkeep of one import: :func:`fewer_collections` while it runs, and after each
    batch (:meth:`after_batch`) a renewal of PostgreSQL's statistics started beside the next
    batches, one at a time, rather than waited for: the import's batches need not stop while
    the server counts a table. A renewal still running when the import ends is waited for
    (and stopped if the import failed)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._renewal: asyncio.Future[None] | None = None
        self._collections: contextlib.ExitStack | None = None
        self._collect: Callable[[], None] = lambda: None

    async def __aenter__(self) -> Upkeep:
        self._collections = contextlib.ExitStack()
        self._collect = self._collections.enter_context(fewer_collections())
        return self

    def after_batch(self) -> None:
        self._collect()
        if self.db.dialect != "postgresql":
            return
        if self._renewal is not None:
            if not self._renewal.done():
                return  # the next batch's turn asks again
            self._renewal.result()  # a renewal that failed fails the import
        self._renewal = asyncio.ensure_future(refresh_statistics(self.db))

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        try:
            if self._renewal is not None and error is None:
                await self._renewal
            elif self._renewal is not None:
                self._renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._renewal
        finally:
            assert self._collections is not None
            self._collections.close()
