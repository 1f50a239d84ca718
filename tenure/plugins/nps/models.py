"""The NPS plugin's tables: surveys, invitations (one per survey and cause, each with a
single-use link), and responses (at most one per invitation)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, plugin_model_base

if TYPE_CHECKING:
    Model = Base
else:
    Model = plugin_model_base("nps")


class Survey(Model):
    __tablename__ = "nps_surveys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(String(500))
    scale: Mapped[str] = mapped_column(String(10))  # nps (0-10) or csat (1-5)
    trigger: Mapped[str] = mapped_column(String(20))  # after_order, schedule or manual
    delay_days: Mapped[int] = mapped_column(Integer, default=0)
    every_days: Mapped[int | None] = mapped_column(Integer)
    segment_tag: Mapped[str | None] = mapped_column(String(50))
    throttle_days: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Invitation(Model):
    __tablename__ = "nps_invitations"
    __table_args__ = (
        UniqueConstraint("survey_id", "cause"),
        Index("ix_nps_invitations_status_due", "status", "due_at"),
        Index("ix_nps_invitations_customer_sent", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("nps_surveys.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    cause: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    skip_reason: Mapped[str | None] = mapped_column(String(300))
    due_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Response(Model):
    __tablename__ = "nps_responses"
    __table_args__ = (
        Index("ix_nps_responses_customer_answered", "customer_id", "answered_at"),
        Index("ix_nps_responses_answered", "answered_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Unique: a link answers once, even when two answers race.
    invitation_id: Mapped[int] = mapped_column(ForeignKey("nps_invitations.id", ondelete="CASCADE"), unique=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("nps_surveys.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    scale: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(20))
    answered_at: Mapped[datetime]
