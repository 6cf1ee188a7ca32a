"""cap hits: limits that held people or mail back on a ticket

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 19:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cap_hit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('limit', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('maximum', sa.Integer(), nullable=False),
    sa.Column('left_out', sa.Integer(), nullable=False),
    sa.Column('addresses', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cap_hit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cap_hit_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cap_hit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cap_hit_ticket_id'))
    op.drop_table('cap_hit')
