"""The data that plugins return from their hooks (see :mod:`tenure.core.hookspecs`)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
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
class DemoCustomer:
    """One customer of ``tenure demo``'s made-up history, as a plugin's demo part plans it:
    ``rng`` is the plugin's own random stream for this customer (the same seed gives the same
    history), ``profile`` one of ``loyal``, ``regular``, ``occasional`` and ``churner``, and
    ``stopped`` when a churner stopped buying."""

    index: int
    rng: random.Random
    profile: str
    signup: datetime
    stopped: datetime | None
    now: datetime


@dataclass(frozen=True)
class DemoStep:
    """Something a plugin makes a demo customer do at ``at``: ``kind`` and ``data`` are the
    plugin's own, handed back to its ``apply``."""

    at: datetime
    kind: str
    data: dict[str, Any]


@dataclass
class DemoRun:
    """What a plugin's demo part keeps while the history loads: ``clock`` is the frozen
    clock the history runs on (``clock.set(moment)`` to act later than the step, as a
    customer answering a survey two days on), ``counts`` the plugin's figures for the
    summary, and ``memo`` whatever else it keeps from one step to the next."""

    clock: Any
    counts: dict[str, int] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n


#: ``transaction()``: a new transaction's ServiceContext, for work done after the history.
DemoTransaction = Callable[[], AbstractAsyncContextManager["ServiceContext"]]


@dataclass(frozen=True)
class DemoData:
    """A plugin's part of ``tenure demo``, so each of its screens has something to show.

    ``setup(ctx)`` defines what the history needs before it starts (tiers, a survey, a plan)
    and finds it on a second run; ``plan(customer)`` returns the steps a customer takes;
    ``apply(ctx, customer_id, step, run)`` does one at the clock's time through the plugin's
    services; ``finish(transaction, run)`` runs what the scheduler would have run by now
    (points released and expired, renewals closed, a churn rescore); ``summary(counts)``
    says in a line or two what was made."""

    setup: Callable[[ServiceContext], Awaitable[None]] | None = None
    plan: Callable[[DemoCustomer], list[DemoStep]] | None = None
    apply: Callable[[ServiceContext, int, DemoStep, DemoRun], Awaitable[None]] | None = None
    finish: Callable[[DemoTransaction, DemoRun], Awaitable[None]] | None = None
    summary: Callable[[dict[str, int]], list[str]] | None = None


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
