"""Large base64 parts are decoded from the raw bytes, and what is read never changes."""

from __future__ import annotations

import base64
import email
import random

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from gateway.intake.parse import parse_mail
from gateway.intake.spool import MIN_SPOOLED, cut_large_parts
from gateway.pipeline import RawMail, process
from store import blobs
from store.db import transaction
from store.models import Attachment, Message
from store.queries import LARGE_VALUE
from tests.conftest import make_config

HEAD = (b"From: Kunde <kunde@acme.example>\r\nTo: support@example.com\r\nSubject: Logs\r\n"
        b"Message-ID: <spool@acme.example>\r\nMIME-Version: 1.0\r\n")


def _file(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _attached(data: bytes, encoded: bytes | None = None) -> bytes:
    return (HEAD + b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nanbei\r\n--b1\r\n"
            b'Content-Type: application/zip; name="logs.zip"\r\n'
            b'Content-Disposition: attachment; filename="logs.zip"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + (encoded or _b64(data)) + b"--b1--\r\n")


def test_a_large_attachment_is_cut_before_parsing_and_decoded_whole() -> None:
    data = _file(3 * MIN_SPOOLED)
    raw = _attached(data)
    smaller, spool = cut_large_parts(raw)
    assert len(smaller) < 1000 and len(spool.cuts) == 1
    parsed = parse_mail(raw)
    assert [(a.filename, a.data) for a in parsed.attachments] == [("logs.zip", data)]
    assert parsed.text.strip() == "anbei" and not parsed.defects


def test_a_small_attachment_is_left_to_the_parser() -> None:
    raw = _attached(_file(1000))
    assert cut_large_parts(raw)[0] is raw


def test_bad_padding_decodes_as_the_stdlib_decodes_it() -> None:
    encoded = _b64(_file(MIN_SPOOLED + 5))
    encoded = encoded.rstrip(b"=\r\n") + b"\r\n"  # padding lost on the way
    raw = _attached(b"", encoded)
    stdlib = email.message_from_bytes(raw).get_payload()[1].get_payload(decode=True)
    assert parse_mail(raw).attachments[0].data == stdlib


def test_base64_pasted_into_a_text_body_stays_text() -> None:
    pasted = b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(_file(MIN_SPOOLED))
    raw = (HEAD + b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee below:\r\n" + pasted
           + b"--\r\nKunde\r\n")
    assert len(cut_large_parts(raw)[1].cuts) == 1  # cut, then found in the wrong place
    parsed = parse_mail(raw)
    assert parsed.text == email.message_from_bytes(raw).get_payload()
    assert "tgspool" not in parsed.text and not parsed.attachments


def test_a_forwarded_mail_keeps_its_large_attachment() -> None:
    data = _file(2 * MIN_SPOOLED, seed=2)
    inner = _attached(data)
    raw = (HEAD + b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
           b"Content-Type: text/plain\r\n\r\nFYI\r\n--outer\r\n"
           b"Content-Type: message/rfc822\r\n\r\n" + inner + b"--outer--\r\n")
    parsed = parse_mail(raw)
    [forwarded] = parsed.attachments
    assert forwarded.content_type == "message/rfc822" and b"tgspool" not in forwarded.data
    again = email.message_from_bytes(forwarded.data)
    assert again.get_payload()[1].get_payload(decode=True) == data


def test_a_large_attachment_is_stored_byte_for_byte(engine: Engine) -> None:
    data = _file(LARGE_VALUE + 12345, seed=3)
    small = _file(100, seed=4)
    raw = _attached(data).replace(b"--b1--\r\n", b"--b1\r\nContent-Type: image/png\r\n"
                                  b'Content-Disposition: attachment; filename="a.png"\r\n'
                                  b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(small)
                                  + b"--b1--\r\n")
    assert process(engine, make_config(), RawMail(raw, "ingest")).outcome == "created"
    with transaction(engine) as session:
        inbound = session.exec(select(Message.id).where(Message.direction == "in")).one()
        stored = session.exec(select(Attachment).where(Attachment.message_id == inbound)
                              .order_by(col(Attachment.id))).all()
        assert [(a.filename, a.size, blobs.read(session, a.blob)) for a in stored] == [
            ("logs.zip", len(data), data), ("a.png", 100, small)]
