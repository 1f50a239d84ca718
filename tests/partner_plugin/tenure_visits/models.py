"""The plugin's one table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.plugin import BigId, plugin_model_base

Model = plugin_model_base("visits")


class Visit(Model):
    """A customer came to a venue; ``external_id`` (the door counter's) records it once."""

    __tablename__ = "visits_visits"
    __table_args__ = (
        UniqueConstraint("venue", "external_id"),
        Index("ix_visits_visits_customer_id", "customer_id", "visited_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    venue: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str] = mapped_column(String(200))
    visited_at: Mapped[datetime]
    thanked_at: Mapped[datetime | None]
