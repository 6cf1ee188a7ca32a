"""Depth limit for MIME nesting, applied to the raw bytes before the parser sees them.

Python's ``email`` parser (and everything that walks its result) recurses once or more per
nesting level: a forward chain or a multipart nested a few hundred levels deep raises
``RecursionError``. Before parsing, this step follows the MIME structure the way the stdlib
feed parser does (header blocks, boundaries, ``message/*`` bodies) without recursing deeper
than the limit, and replaces every part that would go deeper by one leaf: the part's bytes,
base64-encoded, as an attachment ``nested-part-N.eml``. After parsing, those attachments are
labelled ``message/rfc822`` again (``label_cut_parts``). A mail within the limit, which is
every real one, is left byte for byte as it was; a cheap count decides that first.
"""

from __future__ import annotations

import base64
import bisect
import email.parser
import email.policy
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from gateway.intake.attachments import ParsedAttachment

MAX_DEPTH = 40
"""MIME levels that are parsed; the root message is level 0. Real mail needs a handful, a
forward of a forward about three more per forward."""

# Led by the line break, not "^": a literal first character makes the scan about ten times faster.
_CONTAINER = re.compile(rb"(?i)\ncontent-type:[ \t]*(?:\r?\n[ \t]+)*\"?(?:multipart|message)/")
_CONTAINER_VALUE = re.compile(rb"(?i)\s*\"?(?:multipart|message)/")
_HEADER = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")  # as the stdlib feed parser
_BLANK = re.compile(rb"^(\r\n|\r|\n)$")
_ANY_BOUNDARY = re.compile(rb"^--(\S{1,200})[ \t]*(\r\n|\r|\n)?$")
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


@dataclass(frozen=True)
class CutPart:
    """A part kept whole instead of parsed: its attachment name, bytes and the defect note."""

    filename: str
    data: bytes
    note: str


@dataclass
class _Scan:
    """The lines of the mail and where each boundary-like line sits."""

    lines: list[bytes]
    max_depth: int
    newline: bytes
    delimiters: dict[bytes, list[int]] = field(default_factory=dict)
    closers: dict[bytes, list[int]] = field(default_factory=dict)
    cuts: list[CutPart] = field(default_factory=list)

    def index_boundaries(self) -> None:
        """Every line that could delimit a part, once: lookups are then logarithmic."""
        for number, line in enumerate(self.lines):
            if line.startswith(b"--"):
                text = line.rstrip(b"\r\n").rstrip(b" \t")
                self.delimiters.setdefault(text, []).append(number)
                if text.endswith(b"--"):
                    self.closers.setdefault(text[:-2], []).append(number)


def limit_nesting(raw: bytes, max_depth: int = MAX_DEPTH) -> tuple[bytes, list[CutPart]]:
    """The mail with every part deeper than max_depth replaced by a leaf; what was cut.

    >>> deep = b"Subject: x\\n" + b"".join(
    ...     b'Content-Type: multipart/mixed; boundary="b%d"\\n\\n--b%d\\n' % (i, i) for i in range(5))
    >>> raw, cuts = limit_nesting(deep + b"Content-Type: text/plain\\n\\nhi\\n", max_depth=3)
    >>> [c.filename for c in cuts], b"nested-part-1.eml" in raw, raw.count(b"multipart/mixed")
    (['nested-part-1.eml'], True, 3)
    >>> limit_nesting(b"Subject: flat\\n\\nhello\\n") == (b"Subject: flat\\n\\nhello\\n", [])
    True
    """
    containers = len(_CONTAINER.findall(raw)) + bool(_CONTAINER.match(b"\n" + raw[:200]))
    if 2 * containers + 1 < max_depth:  # digests nest without headers
        return raw, []
    lines = raw.splitlines(keepends=True)
    newline = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    scan = _Scan(lines, max_depth, newline)
    scan.index_boundaries()
    out: list[bytes] = []
    _entity(scan, 0, len(lines), 0, "text/plain", out)
    return (b"".join(out), scan.cuts) if scan.cuts else (raw, [])


def label_cut_parts(attachments: Sequence[ParsedAttachment],
                    cuts: Sequence[CutPart]) -> list[ParsedAttachment]:
    """The attachments, with the parts kept whole labelled message/rfc822 again."""
    ours = {(c.filename, c.data) for c in cuts}
    return [replace(a, content_type="message/rfc822") if (a.filename, a.data) in ours else a
            for a in attachments]


def _entity(scan: _Scan, start: int, end: int, depth: int, default_type: str,
            out: list[bytes]) -> None:
    """Append the bytes of lines[start:end] (one MIME entity) to out, too-deep parts cut."""
    lines = scan.lines
    body = start
    while body < end and _HEADER.match(lines[body]):
        body += 1
    head = lines[start:body]
    if body < end and _BLANK.match(lines[body]):
        body += 1
    ctype, boundary = _content_type(head, default_type)
    maintype = ctype.partition("/")[0]
    if maintype not in ("multipart", "message") or ctype == "message/delivery-status":
        out.extend(lines[start:end])
        return
    if depth >= scan.max_depth:
        _cut(scan, start, body, end, depth, ctype, out)
        return
    out.extend(lines[start:body])
    if maintype == "message":
        _entity(scan, body, end, depth + 1, "text/plain", out)
        return
    found = _boundary(scan, boundary, body, end)
    if found is None:
        out.extend(lines[body:end])
        return
    child = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
    _parts(scan, found, body, end, depth + 1, child, out)


def _content_type(head: list[bytes], default_type: str) -> tuple[str, str | None]:
    """The content type of a header block and its boundary, read as the stdlib reads them;
    only containers pay for a real header parse."""
    for number, line in enumerate(head):
        if line[:13].lower() == b"content-type:":
            value = line[13:] + b"".join(
                next_line for next_line in _continuation(head, number + 1))
            if not _CONTAINER_VALUE.match(value):
                return "text/plain", None  # a leaf of some kind: its exact type does not matter
            return _parsed_type(value, default_type)
    return default_type, None


@functools.lru_cache(maxsize=256)
def _parsed_type(value: bytes, default_type: str) -> tuple[str, str | None]:
    message = _HEADERS.parsebytes(b"Content-Type:" + value)
    message.set_default_type(default_type)
    return message.get_content_type(), message.get_boundary()


def _continuation(head: list[bytes], number: int) -> list[bytes]:
    found = []
    while number < len(head) and head[number][:1] in (b" ", b"\t"):
        found.append(head[number])
        number += 1
    return found


def _boundary(scan: _Scan, declared: str | None, body: int, end: int) -> bytes | None:
    """The boundary of a multipart; a lost one is taken from the first delimiter-like line,
    as the parse stage repairs it."""
    if declared is not None:
        return declared.encode("ascii", "surrogateescape")
    for number in range(body, end):
        found = _ANY_BOUNDARY.match(scan.lines[number])
        if found:
            return found.group(1)
    return None


def _parts(scan: _Scan, boundary: bytes, body: int, end: int, depth: int, child: str,
           out: list[bytes]) -> None:
    """A multipart body: preamble, each part between delimiters, the closing line, epilogue."""
    separator = b"--" + boundary
    marks = _between(scan.delimiters.get(separator, []), body, end)
    closes = _between(scan.closers.get(separator, []), body, end)
    if not marks:
        out.extend(scan.lines[body:end])
        return
    close = next((c for c in closes if c > marks[0]), end)
    marks = [m for m in marks if m < close]
    out.extend(scan.lines[body:marks[0]])
    for number, mark in enumerate(marks):
        stop = marks[number + 1] if number + 1 < len(marks) else close
        out.append(scan.lines[mark])
        _entity(scan, mark + 1, stop, depth, child, out)
    out.extend(scan.lines[close:end])


def _between(found: list[int], low: int, high: int) -> list[int]:
    return found[bisect.bisect_left(found, low):bisect.bisect_left(found, high)]


def _cut(scan: _Scan, start: int, body: int, end: int, depth: int, ctype: str,
         out: list[bytes]) -> None:
    """One leaf instead of the entity: its bytes as an attachment, nothing below parsed."""
    first = body if ctype.startswith("message/") else start  # a forwarded mail: the mail itself
    data = b"".join(scan.lines[first:end])
    if data.endswith(b"\n"):  # the last line break belongs to the next delimiter
        data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
    name = f"nested-part-{len(scan.cuts) + 1}.eml"
    note = (f"MIME nesting deeper than {scan.max_depth} levels: a {ctype} part at level {depth} "
            f"kept whole as attachment {name} ({len(data)} bytes), not parsed")
    scan.cuts.append(CutPart(name, data, note))
    nl = scan.newline
    encoded = base64.encodebytes(data).replace(b"\n", nl)
    out.extend([b'Content-Type: application/octet-stream; name="' + name.encode() + b'"' + nl,
                b'Content-Disposition: attachment; filename="' + name.encode() + b'"' + nl,
                b"Content-Transfer-Encoding: base64" + nl, nl, encoded])
