"""The mailer's own serialiser writes what the stdlib generator writes, From lines untouched."""

from __future__ import annotations

import json
from email.generator import BytesGenerator
from email.message import Message as MimeMessage
from io import BytesIO

import pytest
from aiosmtplib.email import extract_recipients, extract_sender

from gateway.outbound.compose import Composed, compose
from gateway.outbound.files import File
from gateway.outbound.notify import ticket_context
from gateway.outbound.render import Renderer
from gateway.outbound.wire import wire_bytes
from store.models import Attachment, Message, OutboxMail, Ticket
from tests.conftest import make_config

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _generator(mail: MimeMessage) -> bytes:
    buffer = BytesIO()
    policy = mail.policy.clone(linesep="\r\n", cte_type="8bit", mangle_from_=False)
    BytesGenerator(buffer, policy=policy).flatten(mail)
    return buffer.getvalue()


def _composed(language: str, name: str, subject: str, text: str,
              files: list[tuple[str, str, str | None]]) -> Composed:
    config = make_config()
    ticket = Ticket(id=1, number="T20261130.0001", subject=subject, channel="support")
    context = ticket_context(config, ticket, language)
    context["recipient"] = {"address": "anna@acme.example", "name": name}
    context["message"] = {"author": "Alice Agent", "text": text, "subject": subject}
    context["agent"] = {"display_name": "Alice Agent"}
    context["_meta"] = {"auto_submitted": "no", "reply_to": "support@example.com",
                        "from_name": "ACME Support – Team Süd", "from_address": "support@example.com"}
    row = OutboxMail(id=1, ticket_id=1, message_row=1, template="customer/agent_reply",
                     language=language, audience="customer",
                     recipients=json.dumps([{"address": "anna@acme.example", "name": name,
                                             "kind": "to"},
                                            {"address": "bert@acme.example", "name": "", "kind": "cc"}]),
                     context=json.dumps(context, ensure_ascii=False))
    message = Message(id=1, ticket_id=1, message_id="m1@example.com", message_key="k",
                      in_reply_to="c-1@acme.example", references="c-0@acme.example c-1@acme.example")
    attached = [File(Attachment(id=n, message_id=1, filename=filename, content_type=ctype, size=len(PNG),
                                content_id=cid, blob="x"), PNG)
                for n, (filename, ctype, cid) in enumerate(files)]
    return compose(row, message, ticket, Renderer(), attached)


@pytest.mark.parametrize(("language", "name", "subject", "files"), [
    ("en", "Anna", "Printer broken", []),
    ("de", "Jörg Müller-Lüdenscheidt", "Drucker druckt nicht – seit Montag früh, schon wieder, "
                                       "obwohl der Techniker da war", []),
    ("en", "Anna", "A subject that is long enough to be folded over more than one line of the "
                   "header block, in plain ASCII", [("manual.pdf", "application/pdf", None)]),
    ("de", "Anna", "Bild", [("screenshot.png", "image/png", "shot@alice"),
                            ("Bestellübersicht März 2026 (endgültig, bitte prüfen).pdf",
                             "application/pdf", None)]),
])
def test_the_bytes_are_the_generators(language: str, name: str, subject: str,
                                      files: list[tuple[str, str, str | None]]) -> None:
    composed = _composed(language, name, subject, "Thanks.\nFrom now on it works.\n\nAlice", files)
    assert wire_bytes(composed.mail) == _generator(composed.mail)
    # the envelope compose knows is the one the headers give
    assert composed.sender == extract_sender(composed.mail) == "support@example.com"
    assert composed.recipients == extract_recipients(composed.mail) == ["anna@acme.example",
                                                                       "bert@acme.example"]


def test_a_from_line_is_not_escaped() -> None:
    wire = wire_bytes(_composed("en", "Anna", "Printer", "Thanks.\nFrom now on it works.", []).mail)
    assert b"\r\nFrom now on it works." in wire and b">From" not in wire


def test_a_mail_of_another_policy_goes_through_the_generator() -> None:
    from email.message import EmailMessage
    mail = EmailMessage()
    mail["Subject"] = "Grüße"
    mail.set_content("From here on: UTF-8 text, ümlauts.\n")
    assert wire_bytes(mail) == _generator(mail)


def test_a_generated_mail_to_an_address_outside_ascii_keeps_it_readable() -> None:
    from email.message import EmailMessage

    from gateway.outbound.smtp import outgoing
    mail = EmailMessage()
    mail["From"] = "support@example.com"
    mail["To"] = "jörg@acme.example"
    mail["Subject"] = "Your sign-in link"
    mail.set_content("From here on: the link.\n")
    wire = outgoing(mail)
    assert not wire.plain and wire.recipients == ["jörg@acme.example"]
    assert "\r\nTo: jörg@acme.example\r\n" in wire.data.decode()  # UTF-8, no encoded word
