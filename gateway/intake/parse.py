"""Parse stage: raw mail bytes to a ParsedMail; never raises for bad input, records defects."""

from __future__ import annotations

import email
import email.utils
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message

from gateway.intake.addresses import Address, mailboxes
from gateway.intake.attachments import ParsedAttachment, extract_uuencoded
from gateway.intake.body import Walk, render
from gateway.intake.charsets import DeclaredCharsets, decode_header_text
from gateway.intake.dsn import DeliveryReport
from gateway.intake.headerblock import repair_header_block
from gateway.intake.htmltext import html_to_text, sanitize_html
from gateway.intake.nesting import label_cut_parts, limit_nesting
from gateway.intake.spool import Spool, cut_large_parts
from store.keys import message_key
from store.packing import Packed

_MSGID = re.compile(r"<([^<>\s]+)>")
_FOLD = re.compile(r"\r?\n")


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
    # Every recipient block of a delivery report (Status, Diagnostic-Code), failed or not.
    delivery_reports: list[DeliveryReport] = field(default_factory=list)
    # The From header as written (decoded): kept even when it holds no valid address.
    from_raw: str = ""
    # Every header field in the order of the mail (top first), name lower-cased, value
    # decoded: trust decisions depend on position (Received, Authentication-Results).
    header_fields: list[tuple[str, str]] = field(default_factory=list)
    # The raw mail packed for the blob table, when a parse worker did that beside parsing.
    packed_original: Packed | None = None

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
    smaller, spool = cut_large_parts(raw)  # large base64 files are not held as lines
    parsed = _parsed(smaller, raw_in, list(defects), sanitize, spool)
    if not spool.complete:  # a cut body was not where a file belongs: read the mail as it is
        parsed = _parsed(raw, raw_in, defects, sanitize, None)
    return parsed


def _parsed(raw: bytes, raw_in: bytes, defects: list[str], sanitize: Callable[[str], str],
            spool: Spool | None) -> ParsedMail:
    """One parse with the stdlib (compat32), parts nested too deep for it kept whole."""
    raw, cuts = limit_nesting(raw)
    defects.extend(cut.note for cut in cuts)
    msg = email.message_from_bytes(raw)
    defects.extend(structure_defects(msg))
    parsed = _from_message(msg, raw_in, defects, sanitize, spool)
    parsed.attachments = label_cut_parts(parsed.attachments, cuts) if cuts else parsed.attachments
    return parsed


def structure_defects(msg: Message) -> list[str]:
    """The parser's defects of every part, as "type: Defect: what it means"."""
    return [f"{part.get_content_type()}: {type(defect).__name__}: {defect.__doc__}"
            for part in msg.walk() for defect in part.defects]


def _from_message(msg: Message, raw: bytes, defects: list[str],
                  sanitize: Callable[[str], str], spool: Spool | None) -> ParsedMail:
    raw_headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():  # raw strings: 8-bit bytes survive as surrogates
        raw_headers.setdefault(name.lower(), []).append(str(value))
    hints = DeclaredCharsets(msg)
    fields = [(name.lower(), decode_header_text(str(value), hints).replace("\x00", ""))
              for name, value in msg.raw_items()]  # in order: trust depends on position
    headers: dict[str, list[str]] = {}
    for name, value in fields:
        headers.setdefault(name, []).append(value)
    message_id, synthetic = _message_id(raw_headers, raw)
    walk = Walk(hints=hints, defects=defects, spool=spool)
    body = render(msg, walk)
    text = (body.text or "").replace("\x00", "")
    text, uuencoded = extract_uuencoded(text)
    walk.attachments.extend(uuencoded)
    html = sanitize(body.html).replace("\x00", "") if body.html else ""
    if not text.strip() and html:
        text = html_to_text(html)
    people = {name: _addresses(raw_headers, name, hints, defects)
              for name in ("from", "to", "cc", "reply-to")}
    return ParsedMail(
        raw_size=len(raw),
        message_id=message_id,
        message_id_synthetic=synthetic,
        subject=headers.get("subject", [""])[0],
        from_=next(iter(people["from"]), None),
        to=people["to"],
        cc=people["cc"],
        reply_to=people["reply-to"],
        in_reply_to=_ids(headers.get("in-reply-to", [None])[0]),
        references=_ids(" ".join(headers.get("references", []))),
        date=_date(headers.get("date", [None])[0], defects),
        headers=headers,
        content_type=msg.get_content_type(),
        text=text,
        html=html,
        attachments=walk.attachments,
        defects=defects,
        embedded_message_ids=[i for value in walk.embedded for i in _ids(value)],
        delivery_status=[(r.recipient, r.status) for r in walk.reports
                         if "@" in r.recipient and r.status],
        delivery_reports=walk.reports,
        from_raw=headers.get("from", [""])[0],
        header_fields=fields,
    )


def _addresses(raw_headers: dict[str, list[str]], name: str, hints: Sequence[str],
               defects: list[str]) -> list[Address]:
    """The addresses of a header as written; what is not an address becomes a defect."""
    found: list[Address] = []
    for value in raw_headers.get(name, []):
        people, problems = mailboxes(_FOLD.sub(" ", value),
                                     lambda text: decode_header_text(text, hints))
        found.extend(people)
        label = name.title()
        defects.extend(f"{label}: {problem}" for problem in problems)
    return found


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


def _date(value: object, defects: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"Date: {str(value)[:200]!r} is not a date")
        return None
