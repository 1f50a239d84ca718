"""The visits plugin's first revision: its table. Starts the plugin's own branch (label
"visits") and depends on the core's tables.

Revision ID: visits_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db

revision = 'visits_0001'
down_revision = None
branch_labels = ('visits',)
depends_on = '0003'


def upgrade() -> None:
    op.create_table('visits_visits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('venue', sa.String(length=100), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('visited_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('thanked_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_visits_visits_customer_id_customers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visits_visits')),
    sa.UniqueConstraint('venue', 'external_id', name=op.f('uq_visits_visits_venue_external_id')),
    info={'plugin': 'visits'}
    )
    with op.batch_alter_table('visits_visits', schema=None) as batch_op:
        batch_op.create_index('ix_visits_visits_customer_id', ['customer_id', 'visited_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('visits_visits', schema=None) as batch_op:
        batch_op.drop_index('ix_visits_visits_customer_id')
    op.drop_table('visits_visits')
