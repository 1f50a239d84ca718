"""Churn scores, warnings, rules, saved segments and quintile bounds.

Revision ID: churn_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db
from sqlalchemy.dialects import postgresql

revision = 'churn_0001'
down_revision = None
branch_labels = ('churn',)
depends_on = '0002'


def upgrade() -> None:
    op.create_table('churn_cutpoints',
    sa.Column('metric', sa.String(length=20), nullable=False),
    sa.Column('bounds', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('computed_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('metric', name=op.f('pk_churn_cutpoints')),
    info={'plugin': 'churn'}
    )
    op.create_table('churn_rules',
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('updated_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_churn_rules')),
    info={'plugin': 'churn'}
    )
    op.create_table('churn_segments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('filter', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_churn_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_churn_segments_name')),
    info={'plugin': 'churn'}
    )
    op.create_table('churn_scores',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=True),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('monetary', sa.BigInteger(), nullable=False),
    sa.Column('r', sa.Integer(), nullable=True),
    sa.Column('f', sa.Integer(), nullable=True),
    sa.Column('m', sa.Integer(), nullable=True),
    sa.Column('segment', sa.String(length=20), nullable=True),
    sa.Column('stage', sa.String(length=20), nullable=True),
    sa.Column('usual_gap_days', sa.Integer(), nullable=True),
    sa.Column('interactions_recent', sa.Integer(), nullable=False),
    sa.Column('interactions_previous', sa.Integer(), nullable=False),
    sa.Column('complaints', sa.Integer(), nullable=False),
    sa.Column('cancellations', sa.Integer(), nullable=False),
    sa.Column('fired', sa.Integer(), nullable=False),
    sa.Column('health', sa.Integer(), nullable=False),
    sa.Column('scored_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_churn_scores_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_churn_scores')),
    info={'plugin': 'churn'},
    postgresql_with={'fillfactor': 70}
    )

    op.create_table('churn_warnings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('fired', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('since', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('followed_up', sa.Boolean(), nullable=False),
    sa.Column('task_id', sa.BigInteger(), nullable=True),
    sa.Column('resolved_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('came_back', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_churn_warnings_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_churn_warnings')),
    info={'plugin': 'churn'}
    )
    with op.batch_alter_table('churn_warnings', schema=None) as batch_op:
        batch_op.create_index('ix_churn_warnings_since', ['since'], unique=False)
        batch_op.create_index('ix_churn_warnings_status_score', ['status', 'score', 'id'], unique=False)
        batch_op.create_index('uq_churn_warnings_open', ['customer_id'], unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))



def downgrade() -> None:
    with op.batch_alter_table('churn_warnings', schema=None) as batch_op:
        batch_op.drop_index('uq_churn_warnings_open', sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_churn_warnings_status_score')
        batch_op.drop_index('ix_churn_warnings_since')

    op.drop_table('churn_warnings')
    op.drop_table('churn_scores')
    op.drop_table('churn_segments')
    op.drop_table('churn_rules')
    op.drop_table('churn_cutpoints')
