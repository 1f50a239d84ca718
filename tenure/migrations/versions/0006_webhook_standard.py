"""Standard Webhooks: a subscription keeps the secrets it rotated out until they expire; a
delivery attempt records when the next is due and whether it was the last (dead). Secrets
written before take the spec's form, ``whsec_`` and the base64 of the same key bytes, so
their signatures keep the same key.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import base64

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tenure.core.db

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secrets', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('dead', sa.Boolean(), nullable=False, server_default=sa.false()))
    subscriptions = sa.table('webhook_subscriptions', sa.column('id', sa.BigInteger()),
                             sa.column('secret', sa.String()))
    connection = op.get_bind()
    for row in connection.execute(sa.select(subscriptions.c.id, subscriptions.c.secret)).all():
        if not row.secret.startswith('whsec_'):
            secret = 'whsec_' + base64.b64encode(row.secret.encode()).decode()
            connection.execute(subscriptions.update().where(subscriptions.c.id == row.id).values(secret=secret))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('dead')
        batch_op.drop_column('next_attempt_at')
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('previous_secrets')
