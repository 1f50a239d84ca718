"""Journeys, their entries (one per customer, journey and trigger occurrence), the steps
each entry ran, who was in a journey's saved segment, the event-log cursor and the events
history wrote.

Revision ID: journeys_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tenure.core.db

revision = 'journeys_0001'
down_revision = None
branch_labels = ('journeys',)
depends_on = '0002'

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('journeys_journeys',
    sa.Column('id', _ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('trigger', sa.String(length=100), nullable=False),
    sa.Column('trigger_params', _JSON, nullable=False),
    sa.Column('conditions', _JSON, nullable=False),
    sa.Column('steps', _JSON, nullable=False),
    sa.Column('exits', _JSON, nullable=False),
    sa.Column('holdout_percent', sa.Integer(), nullable=False),
    sa.Column('conversion_days', sa.Integer(), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=True),
    sa.Column('active_since', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('events_after', sa.BigInteger(), nullable=False),
    sa.Column('dates_through', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journeys_journeys')),
    sa.UniqueConstraint('name', name=op.f('uq_journeys_journeys_name')),
    info={'plugin': 'journeys'}
    )
    op.create_table('journeys_entries',
    sa.Column('id', _ID, nullable=False),
    sa.Column('journey_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.Column('occurrence', sa.String(length=200), nullable=False),
    sa.Column('entered_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('holdout', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('next_step', sa.Integer(), nullable=False),
    sa.Column('due_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('exit_reason', sa.String(length=300), nullable=True),
    sa.Column('finished_at', tenure.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_journeys_entries_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['journey_id'], ['journeys_journeys.id'], name=op.f('fk_journeys_entries_journey_id_journeys_journeys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journeys_entries')),
    sa.UniqueConstraint('journey_id', 'customer_id', 'occurrence', name=op.f('uq_journeys_entries_journey_id_customer_id_occurrence')),
    info={'plugin': 'journeys'}
    )
    op.create_index('ix_journeys_entries_customer', 'journeys_entries', ['customer_id'], unique=False)
    op.create_index('ix_journeys_entries_status_due', 'journeys_entries', ['status', 'due_at'], unique=False)
    op.create_table('journeys_step_runs',
    sa.Column('id', _ID, nullable=False),
    sa.Column('entry_id', _ID, nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('detail', sa.String(length=300), nullable=False),
    sa.Column('ran_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['journeys_entries.id'], name=op.f('fk_journeys_step_runs_entry_id_journeys_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journeys_step_runs')),
    sa.UniqueConstraint('entry_id', 'step', name=op.f('uq_journeys_step_runs_entry_id_step')),
    info={'plugin': 'journeys'}
    )
    op.create_table('journeys_segment_members',
    sa.Column('journey_id', _ID, nullable=False),
    sa.Column('customer_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_journeys_segment_members_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['journey_id'], ['journeys_journeys.id'], name=op.f('fk_journeys_segment_members_journey_id_journeys_journeys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('journey_id', 'customer_id', name=op.f('pk_journeys_segment_members')),
    info={'plugin': 'journeys'}
    )
    op.create_table('journeys_cursor',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_journeys_cursor')),
    info={'plugin': 'journeys'}
    )
    op.create_table('journeys_history_events',
    sa.Column('event_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_journeys_history_events')),
    info={'plugin': 'journeys'}
    )


def downgrade() -> None:
    op.drop_table('journeys_history_events')
    op.drop_table('journeys_cursor')
    op.drop_table('journeys_segment_members')
    op.drop_table('journeys_step_runs')
    op.drop_index('ix_journeys_entries_status_due', table_name='journeys_entries')
    op.drop_index('ix_journeys_entries_customer', table_name='journeys_entries')
    op.drop_table('journeys_entries')
    op.drop_table('journeys_journeys')
