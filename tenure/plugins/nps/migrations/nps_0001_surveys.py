"""Surveys, invitations (one per survey and cause) and responses (one per invitation).

Revision ID: nps_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db
from sqlalchemy.dialects import postgresql

revision = 'nps_0001'
down_revision = None
branch_labels = ('nps',)
depends_on = '0002'


def upgrade() -> None:
    op.create_table('nps_surveys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('question', sa.String(length=500), nullable=False),
    sa.Column('scale', sa.String(length=10), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('delay_days', sa.Integer(), nullable=False),
    sa.Column('every_days', sa.Integer(), nullable=True),
    sa.Column('segment_tag', sa.String(length=50), nullable=True),
    sa.Column('throttle_days', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_surveys')),
    info={'plugin': 'nps'}
    )
    op.create_table('nps_invitations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('survey_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cause', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('skip_reason', sa.String(length=300), nullable=True),
    sa.Column('due_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_nps_invitations_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['nps_surveys.id'], name=op.f('fk_nps_invitations_survey_id_nps_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_invitations')),
    sa.UniqueConstraint('survey_id', 'cause', name=op.f('uq_nps_invitations_survey_id_cause')),
    info={'plugin': 'nps'}
    )
    op.create_index('ix_nps_invitations_customer_sent', 'nps_invitations', ['customer_id', 'sent_at'], unique=False)
    op.create_index('ix_nps_invitations_status_due', 'nps_invitations', ['status', 'due_at'], unique=False)
    op.create_table('nps_responses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('invitation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('survey_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scale', sa.String(length=10), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('answered_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_nps_responses_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['invitation_id'], ['nps_invitations.id'], name=op.f('fk_nps_responses_invitation_id_nps_invitations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['nps_surveys.id'], name=op.f('fk_nps_responses_survey_id_nps_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nps_responses')),
    sa.UniqueConstraint('invitation_id', name=op.f('uq_nps_responses_invitation_id')),
    info={'plugin': 'nps'}
    )
    op.create_index('ix_nps_responses_answered', 'nps_responses', ['answered_at'], unique=False)
    op.create_index('ix_nps_responses_customer_answered', 'nps_responses', ['customer_id', 'answered_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_nps_responses_customer_answered', table_name='nps_responses')
    op.drop_index('ix_nps_responses_answered', table_name='nps_responses')
    op.drop_table('nps_responses')
    op.drop_index('ix_nps_invitations_status_due', table_name='nps_invitations')
    op.drop_index('ix_nps_invitations_customer_sent', table_name='nps_invitations')
    op.drop_table('nps_invitations')
    op.drop_table('nps_surveys')
