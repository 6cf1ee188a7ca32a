"""The header block as broken senders write it: junk before it, stray lines inside it.

The stdlib ends the header block at the first line that is not a header, so one junk line
(an mbox ``From `` line, a gateway's stray banner, a byte-order mark) puts every header in
the body, and one colon-less line in the middle loses the headers after it. We drop such
lines before parsing, when what remains is plainly a header block, and say so as defects.
"""

from __future__ import annotations

import re

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_BOM = b"\xef\xbb\xbf"
# Header names that show a block of lines really is a mail's header block.
_KNOWN = frozenset({b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"received",
                    b"return-path", b"mime-version", b"content-type", b"delivered-to",
                    b"reply-to", b"sender", b"in-reply-to", b"references"})
MAX_JUNK_LINES = 3
_TEXT_BYTES = frozenset(range(32, 256)) | {9, 10, 12, 13, 27}  # with form feed, ESC (ISO-2022)


def not_a_mail(raw: bytes) -> str | None:
    """Why these bytes are no mail at all (no header block), or None when they may be one.

    Such input (an empty file, a picture, random bytes) is quarantined, never made a ticket.

    >>> not_a_mail(b"")
    'not a mail: empty input'
    >>> not_a_mail(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00")
    'not a mail: binary data, no header block'
    >>> not_a_mail(b"hello there\\nhow are you")
    "not a mail: no header block; it starts with 'hello there'"
    >>> not_a_mail(b"From jo@b.c Nov\\nFrom: jo@b.c\\nSubject: hi\\n\\nbody") is None
    True
    """
    if not raw.strip():
        return "not a mail: empty input" if not raw else "not a mail: only blank lines"
    repaired, _notes = repair_header_block(raw)
    end = _BLANK_LINE.search(repaired)
    block = repaired[: end.start()] if end else repaired[:4096]
    if _HEADER_LINE.match(repaired.lstrip(b"\r\n")) and b"\0" not in block:
        return None
    if b"\0" in block or any(byte not in _TEXT_BYTES for byte in repaired[:512]):
        return "not a mail: binary data, no header block"
    first = repaired.strip().split(b"\n", 1)[0]
    return f"not a mail: no header block; it starts with {_show(first[:60])}"
    return None


def repair_header_block(raw: bytes) -> tuple[bytes, list[str]]:
    """Drop junk before the header block and stray colon-less lines inside it.

    >>> repair_header_block(b"From: a@b.c\\nthis is junk\\nSubject: hi\\n\\nbody")
    (b'From: a@b.c\\nSubject: hi\\n\\nbody', ["dropped malformed header line: 'this is junk'"])
    >>> repair_header_block(b"From jo@b.c Nov\\nFrom: jo@b.c\\nSubject: hi\\n\\nbody")
    (b'From: jo@b.c\\nSubject: hi\\n\\nbody', ["skipped 1 line before the header block: 'From jo@b.c Nov'"])
    """
    raw, notes = _skip_leading_junk(raw)
    end = _BLANK_LINE.search(raw)
    if end is None:
        return raw, notes
    lines = raw[: end.start()].split(b"\n")
    bad = [i for i, line in enumerate(lines)
           if line.strip() and not line[:1].isspace() and not _HEADER_LINE.match(line)]
    if not bad or not _HEADER_LINE.match(lines[0]):
        return raw, notes
    # Only when everything after the first bad line is headers is it a header block at all.
    rest = [line for i, line in enumerate(lines[bad[0]:], bad[0]) if i not in bad]
    if not rest or not all(_HEADER_LINE.match(x) or x[:1].isspace() for x in rest):
        return raw, notes
    notes += [f"dropped malformed header line: {_show(lines[i])}" for i in bad]
    kept = b"\n".join(line for i, line in enumerate(lines) if i not in bad)
    return kept + raw[end.start():], notes


def _skip_leading_junk(raw: bytes) -> tuple[bytes, list[str]]:
    """Lines before the first header line that cannot be headers, when a header block follows."""
    skipped: list[bytes] = []
    rest = raw
    if rest.startswith(_BOM):
        skipped.append(b"(byte-order mark)")
        rest = rest[len(_BOM):]
    while not _HEADER_LINE.match(rest):
        if len(skipped) >= MAX_JUNK_LINES:
            return raw, []
        line, newline, after = rest.partition(b"\n")
        if not newline:
            return raw, []
        skipped.append(line)
        rest = after
    if not skipped or not _HEADER_LINE.match(rest) or not _is_header_block(rest):
        return raw, []
    shown = [s for s in skipped if s.strip()] or skipped
    count = len(skipped)
    what = f"{count} line{'s' if count > 1 else ''}"
    return rest, [f"skipped {what} before the header block: "
                  + ", ".join(_show(s) for s in shown)]


def _is_header_block(data: bytes) -> bool:
    """Header lines (with continuations) up to the first blank line, some of them well known."""
    end = _BLANK_LINE.search(data)
    block = data[: end.start()] if end else data
    lines = [line for line in block.split(b"\n") if line.strip()]
    names = set()
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            continue
        if not _HEADER_LINE.match(line):
            return False
        names.add(line.split(b":", 1)[0].strip().lower())
    return len(lines) >= 2 and bool(names & _KNOWN)


def _show(line: bytes) -> str:
    return repr(line.strip().decode("ascii", "replace")[:200])
