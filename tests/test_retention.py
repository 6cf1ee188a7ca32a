"""[retention]: closed tickets, resolved quarantine entries, sent outbox rows and raw originals
purged after their days, by `ticketgate purge` and on the service's schedule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from gateway.cli import main
from gateway.outbound.flush import flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.pipeline import RawMail, process, quarantine
from gateway.timers.retention import RetentionWorker, purge_once
from store import blobs
from store.db import transaction
from store.models import (
    Attachment,
    AuditEntry,
    Blob,
    Message,
    OutboxMail,
    QuarantinedMail,
    Ticket,
    Watcher,
)
from tests.servers.smtp import SmtpServer
from tests.test_agents import agent_config

OLD = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
LOGO = b"\x89PNG shared logo" * 100


def _mail(n: str, subject: str) -> bytes:
    return (f"From: Kim <kim@acme.example>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <r-{n}@acme.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n"
            f"Content-Type: text/plain\r\n\r\nAbout {subject}.\r\n--X\r\n"
            "Content-Type: image/png; name=logo.png\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            ).encode() + LOGO + b"\r\n--X--\r\n"


async def _stored(engine: Engine, smtp: SmtpServer, **retention: Any) -> tuple[Any, dict[str, str]]:
    """An old closed ticket and an open one sharing a logo, sent mail, quarantined mails."""
    config = agent_config(engine, smtp, retention=retention)
    numbers = {name: process(engine, config, RawMail(_mail(name, name), "in"), now=OLD).ticket_number
               or "" for name in ("closed", "open")}
    assert config.smtp is not None
    await flush_outbox_once(engine, config, lambda: SmtpSender(config.smtp), Renderer(), OLD)  # type: ignore[arg-type]
    with transaction(engine) as session:
        closed = session.exec(select(Ticket).where(Ticket.number == numbers["closed"])).one()
        closed.status, closed.closed_at, closed.updated_at = "closed", OLD, OLD
    for uid, resolved in ((1, OLD), (2, None)):
        quarantine(engine, RawMail(b"junk", "in", uidvalidity=1, uid=uid), "unreadable", f"q{uid}@x")
        with transaction(engine) as session:
            entry = session.exec(select(QuarantinedMail).where(QuarantinedMail.uid == uid)).one()
            entry.resolved_at, entry.created_at = resolved, OLD
    return config, numbers


def _count(engine: Engine, model: Any, *where: Any) -> int:
    with transaction(engine) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


async def test_purge_removes_closed_tickets_resolved_quarantine_and_sent_outbox(
        engine: Engine, smtp: SmtpServer) -> None:
    config, numbers = await _stored(engine, smtp, closed_ticket_days=30,
                                    quarantine_resolved_days=30, outbox_sent_days=30)
    now = OLD + timedelta(days=31)
    before = (_count(engine, Ticket), _count(engine, Message), _count(engine, OutboxMail))
    dry = purge_once(engine, config, now, dry_run=True)
    assert dry["ticket"] == 1 and dry["quarantine"] == 1
    assert (_count(engine, Ticket), _count(engine, Message), _count(engine, OutboxMail)) == before
    done = purge_once(engine, config, now)
    assert done == dry
    with transaction(engine) as session:
        assert session.exec(select(Ticket.number)).all() == [numbers["open"]]
        open_id = session.exec(select(Ticket.id)).one()
        assert {m.ticket_id for m in session.exec(select(Message)).all()} == {open_id}
        assert session.exec(select(Watcher.ticket_id)).all() == [open_id]
        files = session.exec(select(Attachment)).all()  # the open ticket's (and its notes' copies)
        assert {session.get(Message, f.message_id).ticket_id for f in files} == {open_id}  # type: ignore[union-attr]
        assert blobs.read(session, files[0].blob) == LOGO  # shared: kept for the open ticket
        assert session.exec(select(OutboxMail)).all() == []  # all sent long ago
        assert [q.uid for q in session.exec(select(QuarantinedMail)).all()] == [2]  # unresolved stays
        (audit,) = session.exec(select(AuditEntry)).all()
        assert audit.action == "purge" and "1 ticket" in audit.detail
    assert purge_once(engine, config, now) == {}  # nothing left to do


async def test_purge_drops_old_originals_and_their_blobs_only(engine: Engine, smtp: SmtpServer) -> None:
    config, _ = await _stored(engine, smtp, originals_days=7)
    assert _count(engine, Message, Message.original.is_not(None)) == 2  # type: ignore[union-attr]
    assert purge_once(engine, config, OLD + timedelta(days=6)) == {}
    done = purge_once(engine, config, OLD + timedelta(days=8))
    assert done["message.original"] == 2 and done["blob"] == 2
    assert _count(engine, Message, Message.original.is_not(None)) == 0  # type: ignore[union-attr]
    assert _count(engine, Ticket) == 2 and _count(engine, Blob) == 1  # the logo stays


def _config_file(tmp_path: Path, engine: Engine, retention: str) -> Path:
    path = tmp_path / "config.toml"
    url = engine.url.render_as_string(hide_password=False)
    path.write_text(f'[database]\nurl = "{url}"\n[[channel]]\nname = "support"\n'
                    f'address = "support@example.com"\n{retention}', encoding="utf-8")
    return path


async def test_purge_command_dry_run_then_purge(engine: Engine, smtp: SmtpServer, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    await _stored(engine, smtp, closed_ticket_days=30)
    config = _config_file(tmp_path, engine, "[retention]\nclosed_ticket_days = 30\n")
    capsys.readouterr()
    assert main(["--config", str(config), "purge", "--dry-run"]) == 0
    assert "ticket\t1\twould be purged" in capsys.readouterr().out
    assert _count(engine, Ticket) == 2
    assert main(["--config", str(config), "purge"]) == 0
    assert "ticket\t1\tpurged" in capsys.readouterr().out and _count(engine, Ticket) == 1
    off = _config_file(tmp_path, engine, "")
    assert main(["--config", str(off), "purge"]) == 1
    assert "no [retention] days configured" in capsys.readouterr().err


async def test_the_service_purges_on_its_schedule(engine: Engine, smtp: SmtpServer) -> None:
    config, _ = await _stored(engine, smtp, closed_ticket_days=30, interval_minutes=60)
    worker = RetentionWorker(engine, config, lambda: OLD + timedelta(days=31))
    stop = asyncio.Event()
    task = asyncio.ensure_future(worker.run(stop))
    await asyncio.wait_for(worker.passed.wait(), 30)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert _count(engine, Ticket) == 1 and _count(engine, AuditEntry) == 1


def test_retention_config_rejects_negative_days() -> None:
    from gateway.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"retention.closed_ticket_days: .* greater than or equal to 0"):
        parse_config({"retention": {"closed_ticket_days": -1}}, "<test>")
