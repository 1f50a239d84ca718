"""The nightly rescore moves the stored figures on instead of counting a year of orders
again: score rows keep when their figures were counted (``figures_at``), events mark the
customers whose orders or interactions changed (``churn_stale``), and each full rescore
leaves a record of the moment and settings it scored at (``churn_runs``). No run is recorded
yet, so the first rescore after this revision counts everything afresh.

Revision ID: churn_0004
Revises: churn_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tenure.core.db

revision = 'churn_0004'
down_revision = 'churn_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('figures_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True))
    op.create_table('churn_stale',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('marked_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_churn_stale')),
    info={'plugin': 'churn'}
    )
    op.create_table('churn_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scored_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('basis', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('recounted', sa.Integer(), nullable=False),
    sa.Column('rewritten', sa.Integer(), nullable=False),
    sa.Column('took_ms', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_churn_runs')),
    info={'plugin': 'churn'}
    )


def downgrade() -> None:
    op.drop_table('churn_runs')
    op.drop_table('churn_stale')
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.drop_column('figures_at')
