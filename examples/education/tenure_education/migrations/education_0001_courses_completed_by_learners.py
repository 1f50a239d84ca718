"""The education plugin's first revision: courses completed by learners.

Revision ID: education_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db

revision = 'education_0001'
down_revision = None
branch_labels = ('education',)
depends_on = '0003'


def upgrade() -> None:
    op.create_table('education_completions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('course', sa.String(length=100), nullable=False),
    sa.Column('completed_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('interaction_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_education_completions_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_education_completions')),
    sa.UniqueConstraint('customer_id', 'course', name=op.f('uq_education_completions_customer_id_course')),
    info={'plugin': 'education'}
    )
    with op.batch_alter_table('education_completions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_education_completions_customer_id'), ['customer_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('education_completions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_education_completions_customer_id'))

    op.drop_table('education_completions')
