"""The education plugin's table: one row per course a learner completed (the first time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from tenure.plugin import BigId, plugin_model_base

Model = plugin_model_base("education")


class Completion(Model):
    __tablename__ = "education_completions"
    __table_args__ = (UniqueConstraint("customer_id", "course"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    course: Mapped[str] = mapped_column(String(100))
    completed_at: Mapped[datetime]
    #: The interaction that logged it (kept for the audit trail; not a foreign key, since
    #: interactions may be pruned).
    interaction_id: Mapped[int | None] = mapped_column(BigInteger)
