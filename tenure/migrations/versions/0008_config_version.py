"""The configuration token: a one-row table whose random token every change of
configuration (tiers, earn rules, surveys, webhook subscriptions) replaces, so that each
process can keep that configuration between transactions and know when it went stale.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import tenure.core.db

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'config_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token', sa.String(length=32), nullable=False),
        sa.Column('changed_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_config_version')),
    )
    op.bulk_insert(table, [{'id': 1, 'token': uuid.uuid4().hex, 'changed_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('config_version')
