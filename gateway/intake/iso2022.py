"""ISO-2022-JP as Japanese mail really sends it: vendor extensions decoded character-exactly.

Mail programs on Windows write ISO-2022-JP with the NEC and IBM extensions of Shift_JIS
(circled numbers, Roman numerals, ㈱, IBM kanji) inside ``ESC $ B`` runs; Python's
``iso2022_jp*`` codecs reject the whole text for one such character. We try the standard
codecs first (JIS X 0208 mapped as JIS says, e.g. WAVE DASH U+301C), and only when they fail
decode run by run: standard characters through the JIS table, the others through ``cp932``
(Microsoft's table, what the sender's program meant), as Microsoft's ``cp50220`` does.
"""

from __future__ import annotations

import re

# Escape sequences that mark ISO-2022-JP text in otherwise 7-bit data.
_JP_ESCAPES = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(I", b"\x1b$(D", b"\x1b$(Q", b"\x1b$(O")
_KR_ESCAPE = b"\x1b$)C"
_STANDARD = ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004")
_RUN = re.compile(rb"(\x1b(?:\$\(?[@BDOQ]|\([BJIH]))|([\x0e\x0f])")
_HIGH = bytes(range(128, 256)) * 2


def iso2022_family(data: bytes) -> str | None:
    """'jp' or 'kr' when 7-bit data carries ISO-2022 escape sequences, else None.

    >>> iso2022_family(b"\\x1b$B$3$s$K$A$O\\x1b(B"), iso2022_family(b"plain"), iso2022_family(b"\\x1b$)C")
    ('jp', None, 'kr')
    """
    if b"\x1b" not in data:
        return None
    if any(esc in data for esc in _JP_ESCAPES):
        return "jp"
    return "kr" if _KR_ESCAPE in data else None


def decode_iso2022_jp(data: bytes) -> str | None:
    """The text of ISO-2022-JP data (vendor extensions included), or None when it is not that.

    >>> decode_iso2022_jp(b"\\x1b$B-!\\x1b(B No.1 \\x1b$B!A\\x1b(B")
    '① No.1 〜'
    """
    for codec in _STANDARD:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return _decode_runs(data)


def _decode_runs(data: bytes) -> str | None:
    """Run by run: ASCII, JIS X 0208 (with the cp932 extensions), half-width katakana."""
    out: list[str] = []
    mode = b"\x1b(B"
    position = 0
    for found in _RUN.finditer(data):
        text = _decode_run(mode, data[position:found.start()])
        if text is None:
            return None
        out.append(text)
        # An escape sequence names the next run's set; SO / SI switch half-width katakana.
        mode = found.group(1) or (b"\x1b(I" if found.group(2) == b"\x0e" else b"\x1b(B")
        position = found.end()
    text = _decode_run(mode, data[position:])
    if text is None:
        return None
    out.append(text)
    return "".join(out)


def _decode_run(mode: bytes, run: bytes) -> str | None:
    """One run of bytes in the character set its escape sequence selected."""
    if not run:
        return ""
    if mode in (b"\x1b$B", b"\x1b$@"):
        return _jis0208(run)
    if mode == b"\x1b(I":
        return _decode(bytes(b | 0x80 for b in run if b > 0x20), "cp932")
    if mode in (b"\x1b(B", b"\x1b(H"):
        return _decode(run, "ascii")
    codec = "iso2022_jp_2004" if mode in (b"\x1b$(Q", b"\x1b$(O") else "iso2022_jp_2"
    return _decode(mode + run + b"\x1b(B", codec)


def _jis0208(run: bytes) -> str | None:
    """A JIS X 0208 run: the JIS table where it has the character, else Microsoft's."""
    lines = run.split(b"\n")  # line ends may sit inside a run in broken mail
    if len(lines) > 1:
        parts = [_jis0208(line.rstrip(b"\r")) for line in lines]
        return None if any(p is None for p in parts) else "\n".join(p or "" for p in parts)
    run = run.rstrip(b"\r")
    whole = _decode(run.translate(_HIGH), "euc_jp")
    if whole is not None:
        return whole
    if len(run) % 2:
        return None
    out = []
    for i in range(0, len(run), 2):
        first, second = run[i], run[i + 1]
        char = _decode(bytes((first | 0x80, second | 0x80)), "euc_jp")
        if char is None:
            char = _decode(_to_sjis(first, second), "cp932")
        if char is None:
            return None
        out.append(char)
    return "".join(out)


def _to_sjis(first: int, second: int) -> bytes:
    """The Shift_JIS bytes of a JIS X 0208 code point (row/cell arithmetic).

    >>> _to_sjis(0x2D, 0x21).hex(), _to_sjis(0x30, 0x21).hex()
    ('8740', '889f')
    """
    lead = (first + 1) // 2 + 0x70
    if lead >= 0xA0:
        lead += 0x40
    trail = second + 0x1F + (second >= 0x60) if first % 2 else second + 0x7E
    return bytes((lead, trail))


def _decode(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None
