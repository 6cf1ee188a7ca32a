"""Mail nested deeper than the parser can recurse is stored, its deep parts kept whole."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.intake.nesting import MAX_DEPTH, limit_nesting
from gateway.intake.parse import parse_mail
from gateway.service import run_service
from store import blobs
from store.db import transaction
from store.models import Attachment, LedgerEntry, Message, QuarantinedMail
from tests.conftest import mail, mailbox_table, make_config
from tests.servers.dovecot import Dovecot

NL = b"\r\n"


def head(n: str) -> list[bytes]:
    return [b"From: Kunde <kunde@acme.example>", b"To: support@example.com",
            f"Subject: Deep {n}".encode(), f"Message-ID: <deep-{n}@acme.example>".encode(),
            b"MIME-Version: 1.0"]


def forward_chain(n: str, depth: int) -> bytes:
    """Each level: a multipart with a line of text and the forwarded mail below it."""
    lines = head(n)
    for i in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="fw{i}"'.encode(), b"", f"--fw{i}".encode(),
                  b"Content-Type: text/plain", b"", f"Forward number {i}".encode(), f"--fw{i}".encode(),
                  b"Content-Type: message/rfc822", b"", f"From: p{i}@acme.example".encode(),
                  f"Subject: Fwd {i}".encode(), b"MIME-Version: 1.0"]
    lines += [b"Content-Type: text/plain", b"", b"the innermost words"]
    lines += [f"--fw{i}--".encode() for i in reversed(range(depth))]
    return NL.join(lines) + NL


def nested_multipart(n: str, depth: int) -> bytes:
    lines = head(n)
    for i in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="mp{i}"'.encode(), b"",
                  b"preamble", f"--mp{i}".encode()]
    lines += [b"Content-Type: text/plain", b"", b"the innermost words"]
    lines += [f"--mp{i}--".encode() for i in reversed(range(depth))]
    return NL.join(lines) + NL


def digests(n: str, depth: int) -> bytes:
    """Digests of digests: every second level has no Content-Type header at all."""
    lines = head(n)
    for i in range(depth):
        lines += [f'Content-Type: multipart/digest; boundary="dg{i}"'.encode(), b"", f"--dg{i}".encode(),
                  b"", f"Subject: digest item {i}".encode()]
    lines += [b"Content-Type: text/plain", b"", b"the innermost words"]
    lines += [f"--dg{i}--".encode() for i in reversed(range(depth))]
    return NL.join(lines) + NL


@pytest.mark.parametrize("build", [forward_chain, nested_multipart, digests])
def test_nesting_beyond_the_limit_is_cut_once_and_kept_whole(build: Callable[[str, int], bytes]) -> None:
    raw = build("x", 400)
    _, parts = limit_nesting(raw)
    assert len(parts) == 1 and f"deeper than {MAX_DEPTH} levels" in parts[0].note
    assert b"the innermost words" in parts[0].data  # nothing below the cut is lost
    parsed = parse_mail(raw)  # RecursionError without the cut
    assert parts[0].note in parsed.defects
    assert limit_nesting(build("y", MAX_DEPTH // 2 - 1))[1] == []  # within the limit: untouched


def test_mail_within_the_limit_is_left_byte_for_byte() -> None:
    raw = forward_chain("ok", 10)
    assert limit_nesting(raw) == (raw, [])


async def test_deeply_nested_mails_are_stored_not_quarantined(engine: Engine, dovecot: Dovecot,
                                                              folder: str) -> None:
    config = make_config(mailbox=[mailbox_table(dovecot, folder)])
    dovecot.seed([forward_chain(f"{folder}-fw", 300), nested_multipart(f"{folder}-mp", 1000),
                  mail(f"{folder}-after")], folder=folder)
    await run_service(engine, config, once=True)
    assert dovecot.count(folder=folder) == 0
    with transaction(engine) as session:
        assert session.exec(select(QuarantinedMail)).first() is None
        assert session.exec(select(LedgerEntry.outcome)).all() == ["created"] * 3
        nested = session.exec(select(Message).where(
            Message.message_id == f"deep-{folder}-mp@acme.example")).one()
        (kept,) = session.exec(select(Attachment).where(Attachment.message_id == nested.id)).all()
        kept_data = blobs.read(session, kept.blob)
        chain = session.exec(select(Message).where(
            Message.message_id == f"deep-{folder}-fw@acme.example")).one()
    assert "kept whole as attachment nested-part-1.eml" in nested.defects
    assert (kept.filename, kept.content_type) == ("nested-part-1.eml", "message/rfc822")
    assert kept_data.startswith(f'Content-Type: multipart/mixed; boundary="mp{MAX_DEPTH}"'.encode())
    assert kept_data.endswith(f"--mp{MAX_DEPTH}--".encode())  # the whole part, nothing lost
    assert b"the innermost words" in kept_data
    assert "Forward number 0" in chain.text and "nested-part-1.eml" in chain.defects
