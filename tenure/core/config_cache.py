"""Configuration that every write reads (active tiers, earn rules, after-order surveys,
webhook subscriptions), kept per process between transactions.

What is kept is valid for one value of the database's configuration token, a random value in
the one-row table ``config_version``. Every transaction that changes a watched table through
the ORM replaces the token as it flushes, inside that transaction, so the change and the new
token commit together. A transaction reads the token once, with its first configuration
read, and reloads what was kept under another token: a change made by any process (server,
worker, CLI) is seen by the next transaction of every other one, on PostgreSQL and SQLite.

A transaction that changed configuration itself reads past what is kept until it ends. A
database whose token row is missing (emptied by hand, or a test's truncation) keeps
nothing: each transaction reads for itself until the next change writes a token again.
Configuration written around the ORM (plain SQL) is not noticed: change it through the API
or the CLI.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction, object_session

from tenure.core import clock
from tenure.core.models import ConfigVersion
from tenure.core.reads import Read

_TOKEN = "tenure.config_token"  # the transaction's token, once read (None: nothing is kept)
_CHANGED = "tenure.config_changed"  # the transaction changed configuration: read past the cache
_READ = "tenure.config_read"  # what the transaction read, by name, when nothing may be kept
_PENDING = "tenure.config_pending"  # the flush under way wrote a watched row

_names: set[str] = set()
_watched: set[type] = set()
_kept: dict[str, tuple[str, list[Any]]] = {}

_TOKEN_READ = Read(lambda _keys: select(ConfigVersion.token).where(ConfigVersion.id == 1))


class CachedConfig:
    """A configuration read, kept per process: ``await ACTIVE_TIERS.get(session)``.

    ``read`` gives instances that are not attached to a session (a :class:`Read`), so they
    can outlive the transaction that read them; callers must not change them."""

    def __init__(self, name: str, model: type, read: Read) -> None:
        if name in _names:
            raise ValueError(f"a cached configuration named {name!r} exists")
        _names.add(name)
        if model not in _watched:
            _watched.add(model)
            for change in ("after_insert", "after_update", "after_delete"):
                event.listen(model, change, _note_change)
        self.name = name
        self._read = read

    async def get(self, session: AsyncSession) -> list[Any]:
        info = session.info
        if not info.get(_CHANGED):
            if _TOKEN not in info:
                tokens = await _TOKEN_READ.all(session)  # a one-column read gives the values themselves
                info[_TOKEN] = tokens[0] if tokens else None
            token = info[_TOKEN]
            if token is not None:
                kept = _kept.get(self.name)
                if kept is not None and kept[0] == token:
                    return kept[1]
                value = await self._read.all(session)
                _kept[self.name] = (token, value)
                return value
        read = info.setdefault(_READ, {})
        if self.name not in read:
            read[self.name] = await self._read.all(session)
        return read[self.name]


def _note_change(_mapper: Any, _connection: Any, target: Any) -> None:
    """A watched row was written: the flush under way replaces the token when it ends."""
    session = object_session(target)
    if session is not None:
        session.info[_PENDING] = True


@event.listens_for(Session, "after_flush")
def _replace_token(session: Session, _flush: UOWTransaction) -> None:
    if not session.info.pop(_PENDING, False):
        return
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    values = {"id": 1, "token": uuid.uuid4().hex, "changed_at": clock.now()}
    statement = dialect.insert(ConfigVersion).values(values)
    connection.execute(statement.on_conflict_do_update(
        index_elements=["id"], set_={"token": values["token"], "changed_at": values["changed_at"]}))
    session.info[_CHANGED] = True
    session.info.pop(_READ, None)


@event.listens_for(Session, "after_transaction_end")
def _end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's outermost transaction
        for key in (_TOKEN, _CHANGED, _READ, _PENDING):
            session.info.pop(key, None)

