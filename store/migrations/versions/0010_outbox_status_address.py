"""outbox: index on (status, primary_address) for the mailer's per-recipient order

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:00:00
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_status_address', 'outbox', ['status', 'primary_address'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_outbox_status_address', table_name='outbox')
