"""content-addressed blobs for attachments and raw originals; the audit table

Attachment bytes move into ``blob`` (one row per distinct content, named by SHA-256);
``message.original`` names a mail's raw original; ``audit`` records erasures and purges.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 00:00:00
"""
import hashlib

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_BATCH = 200


def upgrade() -> None:
    op.create_table('blob',
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('encoding', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),  # last: SQLite streams a trailing blob
    sa.PrimaryKeyConstraint('sha256')
    )
    op.create_table('audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # Added in place: recreating message (batch mode) would trip SQLite's foreign keys.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE message ADD COLUMN original VARCHAR(64) '
                   'CONSTRAINT fk_message_original_blob REFERENCES blob (sha256)')
    else:
        op.add_column('message', sa.Column('original', sqlmodel.sql.sqltypes.AutoString(length=64),
                                           nullable=True))
        op.create_foreign_key('fk_message_original_blob', 'message', 'blob', ['original'],
                              ['sha256'])
    op.create_index(op.f('ix_message_original'), 'message', ['original'], unique=False)
    op.add_column('attachment', sa.Column('blob', sqlmodel.sql.sqltypes.AutoString(length=64),
                                          nullable=True))
    _move_attachment_bytes()
    with op.batch_alter_table('attachment') as batch:
        batch.alter_column('blob', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
                           nullable=False)
        batch.drop_column('data')
        batch.create_index(batch.f('ix_attachment_blob'), ['blob'], unique=False)
        batch.create_foreign_key('fk_attachment_blob', 'blob', ['blob'], ['sha256'])


def _move_attachment_bytes() -> None:
    """Each attachment's bytes into a blob, once per distinct content, a batch at a time."""
    conn = op.get_bind()
    attachment = sa.table('attachment', sa.column('id', sa.Integer), sa.column('data', sa.LargeBinary),
                          sa.column('blob', sa.String))
    blob = sa.table('blob', sa.column('sha256', sa.String), sa.column('size', sa.Integer),
                    sa.column('encoding', sa.String), sa.column('data', sa.LargeBinary),
                    sa.column('created_at', sa.DateTime(timezone=True)))
    stored: set[str] = set()
    last = 0
    while True:
        rows = conn.execute(sa.select(attachment.c.id, attachment.c.data)
                            .where(attachment.c.id > last).order_by(attachment.c.id)
                            .limit(_BATCH)).all()
        if not rows:
            return
        for row_id, data in rows:
            data = bytes(data or b"")
            sha = hashlib.sha256(data).hexdigest()
            if sha not in stored:
                conn.execute(blob.insert().values(sha256=sha, size=len(data), encoding='identity',
                                                  data=data, created_at=sa.func.now()))
                stored.add(sha)
            conn.execute(attachment.update().where(attachment.c.id == row_id).values(blob=sha))
            last = row_id


def downgrade() -> None:
    op.add_column('attachment', sa.Column('data', sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE attachment SET data = (SELECT blob.data FROM blob "
                         "WHERE blob.sha256 = attachment.blob)"))
    with op.batch_alter_table('attachment') as batch:
        batch.drop_constraint('fk_attachment_blob', type_='foreignkey')
        batch.drop_index(batch.f('ix_attachment_blob'))
        batch.drop_column('blob')
        batch.alter_column('data', existing_type=sa.LargeBinary(), nullable=False)
    with op.batch_alter_table('message') as batch:
        batch.drop_constraint('fk_message_original_blob', type_='foreignkey')
        batch.drop_index(batch.f('ix_message_original'))
        batch.drop_column('original')
    op.drop_table('audit')
    op.drop_table('blob')
