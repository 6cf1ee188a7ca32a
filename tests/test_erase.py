"""`ticketgate erase ADDRESS`: no trace of the person in any table, other people's tickets whole."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.types import String, Text
from sqlmodel import SQLModel, col, select

from gateway.cli import main
from gateway.pipeline import RawMail, process, quarantine
from store import blobs
from store.db import transaction
from store.models import (
    Attachment,
    AuditEntry,
    Blob,
    Contact,
    Message,
    OutboxMail,
    PortalLink,
    PortalSession,
    QuarantinedMail,
    Suppression,
    Ticket,
    Watcher,
)
from tests.servers.smtp import SmtpServer
from tests.test_agents import T0, agent_config, flush

ZOE = "zoe.quandt@erase.example"
TRACES = ("quandt", "zoe.quandt", "zoe quandt")  # address, local part, display name
OTTO_FILE = b"Otto's own notes, nothing about anyone else.\n"


def _mail(n: str, sender: str, subject: str, body: str, headers: str = "",
          attachment: tuple[str, bytes] | None = None) -> bytes:
    head = (f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{n}@mail.example>\r\n{headers}MIME-Version: 1.0\r\n")
    if attachment is None:
        return (head + f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()
    name, data = attachment
    return (head + "Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--X\r\n"
            f"Content-Type: text/plain; name={name}\r\nContent-Disposition: attachment; "
            f"filename={name}\r\n\r\n").encode() + data + b"\r\n--X--\r\n"


async def _history(engine: Engine, smtp: SmtpServer) -> tuple[Any, dict[str, str]]:
    """Zoe's ticket (Otto copied), Otto's ticket (Zoe copied, both write), Otto's own ticket."""
    config = agent_config(engine, smtp, webhook=[{"url": "http://127.0.0.1:9/hook", "secret": "s",
                                                  "events": ["ticket.created", "message.received"]}])
    zoe, otto = f"Zoe Quandt <{ZOE}>", "Otto Normal <otto@keep.example>"
    numbers: dict[str, str] = {}
    numbers["zoe"] = process(engine, config, RawMail(_mail(
        "z1", zoe, "Printer on fire", f"I am Zoe Quandt, reach me at {ZOE}.",
        "Cc: otto@keep.example\r\n", ("zoe-id.txt", b"Passport of Zoe Quandt\n")), "in"),
        now=T0).ticket_number or ""
    await flush(engine, config)
    reply_to = smtp.handler.to("alice@example.com")[-1].message["Reply-To"]
    process(engine, config, RawMail(_mail("a1", "Alice <alice@example.com>",
                                          f"Re: [#{numbers['zoe']}]", "Hi Zoe, it is fixed.")
                                    .replace(b"To: support@example.com", f"To: {reply_to}".encode()),
                                    "in"), now=T0)
    numbers["shared"] = process(engine, config, RawMail(_mail(
        "o1", otto, "Shared issue", "Zoe Quandt asked me to report this.", f"Cc: {zoe}\r\n"),
        "in"), now=T0).ticket_number or ""
    process(engine, config, RawMail(_mail("z2", zoe, "Re: Shared issue", "Me again.",
                                          "In-Reply-To: <o1@mail.example>\r\n"), "in"), now=T0)
    numbers["otto"] = process(engine, config, RawMail(_mail(
        "o2", otto, "Unrelated question", "How do I print double-sided?", "",
        ("otto.txt", OTTO_FILE)), "in"), now=T0).ticket_number or ""
    quarantine(engine, RawMail(_mail("z3", zoe, "broken", "x"), "in", uidvalidity=1, uid=7),
               "test: unreadable", "z3@mail.example")
    with transaction(engine) as session:
        session.add(Suppression(address=ZOE, until=T0, reason=f"hard bounce for {ZOE}"))
        session.add(PortalLink(token_hash="1" * 64, address=ZOE, created_at=T0, expires_at=T0))
        session.add(PortalSession(token_hash="2" * 64, address=ZOE, csrf="c", expires_at=T0))
    await flush(engine, config)
    return config, numbers


def _traces(engine: Engine) -> list[str]:
    """Every text value in every table, and every stored byte, that still names Zoe."""
    found: list[str] = []
    with transaction(engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, String | Text):
                    continue
                for value in session.execute(sa_select(column)).scalars():
                    if value and (any(t in value.lower() for t in TRACES)
                                  or re.search(r"\bzoe\b", value, re.IGNORECASE)):
                        found.append(f"{table.name}.{column.name}: {value[:80]!r}")
        for blob in session.exec(select(Blob)).all():
            data = zlib.decompress(blob.data) if blob.encoding == "zlib" else bytes(blob.data)
            if b"quandt" in data.lower():
                found.append(f"blob {blob.sha256[:12]}")
        found += [f"quarantine {q.id}" for q in session.exec(select(QuarantinedMail)).all()
                  if b"quandt" in bytes(q.raw).lower()]
    return found


def _config_file(tmp_path: Path, engine: Engine) -> Path:
    path = tmp_path / "config.toml"
    url = engine.url.render_as_string(hide_password=False)
    path.write_text(f'[database]\nurl = "{url}"\n[[channel]]\nname = "support"\n'
                    'address = "support@example.com"\n[[agent]]\naddress = "alice@example.com"\n'
                    'name = "alice"\n', encoding="utf-8")
    return path


async def test_erase_leaves_no_trace_and_other_tickets_whole(
        engine: Engine, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, numbers = await _history(engine, smtp)
    before = _traces(engine)
    assert len(before) > 20  # the history really names her all over
    with transaction(engine) as session:
        messages_before = session.exec(select(func.count()).select_from(Message)).one()
        otto_original = session.exec(select(Message.original).where(
            Message.message_id == "o2@mail.example")).one()
    config = _config_file(tmp_path, engine)
    capsys.readouterr()
    assert main(["--config", str(config), "erase", ZOE, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "contact\t1\twould be erased" in dry and _traces(engine) == before  # nothing changed
    assert main(["--config", str(config), "erase", "Zoe.Quandt@Erase.Example"]) == 0
    assert "contact\t1\terased" in capsys.readouterr().out
    assert _traces(engine) == []
    with transaction(engine) as session:
        tickets = {t.number: t for t in session.exec(select(Ticket)).all()}
        assert session.exec(select(func.count()).select_from(Message)).one() == messages_before
        assert session.exec(select(Contact.address).order_by(col(Contact.address))).all() == [
            "otto@keep.example"]
        otto = session.exec(select(Contact).where(Contact.address == "otto@keep.example")).one()
        # Otto's own ticket: untouched, original and file byte for byte
        own = tickets[numbers["otto"]]
        assert own.customer_id == otto.id and own.subject == "Unrelated question"
        kept = session.exec(select(Message).where(Message.message_id == "o2@mail.example")).one()
        assert kept.text == "How do I print double-sided?" and kept.original == otto_original
        (file,) = session.exec(select(Attachment).where(Attachment.message_id == kept.id)).all()
        assert blobs.read(session, file.blob) == OTTO_FILE
        # the shared ticket stays Otto's, his words kept, her name gone
        shared = tickets[numbers["shared"]]
        assert shared.customer_id == otto.id
        said = session.exec(select(Message.text).where(Message.message_id == "o1@mail.example")).one()
        assert said.strip() == "[erased] asked me to report this."
        # her ticket: no customer any more, Otto still watches it, the agent's words kept
        hers = tickets[numbers["zoe"]]
        assert hers.customer_id is None
        watching = session.exec(select(Watcher.address).where(Watcher.ticket_id == hers.id)).all()
        assert "otto@keep.example" in watching and ZOE not in watching
        agent = session.exec(select(Message.text).where(Message.message_id == "a1@mail.example")).one()
        assert agent.startswith("Hi [erased], it is fixed.")
        relayed = session.exec(select(OutboxMail).where(OutboxMail.template == "customer/agent_reply")).one()
        assert [r["address"] for r in json.loads(relayed.recipients)] == ["otto@keep.example"]
        audit = session.exec(select(AuditEntry)).all()
        assert [a.action for a in audit] == ["erase"]
        assert session.exec(select(func.count()).select_from(QuarantinedMail)).one() == 0
        assert session.exec(select(PortalSession)).all() == []  # signed out everywhere
        assert session.exec(select(PortalLink)).all() == []


async def test_erasing_someone_unknown_changes_nothing(
        engine: Engine, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _history(engine, smtp)
    before = _traces(engine)
    config = _config_file(tmp_path, engine)
    capsys.readouterr()
    assert main(["--config", str(config), "erase", "nobody@nowhere.example"]) == 0
    assert capsys.readouterr().out.strip() == "nothing stored about nobody@nowhere.example"
    assert _traces(engine) == before
    assert main(["--config", str(config), "erase", "alice@example.com"]) == 1
    assert "is an agent's or one of our own addresses" in capsys.readouterr().err


async def test_wildcards_in_the_address_are_taken_literally(
        engine: Engine, smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`_` and `%` are LIKE wildcards: erasing z_e... must not touch zoe's tickets."""
    await _history(engine, smtp)
    before = _traces(engine)
    config = _config_file(tmp_path, engine)
    assert main(["--config", str(config), "erase", "zoe_quandt@erase.example"]) == 0
    assert main(["--config", str(config), "erase", "%@erase.example"]) in (0, 1)
    assert _traces(engine) == before
