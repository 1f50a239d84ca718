"""loyalty ledger, lots, earn rules and rewards

Revision ID: loyalty_0001
Revises:
Create Date: 2026-11-24 08:53:19.585170
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db
from sqlalchemy.dialects import postgresql

revision = 'loyalty_0001'
down_revision = None
branch_labels = ('loyalty',)
depends_on = '0001'


def upgrade() -> None:
    op.create_table('loyalty_earn_rules',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('per_amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('percent', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=50), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=True),
    sa.Column('trigger', sa.String(length=20), nullable=True),
    sa.Column('starts_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_earn_rules')),
    info={'plugin': 'loyalty'}
    )
    op.create_table('loyalty_rewards',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=False),
    sa.Column('cost', sa.BigInteger(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=True),
    sa.Column('per_customer_limit', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('stock IS NULL OR stock >= 0', name=op.f('ck_loyalty_rewards_stock_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_rewards')),
    info={'plugin': 'loyalty'}
    )
    op.create_table('loyalty_accounts',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.BigInteger(), nullable=False),
    sa.Column('lifetime_earned', sa.BigInteger(), nullable=False),
    sa.Column('shortfall', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_loyalty_accounts_balance_not_negative')),
    sa.CheckConstraint('pending >= 0', name=op.f('ck_loyalty_accounts_pending_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_accounts_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_loyalty_accounts')),
    info={'plugin': 'loyalty'}
    )
    op.create_table('loyalty_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('qualifying', sa.BigInteger(), nullable=False),
    sa.Column('pending', sa.Boolean(), nullable=False),
    sa.Column('remaining', sa.BigInteger(), nullable=False),
    sa.Column('shortfall', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('reward_id', sa.BigInteger(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=250), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('available_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('remaining >= 0', name=op.f('ck_loyalty_entries_remaining_not_negative')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_loyalty_entries_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loyalty_entries')),
    sa.UniqueConstraint('customer_id', 'idempotency_key', name=op.f('uq_loyalty_entries_customer_id_idempotency_key')),
    info={'plugin': 'loyalty'}
    )
    with op.batch_alter_table('loyalty_entries', schema=None) as batch_op:
        batch_op.create_index('ix_loyalty_entries_available', ['pending', 'available_at'], unique=False)
        batch_op.create_index('ix_loyalty_entries_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_loyalty_entries_lots', ['customer_id', 'pending', 'remaining'], unique=False)
        batch_op.create_index('ix_loyalty_entries_order', ['order_id'], unique=False)

    op.create_table('loyalty_draws',
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_draws_entry_id_loyalty_entries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lot_id'], ['loyalty_entries.id'], name=op.f('fk_loyalty_draws_lot_id_loyalty_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('entry_id', 'lot_id', name=op.f('pk_loyalty_draws')),
    info={'plugin': 'loyalty'}
    )
    with op.batch_alter_table('loyalty_draws', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loyalty_draws_lot_id'), ['lot_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('loyalty_draws', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loyalty_draws_lot_id'))

    op.drop_table('loyalty_draws')
    with op.batch_alter_table('loyalty_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_loyalty_entries_order')
        batch_op.drop_index('ix_loyalty_entries_lots')
        batch_op.drop_index('ix_loyalty_entries_customer_created')
        batch_op.drop_index('ix_loyalty_entries_available')

    op.drop_table('loyalty_entries')
    op.drop_table('loyalty_accounts')
    op.drop_table('loyalty_rewards')
    op.drop_table('loyalty_earn_rules')
