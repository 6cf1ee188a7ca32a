"""Files travel with the mail: an agent's attachments reach the customer byte for byte (inline
images stay inline), and agent notifications carry the customer's files up to a size."""

from __future__ import annotations

import os
from email.message import EmailMessage
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.pipeline import RawMail, process
from gateway.service import run_service
from store.db import transaction
from store.models import Attachment, Blob, OutboxMail
from tests.conftest import mailbox_table
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import Delivered, SmtpServer
from tests.test_agents import T0, agent_config, flush

MANUAL = b"%PDF-1.7\n" + os.urandom(50_000) + b"\n%%EOF\n"  # binary: every byte must survive
SCREENSHOT = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
LOG = b"line one\r\nline two\x00\xff\n"


def customer_mail(n: str, files: list[tuple[str, str, bytes]]) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Anna <anna@acme.example>"
    mail["To"] = "support@example.com"
    mail["Cc"] = "bert@acme.example"
    mail["Subject"] = "Printer broken"
    mail["Message-ID"] = f"<c-{n}@acme.example>"
    mail.set_content("The printer shows error 42. The log is attached.")
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


def agent_reply(n: str, to: str, number: str, files: list[tuple[str, str, bytes]],
                inline: bytes | None = None) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@example.com>"
    mail["To"] = to
    mail["Subject"] = f"Re: [#{number}] Printer broken"
    mail["Message-ID"] = f"<a-{n}@laptop.example.com>"
    mail.set_content("Please follow the manual, page 3.")
    if inline is not None:
        mail.add_alternative('<p>Please follow the manual, page 3.</p><img src="cid:shot@alice">',
                             subtype="html")
        html = mail.get_payload()[1]
        html.add_related(inline, maintype="image", subtype="png", cid="<shot@alice>",
                         filename="shot.png")
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail.as_bytes()


def files_of(delivered: Delivered) -> dict[str, tuple[str, bytes, str | None]]:
    """Attached and inline files of a delivered mail: name -> (type, bytes, Content-ID)."""
    found: dict[str, tuple[str, bytes, str | None]] = {}
    for part in delivered.message.walk():
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[name] = (part.get_content_type(), payload, part["Content-ID"])
    return found


def relayed(smtp: SmtpServer, address: str) -> list[Delivered]:
    return [d for d in smtp.handler.to(address) if d.message["Auto-Submitted"] == "no"]


async def test_agent_attachment_reaches_the_customer_byte_for_byte_over_imap_and_smtp(
        engine: Engine, smtp: SmtpServer, dovecot: Dovecot, folder: str) -> None:
    config = agent_config(engine, smtp, mailbox=[mailbox_table(dovecot, folder)])
    dovecot.append(customer_mail(folder, [("printer.log", "text/plain", LOG)]), folder=folder)
    await run_service(engine, config, once=True)
    await flush(engine, config)
    (note,) = smtp.handler.to("alice@example.com")
    assert files_of(note)["printer.log"][1] == LOG  # the customer's file, attached for the agent
    number = note.message["Subject"].split("[#")[1].split("]")[0]
    reply = agent_reply(folder, note.message["Reply-To"], number,
                        [("manual.pdf", "application/pdf", MANUAL)], inline=SCREENSHOT)
    dovecot.append(reply, folder=folder)
    await run_service(engine, config, once=True)
    await flush(engine, config)
    (answer,) = relayed(smtp, "anna@acme.example")
    assert "bert@acme.example" in answer.rcpt_tos  # the watcher gets the same mail
    sent = files_of(answer)
    assert sent["manual.pdf"] == ("application/pdf", MANUAL, None)
    kind, data, cid = sent["shot.png"]
    assert (kind, data, cid) == ("image/png", SCREENSHOT, "<shot@alice>")
    related = next(p for p in answer.message.walk() if p.get_content_type() == "multipart/related")
    html = next(p for p in related.iter_parts() if p.get_content_type() == "text/html")
    assert 'src="cid:shot@alice"' in html.get_content()  # shown in place, not as a download
    assert "alice@example.com" not in answer.data.decode("ascii", "replace")
    with transaction(engine) as session:
        stored = session.exec(select(Blob.sha256)).all()
        copies = session.exec(select(Attachment.blob).where(Attachment.filename == "manual.pdf")).all()
    assert len(copies) == 2 and len(set(copies)) == 1  # the relayed copy shares the agent's blob
    assert len(stored) == len(set(stored))


async def _open(engine: Engine, smtp: SmtpServer, files: list[tuple[str, str, bytes]],
                **outbound: Any) -> tuple[Any, str, Delivered]:
    """A ticket with the customer's files; the config, its number and Alice's notification."""
    config = agent_config(engine, smtp, outbound={"message_id_domain": "example.com", **outbound})
    created = process(engine, config, RawMail(customer_mail("x", files), "in"), now=T0)
    assert created.ticket_number is not None
    await flush(engine, config)
    return config, created.ticket_number, smtp.handler.to("alice@example.com")[-1]


async def test_notification_attaches_files_up_to_the_limit_and_lists_the_rest(
        engine: Engine, smtp: SmtpServer) -> None:
    _, _, note = await _open(engine, smtp, [("printer.log", "text/plain", LOG),
                                            ("manual.pdf", "application/pdf", MANUAL)],
                             notify_attach_max_bytes=10_000)
    assert set(files_of(note)) == {"printer.log"}
    text = note.message.get_body(("plain",)).get_content()
    assert "printer.log (" in text and "attached)" in text
    assert "manual.pdf (48 KB, not attached (over the size limit): see the ticket)" in text


async def test_files_over_the_relay_limit_stay_behind_and_the_agent_is_told(
        engine: Engine, smtp: SmtpServer) -> None:
    config, number, note = await _open(engine, smtp, [], relay_max_bytes=10_000)
    reply = agent_reply("big", note.message["Reply-To"], number,
                        [("small.log", "text/plain", LOG), ("manual.pdf", "application/pdf", MANUAL)])
    result = process(engine, config, RawMail(reply, "in"), now=T0)
    assert "manual.pdf (48 KB) not sent to the customer: over outbound.relay_max_bytes" in result.detail
    await flush(engine, config)
    (answer,) = relayed(smtp, "anna@acme.example")
    assert set(files_of(answer)) == {"small.log"}
    told = smtp.handler.to("alice@example.com")[-1].message.get_body(("plain",)).get_content()
    assert "manual.pdf (48 KB) not sent to the customer" in told


async def test_relaying_files_can_be_switched_off(engine: Engine, smtp: SmtpServer) -> None:
    config, number, note = await _open(engine, smtp, [], relay_attachments=False)
    reply = agent_reply("off", note.message["Reply-To"], number,
                        [("manual.pdf", "application/pdf", MANUAL)])
    process(engine, config, RawMail(reply, "in"), now=T0)
    await flush(engine, config)
    (answer,) = relayed(smtp, "anna@acme.example")
    assert files_of(answer) == {}
    assert "Please follow the manual" in answer.message.get_body(("plain",)).get_content()


async def test_an_answer_line_starting_with_from_reaches_the_customer_unchanged(
        engine: Engine, smtp: SmtpServer) -> None:
    config, number, note = await _open(engine, smtp, [])
    body = "Thanks for waiting.\r\nFrom now on the printer prints again.\r\nFrom: the team"
    reply = agent_reply("from", note.message["Reply-To"], number, [])
    reply = reply.replace(b"Please follow the manual, page 3.", body.encode())
    process(engine, config, RawMail(reply, "in"), now=T0)
    await flush(engine, config)
    (answer,) = relayed(smtp, "anna@acme.example")
    text = answer.message.get_body(("plain",)).get_content()
    lines = text.splitlines()
    assert "From now on the printer prints again." in lines and "From: the team" in lines
    assert ">From" not in text


async def test_an_address_outside_ascii_gets_the_same_bytes_over_smtputf8(engine: Engine) -> None:
    server = SmtpServer().start()  # aiosmtpd offers SMTPUTF8
    try:
        config = agent_config(engine, server, outbound={"message_id_domain": "example.com"})
        first = customer_mail("utf8", []).replace(b"Anna <anna@acme.example>",
                                                  "Jörg <jörg@acme.example>".encode())
        created = process(engine, config, RawMail(first, "in"), now=T0)
        assert created.ticket_number is not None
        await flush(engine, config)
        note = server.handler.to("alice@example.com")[-1]
        reply = agent_reply("utf8", note.message["Reply-To"], created.ticket_number, [])
        reply = reply.replace(b"Please follow the manual, page 3.",
                              b"From now on it prints again.")
        process(engine, config, RawMail(reply, "in"), now=T0)
        await flush(engine, config)
        (answer,) = relayed(server, "jörg@acme.example")
    finally:
        server.stop()
    assert answer.rcpt_tos[0] == "jörg@acme.example"
    assert "Jörg <jörg@acme.example>" in answer.data.decode()  # UTF-8 header: no encoded word
    lines = answer.message.get_body(("plain",)).get_content().splitlines()
    assert "From now on it prints again." in lines


async def test_an_address_outside_ascii_waits_for_a_server_with_smtputf8(engine: Engine) -> None:
    server = SmtpServer(smtputf8=False).start()
    try:
        config = agent_config(engine, server, outbound={"message_id_domain": "example.com"})
        first = customer_mail("ascii-only", []).replace(b"Anna <anna@acme.example>",
                                                        "Jörg <jörg@acme.example>".encode())
        process(engine, config, RawMail(first, "in"), now=T0)
        await flush(engine, config)
    finally:
        server.stop()
    assert not server.handler.to("jörg@acme.example")
    assert server.handler.to("alice@example.com")  # the agent's note went out meanwhile
    with transaction(engine) as session:
        ack = session.exec(select(OutboxMail).where(OutboxMail.primary_address == "jörg@acme.example")).one()
        assert ack.status == "pending" and "does not support SMTPUTF8" in ack.last_error
