"""The renewals plugin's tables: plans (with their reminder offsets), subscriptions or
contracts per customer, and the reminders sent (one per subscription, end date and offset)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, Json, plugin_model_base

if TYPE_CHECKING:
    Model = Base
else:
    Model = plugin_model_base("renewals")


class Plan(Model):
    __tablename__ = "renewals_plans"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Days before the end; null means TENURE_RENEWALS_REMINDER_DAYS.
    reminder_days: Mapped[list[int] | None] = mapped_column(Json)
    created_at: Mapped[datetime]


class Subscription(Model):
    __tablename__ = "renewals_subscriptions"
    __table_args__ = (
        Index("ix_renewals_subscriptions_status_ends", "status", "ends_on"),
        Index("ix_renewals_subscriptions_customer", "customer_id"),
        UniqueConstraint("external_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("renewals_plans.id"))
    value: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # The day the current end date was set: reminders due before it are not sent late.
    armed_on: Mapped[date] = mapped_column(Date)
    renewed_to_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    #: The client's own id of the subscription, unique across all customers: a retried
    #: createSubscription with it finds the first one instead of creating another.
    external_id: Mapped[str | None] = mapped_column(String(100))

    def as_dict(self) -> dict[str, Any]:
        return {"subscriptionId": self.id, "customerId": self.customer_id, "value": self.value,
                "currency": self.currency, "startsOn": self.starts_on.isoformat(), "endsOn": self.ends_on.isoformat(),
                "status": self.status, "autoRenew": self.auto_renew}


class Reminder(Model):
    __tablename__ = "renewals_reminders"
    __table_args__ = (UniqueConstraint("subscription_id", "ends_on", "offset_days"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("renewals_subscriptions.id", ondelete="CASCADE"))
    ends_on: Mapped[date] = mapped_column(Date)
    offset_days: Mapped[int] = mapped_column(Integer)
    sent_at: Mapped[datetime]
