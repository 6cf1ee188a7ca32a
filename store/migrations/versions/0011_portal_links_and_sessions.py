"""customer portal: sign-in links and sessions

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 23:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('portal_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('next_path', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_link_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_link_client'), ['client'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_link_created_at'), ['created_at'], unique=False)

    op.create_table('portal_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('csrf', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_session_address'), ['address'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_session_address'))
    op.drop_table('portal_session')
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_link_created_at'))
        batch_op.drop_index(batch_op.f('ix_portal_link_client'))
        batch_op.drop_index(batch_op.f('ix_portal_link_address'))
    op.drop_table('portal_link')
