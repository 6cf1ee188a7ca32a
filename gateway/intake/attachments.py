"""Attachments: safe file names, decoded payloads, and files hidden in uuencoded text."""

from __future__ import annotations

import binascii
import contextlib
import mimetypes
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

from gateway.intake.charsets import decode_bytes, decode_header_text
from gateway.intake.spool import Spool

MAX_NAME_BYTES = 200
_CONTROL_RUN = re.compile(r"[ \x00]*\x00[ \x00]*")  # after marking controls as NUL


@dataclass(frozen=True)
class ParsedAttachment:
    """A decoded file from a mail."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None

    @property
    def size(self) -> int:
        """Decoded size in bytes."""
        return len(self.data)


def safe_filename(name: str, content_type: str, index: int) -> str:
    """A file name that is safe on any disk: no path, no control characters, not empty.

    >>> safe_filename("../../etc/passwd", "text/plain", 1)
    'passwd'
    >>> safe_filename("report\\n2026.txt", "text/plain", 1)
    'report 2026.txt'
    >>> safe_filename("", "application/pdf", 3)
    'attachment-3.pdf'
    >>> safe_filename("Report  final.pdf", "application/pdf", 1)
    'Report  final.pdf'
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    # A run of control characters (a folded line end, a tab) is one space; spaces the
    # sender typed stay as they are ("Report  final.pdf" keeps both).
    name = "".join("\x00" if unicodedata.category(ch)[0] == "C" else ch for ch in name)
    name = _CONTROL_RUN.sub(" ", name).strip().lstrip(".").strip()
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext) >= 12 or not stem:
            stem, dot, ext = name, "", ""
        room = MAX_NAME_BYTES - len((dot + ext).encode("utf-8"))
        stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
        name = stem + dot + ext
    if not name:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{ext}"
    return name


def attachment_from_part(part: Message, index: int, defects: list[str],
                         hints: Sequence[str] = (), spool: Spool | None = None) -> ParsedAttachment:
    """An attachment from a non-body MIME part (a nested mail is kept whole); a large body cut
    out before parsing is decoded from the spool."""
    ctype = part.get_content_type()
    name = part_filename(part, hints)
    if ctype == "message/rfc822":
        inner = part.get_payload()
        nested = inner[0] if isinstance(inner, list) and inner else None
        data = _message_bytes(nested) if isinstance(nested, Message) else b""
        data = spool.restore(data) if spool is not None and spool.cuts else data
        if not name and isinstance(nested, Message):
            subject = decode_header_text(nested.get("subject", "")) or "message"
            name = f"{subject}.eml"
    else:
        spooled = spool.claim(part) if spool is not None else None
        data = _decoded(part, index, defects) if spooled is None else spooled
    cid = part.get("content-id")
    return ParsedAttachment(
        filename=safe_filename(name, ctype, index),
        content_type=ctype,
        data=data,
        content_id=str(cid).strip().strip("<>") if cid else None,
    )


def _decoded(part: Message, index: int, defects: list[str]) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, binascii.Error) as exc:
        defects.append(f"attachment {index}: undecodable payload ({exc})")
        payload = None
    return payload if isinstance(payload, bytes) else b""


def part_filename(part: Message, hints: Sequence[str] = ()) -> str:
    """The decoded file name of a part: RFC 2231 (with its charset), encoded words, raw 8-bit.

    RFC 2231 values are decoded by us, not the stdlib: it replaces what Python's codec of
    the named charset cannot read (ISO-2022-JP with NEC characters), we repair it.
    """
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = _raw_param(part, param, header)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, text of the raw bytes)
            charset, _language, text = value
            data = str(text).encode("latin-1", "replace")
            return decode_bytes(data, charset or None, hints)[0]
        if isinstance(value, str) and value:
            # Raw bytes back into the parser's surrogate form, for charset repair (a part
            # re-read from a string holds text already).
            with contextlib.suppress(UnicodeEncodeError):
                value = value.encode("latin-1").decode("ascii", "surrogateescape")
            return decode_header_text(value, hints)
    return ""


def _raw_param(part: Message, param: str, header: str) -> object:
    """A header parameter with raw 8-bit bytes intact (as Latin-1 characters).

    The stdlib hands back U+FFFD for raw bytes in a parameter under the compat32 policy;
    reading the header's raw value (bytes kept as surrogates) through a probe avoids that.
    """
    raw = next((str(v) for k, v in part.raw_items() if k.lower() == header), None)
    if raw is None:
        return None
    try:
        latin = raw.encode("ascii", "surrogateescape").decode("latin-1")
    except UnicodeEncodeError:  # already text (a part re-read from a string)
        return part.get_param(param, header=header)
    probe = Message()
    probe[header] = latin
    return probe.get_param(param, header=header)


def _message_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes()
    except (UnicodeError, LookupError, TypeError, ValueError):
        return msg.as_string().encode("utf-8", "replace")


_UU_BLOCK = re.compile(
    r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n(.*?)^`?\r?\nend[ \t]*$\r?\n?|"
    r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n(.*?)^end[ \t]*$\r?\n?",
    re.MULTILINE | re.DOTALL,
)


def _uu_line(line: str) -> bytes:
    """One uuencoded line; tolerates the padding some encoders add (as the old uu module did)."""
    try:
        return binascii.a2b_uu(line)
    except binascii.Error:
        needed = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
        return binascii.a2b_uu(line[:needed])


def extract_uuencoded(text: str) -> tuple[str, list[ParsedAttachment]]:
    """Pull uuencoded files out of a text body; returns the remaining text and the files."""
    if "begin " not in text:
        return text, []
    found: list[ParsedAttachment] = []

    def take(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        body = match.group(2) if match.group(1) else match.group(4)
        data = bytearray()
        for line in body.splitlines():
            if not line or line in ("`", " "):
                continue
            try:
                data += _uu_line(line)
            except binascii.Error:
                return match.group(0)  # not uuencode after all: leave the text alone
        ctype = mimetypes.guess_type(name.strip())[0] or "application/octet-stream"
        found.append(ParsedAttachment(safe_filename(name, ctype, len(found) + 1), ctype,
                                      bytes(data)))
        return ""

    return _UU_BLOCK.sub(take, text), found
