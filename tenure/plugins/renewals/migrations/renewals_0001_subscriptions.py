"""Plans, subscriptions and the reminders sent (one per subscription, end date and offset).

Revision ID: renewals_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db
from sqlalchemy.dialects import postgresql

revision = 'renewals_0001'
down_revision = None
branch_labels = ('renewals',)
depends_on = '0002'


def upgrade() -> None:
    op.create_table('renewals_plans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('reminder_days', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renewals_plans')),
    sa.UniqueConstraint('code', name=op.f('uq_renewals_plans_code')),
    info={'plugin': 'renewals'}
    )
    op.create_table('renewals_subscriptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('auto_renew', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('armed_on', sa.Date(), nullable=False),
    sa.Column('renewed_to_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_renewals_subscriptions_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['renewals_plans.id'], name=op.f('fk_renewals_subscriptions_plan_id_renewals_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renewals_subscriptions')),
    info={'plugin': 'renewals'}
    )
    op.create_index('ix_renewals_subscriptions_customer', 'renewals_subscriptions', ['customer_id'], unique=False)
    op.create_index('ix_renewals_subscriptions_status_ends', 'renewals_subscriptions', ['status', 'ends_on'], unique=False)
    op.create_table('renewals_reminders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('sent_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['renewals_subscriptions.id'], name=op.f('fk_renewals_reminders_subscription_id_renewals_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renewals_reminders')),
    sa.UniqueConstraint('subscription_id', 'ends_on', 'offset_days', name=op.f('uq_renewals_reminders_subscription_id_ends_on_offset_days')),
    info={'plugin': 'renewals'}
    )


def downgrade() -> None:
    op.drop_table('renewals_reminders')
    op.drop_index('ix_renewals_subscriptions_status_ends', table_name='renewals_subscriptions')
    op.drop_index('ix_renewals_subscriptions_customer', table_name='renewals_subscriptions')
    op.drop_table('renewals_subscriptions')
    op.drop_table('renewals_plans')
