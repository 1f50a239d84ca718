"""Alembic's environment: async engine, the core's and enabled plugins' tables only."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

import tenure.core.models  # noqa: F401  (the core's tables)
from tenure.core.db import Base

config = context.config
enabled: list[str] = config.attributes.get("tenure_enabled", [])
#: When writing one plugin's revision, only its tables are compared.
only: str | None = config.attributes.get("tenure_only")
url: str = config.attributes.get("tenure_url") or config.get_main_option("sqlalchemy.url") or ""


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        if reflected and compare_to is None:
            if only is not None:
                return False
            return name != "alembic_version" and not _owned_by_disabled(name)
        owner = obj.info.get("plugin")
        if only is not None:
            return owner == only
        return owner is None or owner in enabled
    table = getattr(obj, "table", None)
    if only is not None and table is not None:
        return table.info.get("plugin") == only
    return True


def _owned_by_disabled(name: str | None) -> bool:
    table = Base.metadata.tables.get(name or "")
    return table is not None and table.info.get("plugin") not in (None, *enabled)


def run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, include_object=include_object,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(main())
