"""Charset repair: decode bytes whose label is wrong, missing or unknown into the right text."""

from __future__ import annotations

import codecs
import re
from email.header import decode_header

from charset_normalizer import from_bytes

# Labels seen in the wild, mapped to the codec that really decodes such mail.
_ALIASES = {
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-1": "cp1252",  # clients label windows-1252 text as Latin-1 all the time
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-user-defined": "cp1252",
}
_SINGLE_BYTE = {"cp1252", "iso8859-15", "iso8859-2", "cp1250", "cp1251", "koi8-r", "ascii"}
_UNKNOWN = {"", "unknown", "unknown-8bit", "x-unknown", "default", "8bit", "charset"}


def codec_for(label: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None when unusable."""
    if label is None:
        return None
    name = label.strip().strip("\"'").lower()
    if name in _UNKNOWN:
        return None
    name = _ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, label: str | None = None) -> tuple[str, str | None]:
    """Text from data and, when the label could not be trusted, a note saying what was done.

    >>> decode_bytes("Grüße".encode("latin-1"), "us-ascii")
    ('Grüße', "charset 'us-ascii' did not fit; decoded as cp1252")
    >>> decode_bytes("Grüße".encode("utf-8"), "iso-8859-1")
    ('Grüße', "charset 'iso-8859-1' did not fit; decoded as utf-8")
    """
    if not data:
        return "", None
    codec = codec_for(label)
    if data.isascii() and not _escaping(codec):
        return data.decode("ascii"), None
    if codec is not None:
        # A single-byte label on valid multi-byte UTF-8 is almost always a mislabel.
        if codec in _SINGLE_BYTE and codec != "ascii" and _is_utf8(data):
            return data.decode("utf-8"), f"charset {label!r} did not fit; decoded as utf-8"
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    guess = "utf-8" if _is_utf8(data) else _guess(data)
    note = f"charset {label!r} did not fit; decoded as {guess}" if label else None
    return data.decode(guess, errors="replace"), note


_SHORT_CANDIDATES = ("cp1252", "cp1251", "koi8_r", "iso8859_2", "gb18030", "cp932", "big5")


def _guess(data: bytes) -> str:
    """The likeliest charset of unlabelled 8-bit text.

    Long text goes to charset-normalizer's language models; short text (a word or two)
    is too little for them, so the decoding with the most letters wins, Western first.
    """
    if sum(b > 127 for b in data) >= 40:
        best = from_bytes(data).best()
        if best is not None and codec_for(best.encoding) is not None:
            return best.encoding
    scores: list[tuple[float, int, str]] = []
    for rank, name in enumerate(_SHORT_CANDIDATES):
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        high = [ch for ch in text if ord(ch) > 127]
        letters = sum(ch.isalpha() or ch in "€„“”‚‘’–—…«»°§" for ch in high)
        scores.append((letters / max(len(high), 1), -rank, name))
    return max(scores)[2] if scores else "cp1252"


def _escaping(codec: str | None) -> bool:
    """Codecs whose 7-bit bytes are not ASCII text (escape sequences, UTF-16/32, UTF-7)."""
    return codec is not None and codec.replace("_", "-").startswith(
        ("utf-16", "utf-32", "utf-7", "iso2022", "hz"))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header_text(value: object) -> str:
    """A header value as readable text: unfolded, RFC 2047 decoded, raw 8-bit repaired."""
    if value is None:
        return ""
    text = _FOLD.sub("", str(value))
    if any("\udc80" <= ch <= "\udcff" for ch in text):  # raw 8-bit bytes kept by the parser
        text = decode_bytes(text.encode("ascii", "surrogateescape"))[0]
    if "=?" not in text:
        return text.strip()
    try:
        chunks = decode_header(text)
    except (ValueError, LookupError, AssertionError):
        return text.strip()
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset is None:  # the stdlib hands back unencoded text as raw-unicode-escape
            parts.append(chunk.decode("raw-unicode-escape", "replace"))
        else:
            parts.append(decode_bytes(chunk, charset)[0])
    decoded = "".join(parts)
    # Encoded words the stdlib left alone (malformed neighbours): decode one by one.
    return _ENCODED_WORD.sub(lambda m: decode_header_text_word(m.group(0)), decoded).strip()


def decode_header_text_word(word: str) -> str:
    """One encoded word, or the word itself when it does not decode."""
    try:
        ((chunk, charset),) = decode_header(word)
    except (ValueError, LookupError, AssertionError):
        return word
    return chunk if isinstance(chunk, str) else decode_bytes(chunk, charset)[0]
