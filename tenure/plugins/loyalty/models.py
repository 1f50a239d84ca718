"""Loyalty tables: one account per customer (the balances, guarded by CHECK constraints),
the append-only ledger whose positive entries are the FIFO lots, the record of which lots
each spend drew from, the earn rules and the rewards catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, Json, plugin_model_base

if TYPE_CHECKING:  # mypy sees the declarative base; at run time the table is marked as the plugin's
    Model = Base
else:
    Model = plugin_model_base("loyalty")


class EntryKind:
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"
    REVERSE = "reverse"


class Account(Model):
    """The running totals of one customer's ledger. ``balance`` is the sum of the posted
    entries and ``pending`` of the pending ones; every write goes through a conditional
    UPDATE of this row, which is also the per-customer lock."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("pending >= 0", name="pending_not_negative"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class Entry(Model):
    """One ledger line. Entries with ``points > 0`` are lots: ``remaining`` is what is left
    of them to spend, expire or reverse, oldest (by ``expires_at``) first."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        UniqueConstraint("customer_id", "idempotency_key"),
        CheckConstraint("remaining >= 0", name="remaining_not_negative"),
        Index("ix_loyalty_entries_customer_created", "customer_id", "created_at"),
        Index("ix_loyalty_entries_order", "order_id"),
        Index("ix_loyalty_entries_lots", "customer_id", "pending", "remaining"),
        Index("ix_loyalty_entries_available", "pending", "available_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    points: Mapped[int] = mapped_column(BigInteger)
    #: What counts toward a tier (purchases); kept apart from what can be spent.
    qualifying: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    remaining: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Points a reversal could not take back because they were spent already.
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    reward_id: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(250))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime]
    available_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]


class Draw(Model):
    """``points`` of lot ``lot_id`` went to entry ``entry_id`` (a spend, expiry or reversal)."""

    __tablename__ = "loyalty_draws"

    entry_id: Mapped[int] = mapped_column(ForeignKey("loyalty_entries.id", ondelete="CASCADE"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("loyalty_entries.id", ondelete="CASCADE"), primary_key=True,
                                        index=True)
    points: Mapped[int] = mapped_column(BigInteger)


class EarnRule(Model):
    """``base``: ``points`` per ``per_amount`` minor units of ``currency``; ``multiplier``:
    ``percent`` of the base, limited to a tag, a line category and/or a time window;
    ``bonus``: ``points`` once on ``trigger`` (first_order, birthday, referral)."""

    __tablename__ = "loyalty_earn_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(Integer, default=0)
    per_amount: Mapped[int] = mapped_column(BigInteger, default=100)
    currency: Mapped[str | None] = mapped_column(String(3))
    percent: Mapped[int] = mapped_column(Integer, default=100)
    tag: Mapped[str | None] = mapped_column(String(50))
    category: Mapped[str | None] = mapped_column(String(100))
    trigger: Mapped[str | None] = mapped_column(String(20))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Reward(Model):
    __tablename__ = "loyalty_rewards"
    __table_args__ = (CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(1000), default="")
    cost: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int | None] = mapped_column(Integer)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
