"""outbox: index on (status, primary_address) for the mailer's per-recipient order

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 23:00:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_status_address', 'outbox', ['status', 'primary_address'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_status_address', table_name='outbox')
