"""Score rows keep the time of the customer's last order instead of the days since it: the
day count grew by one for every customer every day, so each nightly rescore rewrote every
row. Days since the last order are counted when read.

Revision ID: churn_0003
Revises: churn_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db

revision = 'churn_0003'
down_revision = 'churn_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_order_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE churn_scores SET last_order_at = "
                       "(SELECT c.last_order_at FROM customers c WHERE c.id = churn_scores.customer_id)"))
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.drop_column('recency_days')


def downgrade() -> None:
    # The day counts are left empty: the next full rescore writes them.
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recency_days', sa.Integer(), nullable=True))
        batch_op.drop_column('last_order_at')
