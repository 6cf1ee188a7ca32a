"""Charset repair: decode bytes whose label is wrong, missing or unknown into the right text."""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from email.header import decode_header
from email.message import Message
from functools import cached_property
from typing import overload

from charset_normalizer import from_bytes

from gateway.intake.guessing import best_charset, candidates, plausibility
from gateway.intake.iso2022 import decode_iso2022_jp, iso2022_family

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
    "iso-2022-jp": "iso2022_jp_ext",  # decoded with the vendor extensions (gateway.intake.iso2022)
    "csiso2022jp": "iso2022_jp_ext",
    "iso-2022-jp-ms": "iso2022_jp_ext",
    "cp50220": "iso2022_jp_ext",
    "cp50221": "iso2022_jp_ext",
    "cp50222": "iso2022_jp_ext",
    "windows-31j": "cp932",
    "ms_kanji": "cp932",
    "cp936": "gb18030",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-user-defined": "cp1252",
}
# Codecs whose superset decodes the same text plus what senders really put in.
_SUPERSETS = {"shift_jis": "cp932", "euc_kr": "cp949", "gb2312": "gb18030", "gbk": "gb18030",
              "iso8859-1": "cp1252", "iso2022_jp": "iso2022_jp_ext"}
_SINGLE_BYTE = {"cp1252", "iso8859-15", "iso8859-2", "cp1250", "cp1251", "koi8-r", "ascii"}
_UTF8_BONUS = 0.4  # valid UTF-8 is a strong sign, a declared charset a little stronger
_LONG = 40  # high bytes from which charset-normalizer's language models are reliable
_WORD_CHARSET = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?[bBqQ]\?")
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
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    return _SUPERSETS.get(codec, codec)


def decode_bytes(data: bytes, label: str | None = None,
                 hints: Sequence[str] = ()) -> tuple[str, str | None]:
    """Text from data and, when the label could not be trusted, a note saying what was done.

    hints are the codecs the mail declares elsewhere (``declared_charsets``): where the label
    is missing or wrong, they are tried before any generic guess.

    >>> decode_bytes("Grüße".encode("latin-1"), "us-ascii")
    ('Grüße', "charset 'us-ascii' did not fit; decoded as cp1252")
    >>> decode_bytes("Grüße".encode("utf-8"), "iso-8859-1")
    ('Grüße', "charset 'iso-8859-1' did not fit; decoded as utf-8")
    >>> decode_bytes("会議".encode("cp932"), None, ["iso2022_jp"])
    ('会議', None)
    """
    if not data:
        return "", None
    codec = codec_for(label)
    if data.isascii():
        escaped = _iso2022(data)
        if escaped is not None:
            return escaped, _note(label, "iso-2022-jp", codec is not None and codec.startswith("iso2022"))
        if not _escaping(codec):
            return data.decode("ascii"), None
    if codec is not None:
        if codec.startswith("iso2022_jp"):
            text = decode_iso2022_jp(data)
            if text is not None:
                return text, None
        # A single-byte label on valid multi-byte UTF-8 is almost always a mislabel.
        elif codec in _SINGLE_BYTE and codec != "ascii" and _is_utf8(data):
            return data.decode("utf-8"), f"charset {label!r} did not fit; decoded as utf-8"
        else:
            try:
                return data.decode(codec), None
            except (UnicodeDecodeError, LookupError):
                pass
    guess = guess_charset(data, [codec, *hints] if codec else hints)
    return data.decode(guess, errors="replace"), _note(label, guess, False)


def _note(label: str | None, used: str, fits: bool) -> str | None:
    return None if fits or not label else f"charset {label!r} did not fit; decoded as {used}"


def _iso2022(data: bytes) -> str | None:
    """7-bit data with ISO-2022 escape sequences, whatever its label says (or None)."""
    kind = iso2022_family(data)
    if kind == "jp":
        return decode_iso2022_jp(data)
    if kind == "kr":
        try:
            return data.decode("iso2022_kr")
        except UnicodeDecodeError:
            return None
    return None


def guess_charset(data: bytes, hints: Sequence[str] = ()) -> str:
    """The likeliest codec of 8-bit data without a usable label (see ``gateway.intake.guessing``).

    Valid UTF-8 with characters of three or more bytes is UTF-8; shorter sequences can be a
    CJK text in a charset the mail declares ('谢谢' in GB2312 is valid UTF-8 'лл'), so they
    compete with the declared charsets on plausibility. Long text without any declared charset
    goes to charset-normalizer's language models.
    """
    known = [h for h in hints if h]
    if _is_utf8(data):
        text = data.decode("utf-8")
        if not known or any(ord(ch) >= 0x800 for ch in text):
            return "utf-8"
        best = best_charset(data, known)
        if best is None or plausibility(text, "utf_8") + _UTF8_BONUS >= _scored(data, best, known):
            return "utf-8"
        return best
    if not known and sum(b > 127 for b in data) >= _LONG:
        found = from_bytes(data).best()
        if found is not None and codec_for(found.encoding) is not None:
            return found.encoding
    return best_charset(data, known) or "cp1252"


def _scored(data: bytes, codec: str, hints: Sequence[str]) -> float:
    """The ranking score best_charset gave codec (plausibility plus its head start)."""
    bonus = dict(candidates(hints)).get(codec, 0.0)
    return plausibility(data.decode(codec), codec) + bonus


class DeclaredCharsets(Sequence[str]):
    """The codecs a mail declares, looked up only when a guess needs them (most mails never)."""

    def __init__(self, msg: Message) -> None:
        self._msg = msg

    @cached_property
    def _codecs(self) -> list[str]:
        return declared_charsets(self._msg)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._codecs[index]

    def __len__(self) -> int:
        return len(self._codecs)


def declared_charsets(msg: Message) -> list[str]:
    """Codecs a mail declares anywhere: its parts, multipart parameters, encoded words."""
    found: dict[str, None] = {}
    for part in msg.walk():
        label = part.get_param("charset")
        if isinstance(label, str):
            codec = codec_for(label)
            if codec and codec != "ascii":
                found.setdefault(codec, None)
    for _name, value in msg.raw_items():
        for label in _WORD_CHARSET.findall(str(value)):
            codec = codec_for(label)
            if codec and codec != "ascii":
                found.setdefault(codec, None)
    return list(found)


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
_SURROGATE = re.compile("[\udc80-\udcff]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header_text(value: object, hints: Sequence[str] = ()) -> str:
    """A header value as readable text: unfolded, RFC 2047 decoded, raw 8-bit repaired.

    hints: the codecs the mail declares (``declared_charsets``), tried first for raw bytes.
    """
    if value is None:
        return ""
    text = _FOLD.sub("", str(value))
    if _SURROGATE.search(text):  # raw 8-bit bytes kept by the parser
        text = decode_bytes(text.encode("ascii", "surrogateescape"), None, hints)[0]
    elif "\x1b" in text:  # raw ISO-2022-JP: 7-bit, but not ASCII text
        text = decode_bytes(text.encode("ascii", "replace"), None, hints)[0]
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
            parts.append(decode_bytes(chunk, charset, hints)[0])
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
