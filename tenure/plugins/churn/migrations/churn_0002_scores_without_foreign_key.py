"""Score and warning rows without a foreign key to customers: every insert checked it by
locking the customer's row (a write to every customer row on a first full rescore). Both are
written by the rescore; the merge handler deletes the merged customer's score and moves their
warnings to the survivor before the merged customer goes.

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


TABLES = ('churn_scores', 'churn_warnings')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'fk_{table}_customer_id_customers'), type_='foreignkey')


def downgrade() -> None:
    for table in TABLES:
        op.execute(sa.text(f"DELETE FROM {table} WHERE customer_id NOT IN (SELECT id FROM customers)"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(batch_op.f(f'fk_{table}_customer_id_customers'), 'customers',
                                        ['customer_id'], ['id'], ondelete='CASCADE')
