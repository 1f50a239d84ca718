"""tiers and memberships

Revision ID: tiers_0001
Revises:
Create Date: 2026-11-24 08:59:20.478501
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db
from sqlalchemy.dialects import postgresql

revision = 'tiers_0001'
down_revision = None
branch_labels = ('tiers',)
depends_on = '0001'


def upgrade() -> None:
    op.create_table('tiers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('min_spend', sa.BigInteger(), nullable=True),
    sa.Column('min_orders', sa.Integer(), nullable=True),
    sa.Column('min_points', sa.BigInteger(), nullable=True),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('require_all', sa.Boolean(), nullable=False),
    sa.Column('points_multiplier', sa.Integer(), nullable=False),
    sa.Column('discount_percent', sa.Integer(), nullable=False),
    sa.Column('perks', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('grace_days', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tiers')),
    sa.UniqueConstraint('name', name=op.f('uq_tiers_name')),
    sa.UniqueConstraint('rank', name=op.f('uq_tiers_rank')),
    info={'plugin': 'tiers'}
    )
    op.create_table('tier_memberships',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tier_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('since', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('downgrade_on', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('manual', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('updated_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tier_memberships_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tier_id'], ['tiers.id'], name=op.f('fk_tier_memberships_tier_id_tiers')),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_tier_memberships')),
    info={'plugin': 'tiers'}
    )
    with op.batch_alter_table('tier_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tier_memberships_tier_id'), ['tier_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tier_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tier_memberships_tier_id'))

    op.drop_table('tier_memberships')
    op.drop_table('tiers')
