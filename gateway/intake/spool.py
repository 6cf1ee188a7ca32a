"""Large base64 parts decoded straight from the raw bytes, never held as lines.

The stdlib feed parser keeps a part's body as one ``str`` per line and joins them: a 25 MiB
attachment costs the parser about ten times its size. Before parsing, each large base64 body
(a header block naming ``Content-Transfer-Encoding: base64``, then nothing but base64 up to
the next ``--`` line) is replaced by a one-line marker; the part keeps its headers, and its
file is decoded from the original buffer when the attachment is read (``Spool.claim``).
A marker that turns up anywhere but as the whole body of a base64 attachment (a pasted part
inside a text body, say) leaves ``Spool.complete`` false, and the caller parses the original
bytes as they are: cutting saves memory, never changes what is read.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from email._encoded_words import decode_b
from email.message import Message

MIN_SPOOLED = 256 * 1024
"""Bodies from this size on are cut out; below it the parser's lines cost too little to matter."""

# Led by the line break, not "^": a literal first character makes the scan about ten times faster.
_BASE64_CTE = re.compile(rb"(?i)\ncontent-transfer-encoding:[ \t]*base64[ \t]*\r?\n")
_HEADER_END = re.compile(rb"\n\r?\n")
_BASE64_BODY = re.compile(rb"[A-Za-z0-9+/=\r\n]*")
_DELIMITER = b"\n--"


@dataclass
class Spool:
    """The cut bodies of one mail: marker -> (start, end) in the original bytes."""

    raw: bytes
    cuts: dict[str, tuple[int, int]] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        """Every cut body was read back where it belongs (always true when nothing was cut)."""
        return self.claimed == set(self.cuts)

    def claim(self, part: Message) -> bytes | None:
        """The decoded file of a cut base64 part, or None when part is not one."""
        if not self.cuts or part.is_multipart():
            return None
        payload = part.get_payload()
        marker = payload.strip() if isinstance(payload, str) else ""
        span = self.cuts.get(marker)
        if span is None or str(part.get("content-transfer-encoding", "")).strip().lower() \
                != "base64":
            return None
        self.claimed.add(marker)
        return decode_base64(memoryview(self.raw)[span[0]:span[1]])

    def restore(self, data: bytes) -> bytes:
        """Bytes written back from parsed parts (a nested mail), with the cut bodies in place."""
        for marker, (start, end) in self.cuts.items():
            token = marker.encode("ascii")
            if token in data:
                self.claimed.add(marker)
                body = self.raw[start:end]
                data = data.replace(token + b"\r\n", body).replace(token + b"\n", body)
                data = data.replace(token, body.rstrip(b"\r\n"))
        return data


def decode_base64(body: memoryview) -> bytes:
    """Decode as the stdlib does: lenient about line breaks and missing padding."""
    try:
        return binascii.a2b_base64(body)
    except binascii.Error:  # bad padding: the stdlib's repairing decoder, on a copy
        data: bytes = decode_b(b"".join(bytes(body).splitlines()))[0]
        return data


def cut_large_parts(raw: bytes, min_size: int = MIN_SPOOLED) -> tuple[bytes, Spool]:
    """raw with every large base64 body replaced by a marker line; the spool to read them.

    >>> body = b"QUJD" * 40 + b"\\r\\n"
    >>> mail = (b"Content-Type: multipart/mixed; boundary=b\\r\\n\\r\\n--b\\r\\n"
    ...         b"Content-Transfer-Encoding: base64\\r\\n\\r\\n" + body * 3 + b"--b--\\r\\n")
    >>> cut, spool = cut_large_parts(mail, min_size=100)
    >>> len(cut) < len(mail), len(spool.cuts), spool.complete
    (True, 1, False)
    """
    spool = Spool(raw)
    if len(raw) < min_size:
        return raw, spool
    pieces: list[bytes] = []
    done = 0
    nonce = secrets.token_hex(8)
    found = _BASE64_CTE.search(raw)
    while found is not None:
        span = _body_span(raw, found.end() - 1, min_size)
        if span is not None:
            marker = f"tgspool{nonce}n{len(spool.cuts)}"
            spool.cuts[marker] = span
            pieces += [raw[done:span[0]], marker.encode("ascii"), b"\r\n"]
            done = span[1]
        found = _BASE64_CTE.search(raw, max(done, found.end()) - 1)
    if not spool.cuts:
        return raw, spool
    pieces.append(raw[done:])
    return b"".join(pieces), spool


def _body_span(raw: bytes, header_at: int, min_size: int) -> tuple[int, int] | None:
    """Where the body below this header line starts and ends, when it is large and all base64."""
    blank = _HEADER_END.search(raw, header_at)
    if blank is None:
        return None
    start = blank.end()
    delimiter = raw.find(_DELIMITER, start)
    end = len(raw) if delimiter < 0 else delimiter + 1
    if end - start < min_size or _BASE64_BODY.fullmatch(raw, start, end) is None:
        return None
    return start, end
