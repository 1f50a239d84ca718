"""Score rows without a foreign key to customers: every insert of a score row checked it by
locking the customer's row (a write to every customer row on a first full rescore). Scores
are derived data: the merge handler deletes the merged customer's row and a full rescore
deletes rows of customers that no longer exist.

Revision ID: churn_0002
Revises: churn_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'churn_0002'
down_revision = 'churn_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_churn_scores_customer_id_customers'), type_='foreignkey')


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM churn_scores WHERE customer_id NOT IN (SELECT id FROM customers)"))
    with op.batch_alter_table('churn_scores', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_churn_scores_customer_id_customers'), 'customers',
                                    ['customer_id'], ['id'], ondelete='CASCADE')
