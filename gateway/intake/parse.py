"""Parse stage: raw mail bytes to a ParsedMail; never raises for bad input, records defects."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message

import mailparser

from gateway.intake.addresses import Address
from gateway.intake.attachments import ParsedAttachment, attachment_from_part, extract_uuencoded
from gateway.intake.charsets import decode_bytes, decode_header_text
from gateway.intake.htmltext import html_to_text, sanitize_html
from store.keys import message_key

# mail-parser logs ordinary multipart mail at warning level; its defects reach us as data.
logging.getLogger("mailparser").setLevel(logging.ERROR)

_MSGID = re.compile(r"<([^<>\s]+)>")
_FOLD = re.compile(r"\r?\n")
_BARE_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200})[ \t]*\r?$", re.MULTILINE)


@dataclass
class ParsedMail:
    """Everything later stages need from one mail, already decoded."""

    raw_size: int
    message_id: str
    message_id_synthetic: bool
    subject: str
    from_: Address | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    in_reply_to: list[str]
    references: list[str]
    date: datetime | None
    headers: dict[str, list[str]]
    content_type: str
    text: str
    html: str
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    embedded_message_ids: list[str] = field(default_factory=list)
    delivery_status: list[tuple[str, str]] = field(default_factory=list)  # (recipient, 5.1.1)

    @property
    def sender(self) -> str:
        """The From address, or empty when the mail has none."""
        return self.from_.address if self.from_ else ""

    @property
    def message_key(self) -> str:
        """Fixed-length key of the Message-ID for unique indexes."""
        return message_key(self.message_id)

    def content_hash(self) -> str:
        """Fingerprint of what the mail says, to tell a re-delivery from a reused Message-ID."""
        digest = hashlib.sha256()
        for piece in (self.sender, self.subject, self.header("date"), self.text, self.html):
            digest.update(piece.encode("utf-8", "surrogatepass") + b"\0")
        for item in self.attachments:
            digest.update(hashlib.sha256(item.data).digest())
        return digest.hexdigest()

    def header(self, name: str) -> str:
        """First value of a header, decoded, or empty."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    def thread_ids(self) -> list[str]:
        """Message-IDs this mail refers to, nearest first (In-Reply-To, then References)."""
        seen: dict[str, None] = {}
        # A returned mail inside a delivery report names our mail; an attached mail in an
        # ordinary message (a forward) says nothing about where the new one belongs.
        embedded = self.embedded_message_ids if self.content_type == "multipart/report" else []
        for mid in [*self.in_reply_to, *reversed(self.references), *embedded]:
            seen.setdefault(mid, None)
        return list(seen)


def parse_mail(raw: bytes, sanitize: Callable[[str], str] = sanitize_html) -> ParsedMail:
    """Parse raw bytes; damage becomes defects, not exceptions."""
    raw_in = raw
    raw, defects = repair_header_block(raw)
    try:
        parser = mailparser.MailParser.from_bytes(raw)
        msg: Message = parser.message
        for entry in parser.defects:
            for kind, items in entry.items():
                defects.extend(f"{kind}: {item}" for item in items)
    except Exception as exc:  # mail-parser gave up: the stdlib still reads what it can
        defects.append(f"mail-parser failed: {type(exc).__name__}: {exc}")
        msg = email.message_from_bytes(raw)
    return _from_message(msg, raw_in, defects, sanitize)


_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def repair_header_block(raw: bytes) -> tuple[bytes, list[str]]:
    """Drop a stray colon-less line inside the header block, so the headers after it survive.

    >>> repair_header_block(b"From: a@b.c\\nthis is junk\\nSubject: hi\\n\\nbody")
    (b'From: a@b.c\\nSubject: hi\\n\\nbody', ["dropped malformed header line: 'this is junk'"])
    """
    end = _BLANK_LINE.search(raw)
    if end is None:
        return raw, []
    lines = raw[: end.start()].split(b"\n")
    bad = [i for i, line in enumerate(lines)
           if line.strip() and not line[:1].isspace() and not _HEADER_LINE.match(line)]
    if not bad or not _HEADER_LINE.match(lines[0]):
        return raw, []
    # Only when everything after the first bad line is headers is it a header block at all.
    rest = [line for i, line in enumerate(lines[bad[0]:], bad[0]) if i not in bad]
    if not rest or not all(_HEADER_LINE.match(x) or x[:1].isspace() for x in rest):
        return raw, []
    notes = [f"dropped malformed header line: {lines[i].strip().decode('ascii', 'replace')!r}"
             for i in bad]
    kept = b"\n".join(line for i, line in enumerate(lines) if i not in bad)
    return kept + raw[end.start():], notes


def _from_message(msg: Message, raw: bytes, defects: list[str],
                  sanitize: Callable[[str], str]) -> ParsedMail:
    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():  # raw strings: 8-bit bytes survive as surrogates
        raw_headers.setdefault(name.lower(), []).append(str(value))
    headers = {name: [decode_header_text(v).replace("\x00", "") for v in values]
               for name, values in raw_headers.items()}
    message_id, synthetic = _message_id(raw_headers, raw)
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[ParsedAttachment] = []
    embedded: list[str] = []
    _walk(msg, texts, htmls, attachments, embedded, defects)
    statuses = _delivery_status(msg)
    text = "\n".join(t for t in texts if t.strip()).replace("\x00", "")
    text, uuencoded = extract_uuencoded(text)
    attachments.extend(uuencoded)
    html = sanitize("\n".join(htmls)).replace("\x00", "") if htmls else ""
    if not text.strip() and html:
        text = html_to_text(html)
    return ParsedMail(
        raw_size=len(raw),
        message_id=message_id,
        message_id_synthetic=synthetic,
        subject=headers.get("subject", [""])[0],
        from_=next(iter(_addresses(raw_headers, "from")), None),
        to=_addresses(raw_headers, "to"),
        cc=_addresses(raw_headers, "cc"),
        reply_to=_addresses(raw_headers, "reply-to"),
        in_reply_to=_ids(headers.get("in-reply-to", [None])[0]),
        references=_ids(" ".join(headers.get("references", []))),
        date=_date(headers.get("date", [None])[0]),
        headers=headers,
        content_type=msg.get_content_type(),
        text=text,
        html=html,
        attachments=attachments,
        defects=defects,
        embedded_message_ids=embedded,
        delivery_status=statuses,
    )


def _walk(
    part: Message,
    texts: list[str],
    htmls: list[str],
    attachments: list[ParsedAttachment],
    embedded: list[str],
    defects: list[str],
) -> None:
    """Collect body text, HTML and attachments; nested mails stay whole, as attachments."""
    ctype = part.get_content_type()
    if ctype == "message/rfc822" or ctype == "text/rfc822-headers":
        inner = part.get_payload()
        nested = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(nested, Message):
            embedded.extend(_ids(nested.get("message-id")))
        elif ctype == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", payload)
                if found:
                    embedded.extend(_ids(found.group(1).decode("ascii", "replace")))
    if ctype.startswith("multipart/") and not part.is_multipart():
        repaired = _repair_multipart(part, ctype)
        if repaired is not None:
            defects.append(f"{ctype}: boundary missing from header, recovered from body")
            part = repaired
    if part.is_multipart() and ctype != "message/rfc822":
        for child in part.get_payload():
            if isinstance(child, Message):
                _walk(child, texts, htmls, attachments, embedded, defects)
        return
    disposition = (part.get_content_disposition() or "").lower()
    is_body = (
        ctype in ("text/plain", "text/html")
        and disposition != "attachment"
        and not part.get_filename()
    )
    if not is_body:
        attachments.append(attachment_from_part(part, len(attachments) + 1, defects))
        return
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    body, note = decode_bytes(data, part.get_content_charset())
    if note:
        defects.append(f"{ctype}: {note}")
    (htmls if ctype == "text/html" else texts).append(body)


_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")


def _delivery_status(msg: Message) -> list[tuple[str, str]]:
    """(recipient, status code) pairs of an RFC 3464 delivery report."""
    found: list[tuple[str, str]] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            recipient = str(block.get("final-recipient") or block.get("original-recipient") or "")
            status = _STATUS.match(str(block.get("status") or ""))
            address = recipient.rpartition(";")[2].strip().strip("<>").lower()
            if status and "@" in address:
                found.append((address, status.group(1)))
    return found


def _repair_multipart(part: Message, ctype: str) -> Message | None:
    """A multipart whose boundary parameter got lost (broken folding), re-read from its body."""
    body = part.get_payload()
    if not isinstance(body, str):
        return None
    found = _BOUNDARY_LINE.search(body)
    if found is None:
        return None
    boundary = found.group(1)
    head = f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
    rebuilt = email.message_from_string(head + body)
    return rebuilt if rebuilt.is_multipart() else None


def _message_id(raw_headers: dict[str, list[str]], raw: bytes) -> tuple[str, bool]:
    """The Message-ID, or a stable synthetic one made from the bytes."""
    value = raw_headers.get("message-id", [""])[0]
    found = _ids(value)
    if found:
        return found[0], False
    value = decode_header_text(value).strip().strip("<>").strip()
    if value and " " not in value and len(value) < 500 and value.isprintable():
        return value, False
    digest = hashlib.sha256(raw).hexdigest()[:40]
    return f"{digest}@synthetic.ticketgate.invalid", True


def _ids(value: object) -> list[str]:
    """Message-IDs in a header value, with or without angle brackets."""
    if value is None:
        return []
    text = decode_header_text(value)
    found = _MSGID.findall(text)
    if not found:
        found = [tok.strip("<>,;") for tok in text.split() if "@" in tok]
    return [f for f in found if f and len(f) < 500 and f.isprintable()]


def _addresses(raw_headers: dict[str, list[str]], name: str) -> list[Address]:
    """Addresses of a header, lower-cased, names decoded; entries without an @ dropped."""
    values = [_FOLD.sub(" ", v) for v in raw_headers.get(name, [])]
    result: list[Address] = []
    try:
        pairs = email.utils.getaddresses([str(v) for v in values])
    except (TypeError, ValueError, IndexError):
        pairs = []
    for display, address in pairs:
        addr = decode_header_text(address).strip().lower()
        if "@" not in addr or " " in addr or '"' in addr:
            continue
        result.append(Address(addr, decode_header_text(display)))
    if not result and values:  # "Hans Meier hans@example.net": pick out the address
        text = decode_header_text(values[0])
        found = _BARE_ADDRESS.search(text)
        if found:
            name = (text[: found.start()] + text[found.end():]).strip(" \t<>\"'()")
            result.append(Address(found.group(0).lower(), name))
    return result


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
