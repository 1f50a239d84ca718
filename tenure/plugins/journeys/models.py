"""The journeys plugin's tables: journeys (their definition as data), entries (one per
customer, journey and trigger occurrence), the steps each entry ran, who was in a journey's
saved segment, the event-log cursor, and events that history wrote (which start nothing)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, Json, plugin_model_base

if TYPE_CHECKING:
    Model = Base
else:
    Model = plugin_model_base("journeys")

ACTIVE, PAUSED = "active", "paused"


class Journey(Model):
    __tablename__ = "journeys_journeys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE)
    trigger: Mapped[str] = mapped_column(String(100))
    trigger_params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    conditions: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    exits: Mapped[list[str]] = mapped_column(Json, default=list)
    holdout_percent: Mapped[int] = mapped_column(Integer)
    conversion_days: Mapped[int] = mapped_column(Integer)
    #: The shipped template it was switched on from, if any.
    template: Mapped[str | None] = mapped_column(String(100))
    #: Triggers count from here: the creation, or the latest resume (a pause lets nobody in).
    active_since: Mapped[datetime]
    #: The event log's last id when it became active: event triggers count events after it.
    events_after: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The last business day whose date triggers were looked at.
    dates_through: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Entry(Model):
    """A customer in a journey for one occurrence of its trigger (``order:12``,
    ``birthday:2027``, ``event:345``): unique, so nobody enters twice for the same one."""

    __tablename__ = "journeys_entries"
    __table_args__ = (
        UniqueConstraint("journey_id", "customer_id", "occurrence"),
        Index("ix_journeys_entries_status_due", "status", "due_at"),
        Index("ix_journeys_entries_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys_journeys.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    occurrence: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[datetime]
    #: Kept out on purpose (the holdout): no step runs, their orders are the baseline.
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)
    #: active, completed, exited or held_out.
    status: Mapped[str] = mapped_column(String(20))
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(300))
    finished_at: Mapped[datetime | None]


class StepRun(Model):
    """A step an entry ran (done) or passed (skipped, with the reason): unique per entry
    and step, written in the transaction of the step's action."""

    __tablename__ = "journeys_step_runs"
    __table_args__ = (UniqueConstraint("entry_id", "step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journeys_entries.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(300), default="")
    ran_at: Mapped[datetime]


class SegmentMember(Model):
    """Who was in the saved segment of a journey with the ``entered_segment`` trigger when
    the job last looked: whoever is in it now and was not then has entered it."""

    __tablename__ = "journeys_segment_members"

    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys_journeys.id", ondelete="CASCADE"),
                                            primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)


class Cursor(Model):
    """How far the event log was read (by the time events were written)."""

    __tablename__ = "journeys_cursor"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    at: Mapped[datetime]


class HistoryEvent(Model):
    """An event written while history was imported (``ctx.history``): it starts no journey."""

    __tablename__ = "journeys_history_events"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
