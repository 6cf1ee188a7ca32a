"""ledger: the target folder's UIDNEXT noted before a COPY (servers without MOVE)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ledgerentry') as batch_op:
        batch_op.add_column(sa.Column('copy_uidnext', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ledgerentry') as batch_op:
        batch_op.drop_column('copy_uidnext')
