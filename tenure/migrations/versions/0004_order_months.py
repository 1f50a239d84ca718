"""The order months rollup (core.services.order_months), filled from the orders already there.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The rollup as of this revision, computed from the orders in one statement (a copy, so that
# the revision keeps working whatever the service module becomes).
KEY = {
    "sqlite": ("substr(placed_at, 1, 7)",
               "(CAST(substr(k, 1, 4) AS INTEGER) * 12 + CAST(substr(k, 6, 2) AS INTEGER) - 1)"),
    "postgresql": ("date_trunc('month', placed_at AT TIME ZONE 'UTC')",
                   "(CAST(EXTRACT(YEAR FROM k) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM k) AS INTEGER) - 1)"),
}
BACKFILL = """
INSERT INTO order_months (customer_id, month, orders, revenue, prev_month, next_month, first_month)
SELECT cid, mo, n, rev, LAG(mo) OVER w, LEAD(mo) OVER w, MIN(mo) OVER (PARTITION BY cid)
FROM (SELECT cid, {month} AS mo, n, rev
      FROM (SELECT customer_id AS cid, {key} AS k, COUNT(*) AS n, SUM(amount - refunded_amount) AS rev
            FROM orders WHERE status <> 'cancelled' GROUP BY 1, 2) a) g
WINDOW w AS (PARTITION BY cid ORDER BY mo)
ORDER BY cid, mo"""


def upgrade() -> None:
    op.create_table('order_months',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('orders', sa.Integer(), nullable=False),
    sa.Column('revenue', sa.BigInteger(), nullable=False),
    sa.Column('prev_month', sa.Integer(), nullable=True),
    sa.Column('next_month', sa.Integer(), nullable=True),
    sa.Column('first_month', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_order_months_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'month', name=op.f('pk_order_months'))
    )
    dialect = op.get_bind().dialect.name
    key, month = KEY["sqlite" if dialect == "sqlite" else "postgresql"]
    if dialect == "postgresql":
        op.execute("SET LOCAL work_mem = '256MB'")
    op.execute(BACKFILL.format(key=key, month=month))


def downgrade() -> None:
    op.drop_table('order_months')
