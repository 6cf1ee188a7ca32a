"""ledger and quarantine: UIDVALIDITY and UID as 64-bit integers (IMAP allows up to 2^32-1)

PostgreSQL's INTEGER stops at 2^31-1: a mailbox whose UIDs passed it could not record a
mail, not even in quarantine. SQLite's integers are 64-bit already; its tables are rebuilt
so that the declared types match the models.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

COLUMNS = ('uidvalidity', 'uid')


def upgrade() -> None:
    for table in ('ledgerentry', 'quarantine'):
        with op.batch_alter_table(table) as batch_op:
            for column in COLUMNS:
                batch_op.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(),
                                      existing_nullable=True)


def downgrade() -> None:
    for table in ('ledgerentry', 'quarantine'):
        with op.batch_alter_table(table) as batch_op:
            for column in COLUMNS:
                batch_op.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(),
                                      existing_nullable=True)
