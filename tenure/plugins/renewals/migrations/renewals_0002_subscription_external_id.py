"""Subscriptions carry the client's own id (``externalId``), unique, so a retried
createSubscription finds the subscription it created the first time.

Revision ID: renewals_0002
Revises: renewals_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'renewals_0002'
down_revision = 'renewals_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('renewals_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_renewals_subscriptions_external_id'), ['external_id'])


def downgrade() -> None:
    with op.batch_alter_table('renewals_subscriptions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_renewals_subscriptions_external_id'), type_='unique')
        batch_op.drop_column('external_id')
