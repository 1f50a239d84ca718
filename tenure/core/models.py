"""The core's tables: customers and how they are known, interactions, orders, tasks,
staff and API keys, the domain event log, the outbox, webhooks and idempotency records.

Derived figures a portal shows on every row (order count, spend, last order) are kept on
the customer by the services in the same transaction as the order, so reading them costs
nothing; `tenure check` recomputes them from the orders.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenure.core.db import Base, BigId, Json

CASCADE = "CASCADE"


class Role(enum.StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    INTEGRATION = "integration"
    MEMBER = "member"


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    PAID = "paid"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    scopes: Mapped[list[str]] = mapped_column(Json, default=list)
    staff_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_owner_id", "owner_id"),
        Index("ix_customers_name", "name"),
        Index("ix_customers_last_order_at", "last_order_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source_channel: Mapped[str | None] = mapped_column(String(50))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id", ondelete="SET NULL"))
    birthday: Mapped[date | None] = mapped_column(Date)
    locale: Mapped[str | None] = mapped_column(String(20))
    consent_email: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_push: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Derived from orders and interactions, kept current in their transactions.
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None]
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    last_interaction_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]

    contacts: Mapped[list[CustomerContact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )
    identities: Mapped[list[CustomerIdentity]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )
    tags: Mapped[list[CustomerTag]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )


class CustomerContact(Base):
    """An email address or phone number; shared ones point at likely duplicates."""

    __tablename__ = "customer_contacts"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "value"),
        Index("ix_customer_contacts_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete=CASCADE))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(320))
    customer: Mapped[Customer] = relationship(back_populates="contacts")


class CustomerIdentity(Base):
    """How another system knows the customer (a POS member number, a shop id): unique."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete=CASCADE), index=True
    )
    kind: Mapped[str] = mapped_column(String(50))
    value: Mapped[str] = mapped_column(String(200))
    customer: Mapped[Customer] = relationship(back_populates="identities")


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = (Index("ix_customer_tags_tag", "tag"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete=CASCADE), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)
    customer: Mapped[Customer] = relationship(back_populates="tags")


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_interactions_customer_occurred", "customer_id", "occurred_at"),
        # Interactions of a period, whoever the customer: the churn rescore reads the day
        # that left each of its windows since the last one.
        Index("ix_interactions_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete=CASCADE))
    kind: Mapped[str] = mapped_column(String(50))
    channel: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(String(500), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_orders_customer_placed", "customer_id", "placed_at"),
        Index("ix_orders_placed_at", "placed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete=CASCADE))
    channel: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20))
    placed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )

    @property
    def net_amount(self) -> int:
        return 0 if self.status == OrderStatus.CANCELLED else self.amount - self.refunded_amount


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete=CASCADE), index=True)
    sku: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str | None] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    order: Mapped[Order] = relationship(back_populates="lines")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # One cause opens at most one open task (DOMAIN: never created twice).
        Index(
            "uq_tasks_open_cause",
            "source",
            "source_key",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_tasks_assignee_status", "assignee_id", "status"),
        Index("ix_tasks_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete=CASCADE))
    title: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.OPEN)
    source: Mapped[str] = mapped_column(String(50), default="manual")
    source_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class Event(Base):
    """The domain event log: the customer timeline's plugin entries, the ``events`` feed
    that partners catch up from, and what webhooks deliver."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_occurred", "customer_id", "occurred_at"),
        Index("ix_events_type", "type"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(50))
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    summary: Mapped[str] = mapped_column(String(500), default="")
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    on_timeline: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime]


class OutboxEntry(Base):
    """Work to do after the business transaction commits: a job run, a message, a webhook
    delivery. Written in the same transaction as the change it follows, so a crash between
    commit and hand-off loses nothing; ``dedupe_key`` makes the same work enqueued twice
    run once."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_available", "status", "available_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    #: Where the entry was enqueued from: the W3C ``traceparent``/``tracestate`` of the span then
    #: current (when tracing) and the request id; the job runs in that context (core.tracing).
    trace_context: Mapped[dict[str, str] | None] = mapped_column(Json)


class WebhookSubscription(Base):
    """A URL that receives the events it subscribes to, signed after the Standard Webhooks
    specification with ``secret`` (``whsec_<base64>``) and, each until it expires, with the
    secrets rotations replaced (``previous_secrets``: ``{"secret", "expiresAt"}``, newest
    first)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secrets: Mapped[list[dict[str, str]] | None] = mapped_column(Json)
    event_types: Mapped[list[str]] = mapped_column(Json, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class ConfigVersion(Base):
    """One row: a random token replaced by every transaction that changes configuration
    (tiers, earn rules, surveys, webhook subscriptions), so each process knows when what it
    keeps of them is stale (see :mod:`tenure.core.config_cache`)."""

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete=CASCADE)
    )
    event_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime]
    #: When the next attempt is due after this failed one; none after a success or the last.
    next_attempt_at: Mapped[datetime | None]
    #: This failed attempt was the last: the schedule ran out or the target was refused.
    dead: Mapped[bool] = mapped_column(Boolean, default=False)


class IdempotencyRecord(Base):
    """The first answer to a request sent with an idempotency key, to give again."""

    __tablename__ = "idempotency_records"

    operation: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime]


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


class Message(Base):
    """One message to one recipient over one channel (core.messages). Rendered when it is
    recorded, in the business transaction; ``dedupe_key`` + ``channel`` is unique, so the
    same reminder is recorded, and so sent, once. ``message_id`` is derived from the dedupe
    key and sent along (the email's Message-ID), so receivers can drop a repeat too."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("dedupe_key", "channel"),
        Index("ix_messages_customer_id", "customer_id", "id"),
        Index("ix_messages_status", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key, like the event log: a message stays on record; merges move it.
    customer_id: Mapped[int] = mapped_column(BigInteger)
    recipient: Mapped[str] = mapped_column(String(20), default="customer")
    channel: Mapped[str] = mapped_column(String(30))
    template: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(20))
    to_address: Mapped[str | None] = mapped_column(String(2000))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(250))
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=MessageStatus.PENDING)
    skip_reason: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class MessageTemplate(Base):
    """A template edited through the API; it overrides the built-in one of the same key
    and locale (``locale`` is ``en``, ``de``, ``pt-br`` ...)."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("key", "locale"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    locale: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditEntry(Base):
    """Who did what: every mutation, and staff reads of customers (core.audit). Keeps ids,
    never personal data, so it survives a customer's erasure unchanged."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_customer_id", "customer_id", "id"),
        Index("ix_audit_log_actor", "actor", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    operation: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(20))


class OrderMonth(Base):
    """One customer's non-cancelled orders in one calendar month (UTC), linked to their
    previous and next active months: the rollup the retention figures read, kept current by
    :mod:`tenure.core.services.order_months` in the order's own transaction. Months are
    ``year * 12 + month - 1``."""

    __tablename__ = "order_months"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete=CASCADE), primary_key=True)
    month: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[int] = mapped_column(BigInteger)
    prev_month: Mapped[int | None] = mapped_column(Integer)
    next_month: Mapped[int | None] = mapped_column(Integer)
    first_month: Mapped[int] = mapped_column(Integer)
