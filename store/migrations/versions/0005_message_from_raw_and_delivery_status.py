"""message: the From header as written, and a delivery report's recipients

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('message', sa.Column('from_raw', sa.Text(), nullable=False, server_default=''))
    op.add_column('message', sa.Column('delivery_status', sa.Text(), nullable=False,
                                       server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('message') as batch:
        batch.drop_column('delivery_status')
        batch.drop_column('from_raw')
