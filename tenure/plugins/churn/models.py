"""The churn plugin's tables: one score row per customer (rewritten by each rescore), the
warnings (one open per customer at a time; each is an episode), rule overrides, saved
segments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.core.db import Base, BigId, Json, plugin_model_base
from tenure.core.models import Customer

if TYPE_CHECKING:  # mypy sees the declarative base; at run time the tables are marked as churn's
    Model = Base
else:
    Model = plugin_model_base("churn")
CASCADE = "CASCADE"


class Score(Model):
    """What the last rescore found: RFM figures and scores, the signals behind the health
    score (``fired`` is a bit per rule, see :mod:`tenure.plugins.churn.rules`), lifecycle stage."""

    __tablename__ = "churn_scores"
    # No secondary index: a rescore rewrites the rows that changed, and with room left on each
    # page (fillfactor) PostgreSQL rewrites them in place (a HOT update) without touching an index.
    __table_args__ = {"postgresql_with": {"fillfactor": 70}}

    # No foreign key: checking one locks the customer's row for every score row inserted
    # (a write to each customer on a first full rescore). The merge handler deletes the
    # merged customer's row; a full rescore deletes rows of customers that are gone.
    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # The time, not the days since: a day count would change every row every day.
    last_order_at: Mapped[datetime | None]
    frequency: Mapped[int] = mapped_column(Integer, default=0)
    monetary: Mapped[int] = mapped_column(BigInteger, default=0)
    r: Mapped[int | None] = mapped_column(Integer)
    f: Mapped[int | None] = mapped_column(Integer)
    m: Mapped[int | None] = mapped_column(Integer)
    segment: Mapped[str | None] = mapped_column(String(20))
    stage: Mapped[str | None] = mapped_column(String(20))
    usual_gap_days: Mapped[int | None] = mapped_column(Integer)
    interactions_recent: Mapped[int] = mapped_column(Integer, default=0)
    interactions_previous: Mapped[int] = mapped_column(Integer, default=0)
    complaints: Mapped[int] = mapped_column(Integer, default=0)
    cancellations: Mapped[int] = mapped_column(Integer, default=0)
    fired: Mapped[int] = mapped_column(Integer, default=0)
    health: Mapped[int] = mapped_column(Integer, default=100)
    #: When a rescore last changed this row.
    scored_at: Mapped[datetime]
    #: When the window figures (frequency, monetary, interactions, complaints, cancellations)
    #: were last counted from this customer's orders and interactions. A row no rescore has
    #: touched since the last full one holds that rescore's figures (see :class:`Run`).
    figures_at: Mapped[datetime | None]

    def days_since_order(self, now: datetime) -> int | None:
        """Whole days from the last order to ``now``; None if the customer never ordered."""
        return None if self.last_order_at is None else max(0, (now - self.last_order_at).days)


class Warning(Model):
    """A customer whose health fell below the threshold: one episode, open until they come
    back (an order) or their score recovers."""

    __tablename__ = "churn_warnings"
    __table_args__ = (
        Index("uq_churn_warnings_open", "customer_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_churn_warnings_status_score", "status", "score", "id"),
        Index("ix_churn_warnings_since", "since"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No foreign key, as for scores: the rescore inserts warnings by the hundred thousand.
    customer_id: Mapped[int] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(20), default="open")
    level: Mapped[str] = mapped_column(String(10))
    score: Mapped[int] = mapped_column(Integer)
    fired: Mapped[int] = mapped_column(Integer, default=0)
    reasons: Mapped[list[str]] = mapped_column(Json, default=list)
    since: Mapped[datetime]
    followed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    resolved_at: Mapped[datetime | None]
    came_back: Mapped[bool] = mapped_column(Boolean, default=False)


class Rule(Model):
    """A rule's settings changed through the API (a rule without a row uses the defaults)."""

    __tablename__ = "churn_rules"

    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    threshold: Mapped[float] = mapped_column(Float)
    weight: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class Segment(Model):
    """A named filter over the scores, usable as ``customers(filter: {churnSegment: ...})``."""

    __tablename__ = "churn_segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    filter: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime]


class Cutpoints(Model):
    """The quintile bounds of the last full rescore (``bounds``: the largest value in each of
    the first four fifths), so rescoring a few customers after an event places them on the
    same scale without sorting the whole base again."""

    __tablename__ = "churn_cutpoints"

    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    bounds: Mapped[list[float]] = mapped_column(Json, default=list)
    computed_at: Mapped[datetime]


class Stale(Model):
    """A customer whose orders or interactions changed (marked in the transaction that
    changed them): the next rescore counts their figures afresh rather than moving on the
    stored ones. The mark goes once a rescore has read the data it stands for."""

    __tablename__ = "churn_stale"

    customer_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    marked_at: Mapped[datetime]


class Run(Model):
    """A full rescore that committed: the moment it scored everyone at, how (``recount``:
    every figure counted from the orders and interactions; ``advance``: the stored figures
    moved on by what left each window since the run before, and the changed customers
    counted afresh), on which settings, and what it wrote."""

    __tablename__ = "churn_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scored_at: Mapped[datetime]
    mode: Mapped[str] = mapped_column(String(10))
    #: The settings its figures and warnings stand on (the windows, the threshold): a run on
    #: others cannot be moved on from.
    basis: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    customers: Mapped[int] = mapped_column(Integer)
    recounted: Mapped[int] = mapped_column(Integer)
    rewritten: Mapped[int] = mapped_column(Integer)
    took_ms: Mapped[int] = mapped_column(Integer)


# Created after and dropped before customers all the same (a database made before
# churn_0002 still has the foreign keys).
for _table in (Score.__table__, Warning.__table__):
    cast(Table, _table).add_is_dependent_on(cast(Table, Customer.__table__))
