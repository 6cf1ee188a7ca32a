"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

from store import blobs
from store.db import MIGRATIONS, make_engine, migrate, transaction
from store.models import Attachment, Blob, utcnow


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_attachment_bytes_move_into_blobs_once_per_content(db_url: str) -> None:
    """0013 moves every attachment's bytes into a blob; equal files share one, none is lost."""
    engine = make_engine(db_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0012")
        conn.execute(text("INSERT INTO ticket (number, subject, status, priority, channel, type, "
                          "source, categories, tags, created_at, updated_at) VALUES ('T1', '', "
                          "'new', 5, 'support', 'mail', 'email', '[]', '[]', :now, :now)"),
                     {"now": utcnow()})
        conn.execute(text(
            "INSERT INTO message (ticket_id, direction, kind, public, message_id, message_key, "
            "content_hash, from_address, from_name, from_raw, \"to\", cc, subject, text, html, "
            "classification, defects, delivery_status, created_at) VALUES (1, 'in', 'customer', "
            "true, 'm@x', 'k', '', '', '', '', '[]', '[]', '', '', '', '', '', '[]', :now)"),
            {"now": utcnow()})
        for name, data in (("a.pdf", b"%PDF same"), ("b.pdf", b"%PDF same"), ("c.txt", b"other")):
            conn.execute(text("INSERT INTO attachment (message_id, filename, content_type, size, "
                              "data) VALUES (1, :name, 'x/y', :size, :data)"),
                         {"name": name, "size": len(data), "data": data})
    migrate(engine)
    with transaction(engine) as session:
        files = session.exec(select(Attachment).order_by(col(Attachment.id))).all()
        contents = [blobs.read(session, item.blob) for item in files]
        count = len(session.exec(select(Blob.sha256)).all())
    engine.dispose()
    assert contents == [b"%PDF same", b"%PDF same", b"other"]
    assert count == 2
