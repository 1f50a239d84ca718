"""The predictions plugin's tables: each fit of the models, and each customer's figures.

Revision ID: predictions_0001
Revises: 
Create Date: 2026-12-02 21:14:46.471890
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import tenure.core.db
from sqlalchemy.dialects import postgresql

revision = 'predictions_0001'
down_revision = None
branch_labels = ('predictions',)
depends_on = '0005'


def upgrade() -> None:
    op.create_table('predictions_customers',
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('fit_id', sa.BigInteger(), nullable=False),
    sa.Column('occasions', sa.Integer(), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=False),
    sa.Column('age_days', sa.Integer(), nullable=False),
    sa.Column('mean_value', sa.Float(), nullable=True),
    sa.Column('probability_active', sa.Float(), nullable=False),
    sa.Column('expected_orders', sa.Float(), nullable=False),
    sa.Column('predicted_value', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('customer_id', name=op.f('pk_predictions_customers')),
    info={'plugin': 'predictions'}
    )
    op.create_table('predictions_fits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('fitted_at', tenure.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('repeat_buyers', sa.Integer(), nullable=False),
    sa.Column('occasions', sa.BigInteger(), nullable=False),
    sa.Column('r', sa.Float(), nullable=True),
    sa.Column('alpha', sa.Float(), nullable=True),
    sa.Column('a', sa.Float(), nullable=True),
    sa.Column('b', sa.Float(), nullable=True),
    sa.Column('bgnbd_log_likelihood', sa.Float(), nullable=True),
    sa.Column('p', sa.Float(), nullable=True),
    sa.Column('q', sa.Float(), nullable=True),
    sa.Column('v', sa.Float(), nullable=True),
    sa.Column('gamma_gamma_log_likelihood', sa.Float(), nullable=True),
    sa.Column('holdout', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('basis', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions_fits')),
    sa.UniqueConstraint('as_of', name=op.f('uq_predictions_fits_as_of')),
    info={'plugin': 'predictions'}
    )


def downgrade() -> None:
    op.drop_table('predictions_fits')
    op.drop_table('predictions_customers')
