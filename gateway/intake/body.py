"""The body of a mail: every inline part in order, as text and as HTML; all else attachments.

How each MIME container adds up (RFC 2046, RFC 2387):

* ``multipart/alternative``: one content in several forms: the text is the first plain
  form, the HTML the last HTML form.
* ``multipart/related``: the root part (``start``, else the first) is the body; the other
  parts (inline images, and HTML or text resources) are attachments.
* every other multipart (``mixed``, ``report``, ``signed``, unknown): the body is each
  inline child in order; a text-only child appears in the HTML as preformatted text, an
  HTML-only child in the text as its visible words. So text and HTML say the same thing,
  however a mail program split the message (Apple Mail, signatures added by servers).
* nested mails stay whole as attachments; a delivery report's machine part is kept as an
  attachment and its recipients are read (``gateway.intake.dsn``).
"""

from __future__ import annotations

import email
import html as htmllib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message

from gateway.intake.attachments import ParsedAttachment, attachment_from_part
from gateway.intake.charsets import decode_bytes
from gateway.intake.dsn import DeliveryReport, read_reports, status_text
from gateway.intake.htmltext import html_to_text
from gateway.intake.spool import Spool

_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200})[ \t]*\r?$", re.MULTILINE)
_MESSAGE_ID = re.compile(rb"(?im)^message-id:\s*(<[^>\r\n]+>)")


@dataclass
class Rendering:
    """A part's body in the forms it was written in (None: not written in that form)."""

    text: str | None = None
    html: str | None = None

    @property
    def empty(self) -> bool:
        """Nothing for the body (an attachment, an empty container)."""
        return self.text is None and self.html is None


@dataclass
class Walk:
    """What a walk over a mail collects besides its body."""

    hints: Sequence[str] = ()
    attachments: list[ParsedAttachment] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)  # Message-IDs of nested mails
    reports: list[DeliveryReport] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    spool: Spool | None = None  # large bodies cut out before parsing

    def attach(self, part: Message) -> Rendering:
        """Keep part as an attachment; it adds nothing to the body."""
        self.attachments.append(attachment_from_part(part, len(self.attachments) + 1,
                                                     self.defects, self.hints, self.spool))
        return Rendering()


def render(part: Message, walk: Walk) -> Rendering:
    """The body of part and everything below it; attachments and reports go to walk."""
    ctype = part.get_content_type()
    if ctype in ("message/rfc822", "text/rfc822-headers", "message/global"):
        walk.embedded.extend(_nested_ids(part, ctype))
        return walk.attach(part)
    if ctype == "message/delivery-status":
        return _delivery_status(part, walk)
    if ctype.startswith("multipart/"):
        return _multipart(part, ctype, walk)
    disposition = (part.get_content_disposition() or "").lower()
    if ctype not in ("text/plain", "text/html") or disposition == "attachment" \
            or part.get_filename():
        return walk.attach(part)
    return _text_part(part, ctype, walk)


def _text_part(part: Message, ctype: str, walk: Walk) -> Rendering:
    """A text/plain or text/html leaf, decoded."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    body, note = decode_bytes(data, part.get_content_charset(), walk.hints)
    if note:
        walk.defects.append(f"{ctype}: {note}")
    return Rendering(html=body) if ctype == "text/html" else Rendering(text=body)


def _multipart(part: Message, ctype: str, walk: Walk) -> Rendering:
    if not part.is_multipart():
        repaired = _repair_multipart(part, ctype)
        if repaired is None:
            return _partless(part, ctype, walk)
        walk.defects.append(f"{ctype}: boundary missing from header, recovered from body")
        part = repaired
    children = [c for c in part.get_payload() if isinstance(c, Message)]
    if not children:
        walk.defects.append(f"{ctype}: no parts; nothing stored for it")
        return Rendering()
    if ctype == "multipart/alternative":
        forms = [render(child, walk) for child in children]
        texts = [f.text for f in forms if f.text is not None]
        htmls = [f.html for f in forms if f.html is not None]
        return Rendering(texts[0] if texts else None, htmls[-1] if htmls else None)
    if ctype == "multipart/related":
        root = _root(part, children)
        body = render(root, walk)
        for child in children:
            if child is not root:
                _attach_all(child, walk)
        return body
    return join([render(child, walk) for child in children])


def join(forms: list[Rendering]) -> Rendering:
    """Consecutive inline parts as one body, each in the form the other side lacks too.

    >>> join([Rendering(text="Hello"), Rendering(html="<p>Regards</p>")])
    Rendering(text='Hello\\nRegards', html='<div style="white-space: pre-wrap">Hello</div>\\n<p>Regards</p>')
    """
    forms = _pair_forms([f for f in forms if not f.empty])
    if not forms:
        return Rendering()
    text = html = None
    if any(f.text is not None for f in forms):
        pieces = [f.text if f.text is not None else html_to_text(f.html or "") for f in forms]
        text = "\n".join(p for p in pieces if p.strip())
    if any(f.html is not None for f in forms):
        html = "\n".join(f.html if f.html is not None else text_to_html(f.text or "")
                         for f in forms)
    return Rendering(text, html)


def _pair_forms(forms: list[Rendering]) -> list[Rendering]:
    """A text part right before an HTML part with the same words: one content, two forms.

    Some programs flatten a multipart/alternative into multipart/mixed when forwarding;
    joining both would say everything twice.
    """
    paired: list[Rendering] = []
    for form in forms:
        last = paired[-1] if paired else None
        if last is not None and last.html is None and last.text is not None \
                and form.text is None and form.html is not None \
                and _words(last.text) == _words(html_to_text(form.html)):
            paired[-1] = Rendering(last.text, form.html)
        else:
            paired.append(form)
    return paired


def _words(text: str) -> list[str]:
    return text.split()


def text_to_html(text: str) -> str:
    """Plain text as HTML that shows it as written.

    >>> text_to_html("a < b\\n-- \\nJo")
    '<div style="white-space: pre-wrap">a &lt; b\\n-- \\nJo</div>'
    """
    return f'<div style="white-space: pre-wrap">{htmllib.escape(text, quote=False)}</div>'


def _partless(part: Message, ctype: str, walk: Walk) -> Rendering:
    """A multipart without parts: empty (nothing stored) or plain text without boundaries."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    if not data.strip():
        walk.defects.append(f"{ctype}: empty, no parts; nothing stored for it")
        return Rendering()
    walk.defects.append(f"{ctype}: no boundary and no parts; read as text/plain")
    body, note = decode_bytes(data, part.get_param("charset") if isinstance(
        part.get_param("charset"), str) else None, walk.hints)  # type: ignore[arg-type]
    if note:
        walk.defects.append(f"{ctype}: {note}")
    return Rendering(text=body)


def _root(part: Message, children: list[Message]) -> Message:
    """The root of a multipart/related: the part its start parameter names, else the first."""
    start = part.get_param("start")
    if isinstance(start, str) and start.strip():
        wanted = start.strip().strip("<>")
        for child in children:
            if str(child.get("content-id", "")).strip().strip("<>") == wanted:
                return child
    return children[0]


def _attach_all(part: Message, walk: Walk) -> None:
    """Every leaf below part as an attachment (a non-root part of multipart/related)."""
    if part.is_multipart() and part.get_content_type().startswith("multipart/"):
        for child in part.get_payload():
            if isinstance(child, Message):
                _attach_all(child, walk)
        return
    if part.get_content_type() == "message/delivery-status":
        _delivery_status(part, walk)
        return
    walk.attach(part)


def _delivery_status(part: Message, walk: Walk) -> Rendering:
    """The machine part of a delivery report: kept as an attachment, its recipients read."""
    text = status_text(part)
    walk.reports.extend(read_reports(text))
    name = part.get_filename() or "delivery-status.txt"
    walk.attachments.append(ParsedAttachment(name, "message/delivery-status",
                                             text.encode("utf-8", "replace")))
    return Rendering()


def _nested_ids(part: Message, ctype: str) -> list[str]:
    """Message-IDs of a nested mail (or of the returned headers of a delivery report)."""
    inner = part.get_payload()
    nested = inner[0] if isinstance(inner, list) and inner else None
    if isinstance(nested, Message):
        value = nested.get("message-id")
        return [str(value)] if value else []
    if ctype == "text/rfc822-headers":
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            found = _MESSAGE_ID.search(payload)
            if found:
                return [found.group(1).decode("ascii", "replace")]
    return []


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
