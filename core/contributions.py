"""The data that plugins return from their hooks (see :mod:`tenure.core.hookspecs`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from tenure.core.context import ServiceContext
    from tenure.core.events import DomainEvent


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
    object (a :class:`tenure.core.models.Customer` row for ``"Customer"``) as ``self``."""

    query: type | None = None
    mutation: type | None = None
    subscription: type | None = None
    extends: dict[str, type] = field(default_factory=dict)
    types: tuple[type, ...] = ()


JobFunction = Callable[["ServiceContext", dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ForecastItem:
    """What a scheduled rule will do on ``day`` if nothing changes: ``count`` things of
    ``kind`` (``renewals.reminder``), said in ``summary``; ``amount`` of ``unit`` (points,
    or minor units of a currency code) where the rule moves value."""

    day: date
    kind: str
    count: int
    summary: str
    amount: int | None = None
    unit: str | None = None


#: ``forecast(ctx, first, last)``: the items of the days ``first`` to ``last`` (UTC
#: calendar days, both included), read only: it must change nothing.
ForecastFunction = Callable[["ServiceContext", date, date], Awaitable[list[ForecastItem]]]


@dataclass(frozen=True)
class Forecaster:
    """A plugin's part of ``tenure forecast`` and ``upcoming(days:)``."""

    name: str
    forecast: ForecastFunction
    description: str = ""


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
    """Runs ``handle`` for the events of that class that a transaction raises, in it.

    With ``batch=True``, ``handle(ctx, events)`` is called once with every such event of
    the batch (one API order is a batch of one; an import hands over a thousand) and
    should answer them set-based, in a few statements. Otherwise ``handle(ctx, event)`` is
    called once per event.

    .. versionadded:: 0.2  ``batch``.
    """

    event: type[DomainEvent]
    handle: Callable[[ServiceContext, Any], Awaitable[None]]
    priority: int = 100
    batch: bool = False


@dataclass(frozen=True)
class InvariantCheck:
    name: str
    check: Callable[[AsyncSession], Awaitable[list[str]]]


@dataclass(frozen=True)
class RetentionDimension:
    """A way to split the retention figures: ``retention(by: <NAME>)``.

    ``name`` is the GraphQL enum value in lower case (``"tier"`` shows as ``TIER``). ``sql``
    is one SELECT, valid on SQLite and PostgreSQL, of ``customer_id, label`` rows: the group
    each customer is in now. A customer with no row is left out of the split; one with
    several rows counts in each of their groups. ``description`` says what the groups are.
    """

    name: str
    sql: str
    description: str = ""


@dataclass(frozen=True)
class PersonalData:
    """What a plugin holds about one customer, for data-protection requests.

    ``export(session, customer_id)`` returns it as JSON-ready data (what ``exportCustomer``
    shows under the plugin's name); ``erase(session, customer_id)`` removes the personal
    parts and keeps what totals and history need (a ledger stays, a free-text note goes).
    Both run in the request's transaction.
    """

    name: str
    export: Callable[[AsyncSession, int], Awaitable[Any]]
    erase: Callable[[AsyncSession, int], Awaitable[None]]


@dataclass(frozen=True)
class TemplateDefault:
    """The built-in text of a message, in one locale (``en``, ``de`` ...)."""

    key: str
    locale: str
    subject: str
    body: str


class DeliveryError(Exception):
    """A channel could not deliver. ``permanent`` (an address refused, a 4xx answer) stops
    the retries; otherwise the message is tried again with backoff."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """A rendered message, as a channel gets it. ``message_id`` is the same on every try
    of the same message: receivers use it to drop a repeat."""

    id: int
    message_id: str
    customer_id: int
    recipient: str
    to: str
    template: str
    locale: str
    subject: str
    body: str
    data: dict[str, Any]


class MessageChannel:
    """A way to deliver messages. Subclass it, set ``name`` and ``consent`` (the customer's
    ``consent_<flag>`` that must be on, or ``None``), and implement :meth:`send`.

    :meth:`address` returns where the message goes, or ``None`` (then the message is
    skipped, saying so); by default the first contact of kind ``contact_kind`` (``email``,
    ``phone``) of the customer, or the owner's email for a message to the owner.
    """

    name: str = ""
    consent: str | None = None
    contact_kind: str | None = None

    def address(self, settings: Any, customer: Any, contacts: list[Any], owner: Any, recipient: str) -> str | None:
        if recipient == "owner":
            return getattr(owner, "email", None) if self.contact_kind == "email" else None
        for contact in contacts:
            if contact.kind == self.contact_kind:
                return str(contact.value)
        return None

    async def send(self, settings: Any, message: Outgoing) -> None:
        """Deliver ``message`` or raise :class:`DeliveryError`."""
        raise DeliveryError(f"channel {self.name!r} cannot send", permanent=True)
