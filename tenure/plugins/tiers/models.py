"""Tier tables: the tiers the business defines, and each customer's membership."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, Json, plugin_model_base

if TYPE_CHECKING:  # mypy sees the declarative base; at run time the table is marked as the plugin's
    Model = Base
else:
    Model = plugin_model_base("tiers")


class Tier(Model):
    """A level. It qualifies on spend (minor units, net of refunds) and/or order count over
    ``window_days``, or on qualifying points earned (loyalty plugin); any one criterion set
    is enough unless ``require_all``. A tier with no criterion is the level everyone starts at."""

    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    min_spend: Mapped[int | None] = mapped_column(BigInteger)
    min_orders: Mapped[int | None] = mapped_column(Integer)
    min_points: Mapped[int | None] = mapped_column(BigInteger)
    window_days: Mapped[int] = mapped_column(Integer)
    require_all: Mapped[bool] = mapped_column(Boolean, default=False)
    points_multiplier: Mapped[int] = mapped_column(Integer, default=100)
    discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    perks: Mapped[list[str]] = mapped_column(Json, default=list)
    grace_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Membership(Model):
    """The customer's tier. ``manual`` marks a staff override, which the review job leaves
    alone until ``expires_at`` (if set); ``downgrade_on`` is when the grace period ends."""

    __tablename__ = "tier_memberships"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tier_id: Mapped[int] = mapped_column(ForeignKey("tiers.id"), index=True)
    since: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    downgrade_on: Mapped[datetime | None]
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[datetime]
