"""The data that plugins return from their hooks (see :mod:`core.hookspecs`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from core.context import ServiceContext
    from core.events import DomainEvent


@dataclass(frozen=True)
class PluginInfo:
    """Who a plugin is.

    ``requires`` names plugins that must be on for this one to start; ``migrations`` is the
    ``package:folder`` of its alembic revisions (branch label = ``name``); ``hookspecs`` is
    a module of hook specifications this plugin offers to others (tiers offering loyalty
    its points multiplier, say).
    """

    name: str
    version: str
    summary: str
    requires: tuple[str, ...] = ()
    migrations: str | None = None
    hookspecs: ModuleType | None = None


@dataclass(frozen=True)
class SchemaContribution:
    """What a plugin adds to the GraphQL schema. Each value is a ``@strawberry.type``
    class whose fields are added to the named type; their resolvers receive the core
    object (a :class:`core.models.Customer` row for ``"Customer"``) as ``self``."""

    query: type | None = None
    mutation: type | None = None
    subscription: type | None = None
    extends: dict[str, type] = field(default_factory=dict)
    types: tuple[type, ...] = ()


JobFunction = Callable[["ServiceContext", dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class JobSpec:
    """A background job. ``payload`` is JSON; ids, never objects."""

    name: str
    run: JobFunction
    schedule: str | None = None
    description: str = ""
    max_attempts: int | None = None


@dataclass(frozen=True)
class EventHandler:
    """Runs ``handle(ctx, event)`` for every ``event`` of that class, in the transaction."""

    event: type[DomainEvent]
    handle: Callable[[ServiceContext, Any], Awaitable[None]]
    priority: int = 100


@dataclass(frozen=True)
class InvariantCheck:
    name: str
    check: Callable[[AsyncSession], Awaitable[list[str]]]
