"""Charset guessing for unlabelled 8-bit text: the mail's own charsets first, then languages.

A raw 8-bit subject or file name says nothing about its charset, and a few bytes are too
little for statistical detectors (charset-normalizer reads short GB2312 as EUC-KR). The
same bytes often decode cleanly in several CJK charsets, so decoding alone cannot decide.
We rank the candidates that decode cleanly by how plausible their text is, with a head
start for the charsets the mail itself declares and their relatives:

* the charsets of its parts, its multipart ``charset`` parameters and encoded words;
* the likely charsets of the same language (``gb2312`` → ``gb18030``, ``iso-2022-jp`` →
  ``cp932``/``euc-jp``, ``euc-kr`` → ``cp949``, ``big5`` → ``cp950``);
* then the common charsets of mail, Western first.

Plausibility uses what the code tables themselves tell: each CJK table lists its common
characters first (GB2312 level 1, Big5 level 1, JIS level 1, the 2,350 KS X 1001 syllables),
so a misread lands on rare characters, private-use codes, kana inside Chinese or half-width
katakana; a Latin misread of Cyrillic or CJK shows as words of accented capitals or symbols.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable

# Charset families: the language's charsets, most common first (Python codec names).
FAMILIES: dict[str, tuple[str, ...]] = {
    "zh-hans": ("gb18030",),
    "zh-hant": ("big5", "cp950", "big5hkscs"),
    "ja": ("cp932", "euc_jp", "euc_jis_2004"),
    "ko": ("cp949",),
    "ru": ("cp1251", "koi8_r", "koi8_u", "iso8859_5"),
    "latin": ("cp1252", "iso8859_15", "iso8859_2", "cp1250"),
}
_FAMILY_OF = {codec: family for family, codecs in FAMILIES.items() for codec in codecs}
_FAMILY_OF.update({"gbk": "zh-hans", "gb2312": "zh-hans", "hz": "zh-hans", "shift_jis": "ja",
                   "shift_jis_2004": "ja", "iso2022_jp": "ja", "iso2022_jp_ext": "ja",
                   "iso2022_jp_2": "ja", "iso2022_jp_2004": "ja", "euc_kr": "ko", "johab": "ko",
                   "iso2022_kr": "ko", "latin_1": "latin", "iso8859_1": "latin"})
GENERIC = ("cp1252", "gb18030", "cp932", "euc_jp", "big5", "cp949", "cp1251", "koi8_r",
           "iso8859_2")
_CJK = {"zh-hans", "zh-hant", "ja", "ko"}
_DECLARED_BONUS = 0.5
_RELATIVE_BONUS = 0.3
_BEST_POSSIBLE = 1.2  # the highest plausibility a text can have (see _hangul)
_SAMPLE = 600  # characters scored: plenty for a verdict, bounded for long bodies
_TYPOGRAPHY = frozenset("€„“”‚‘’–—…«»°§©®™×÷±µ·¡¿ªº•")
# Letters by category, but in text they are misreads: ƒ ˆ ˜ (cp1252), the spacing
# diacritics of ISO-8859-2 (ˇ ˘ ˛ ˝ ˙).
_RARE_LETTERS = frozenset("ƒˆ˜ˇ˘˛˝˙")
_FULLWIDTH_PUNCT = (0x3000, 0x303F, 0xFF01, 0xFF5E)
# Hangul jamo (indexes of initial, medial, final) that ordinary Korean rarely writes.
_RARE_INITIALS = frozenset({8, 13})  # ㅃ ㅉ
_RARE_MEDIALS = frozenset({3, 10, 15})  # ㅒ ㅙ ㅞ
_RARE_FINALS = frozenset({2, 3, 5, 6, 9, 10, 11, 12, 13, 14, 15, 18, 24, 26})


def family(codec: str) -> str | None:
    """The language family of a codec, or None for one we know nothing about.

    >>> family("gb18030"), family("cp932"), family("utf_8")
    ('zh-hans', 'ja', None)
    """
    return _FAMILY_OF.get(codec.replace("-", "_"))


def candidates(hints: Iterable[str]) -> list[tuple[str, float]]:
    """Codecs to try with their head start: declared, then relatives, then generic."""
    ranked: dict[str, float] = {}
    declared = [h.replace("-", "_") for h in hints if h]
    for codec in declared:
        ranked.setdefault(codec, _DECLARED_BONUS)
    for codec in declared:
        for relative in FAMILIES.get(family(codec) or "", ()):
            ranked.setdefault(relative, _RELATIVE_BONUS)
    for codec in GENERIC:
        ranked.setdefault(codec, 0.0)
    return list(ranked.items())


def best_charset(data: bytes, hints: Iterable[str] = ()) -> str | None:
    """The codec whose clean decoding of data reads most plausibly, or None if none is clean.

    >>> best_charset("会議の資料".encode("cp932")), best_charset("请查收附件".encode("gb18030"))
    ('cp932', 'gb18030')
    >>> best_charset("회의 자료".encode("cp949")), best_charset("Grüße".encode("latin-1"))
    ('cp949', 'cp1252')
    """
    best: tuple[float, int, str] | None = None
    for rank, (codec, bonus) in enumerate(candidates(hints)):
        if best is not None and best[0] >= _BEST_POSSIBLE + bonus:
            break  # candidates come in falling head start: none after this can win
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        found = (plausibility(text, codec) + bonus, -rank, codec)
        if best is None or found > best:
            best = found
    return best[2] if best else None


def plausibility(text: str, codec: str) -> float:
    """How much text decoded with codec looks like real writing: about -3 (junk) to 1.2."""
    kin = family(codec) or ""
    sample = text[:_SAMPLE]
    total = 0.0
    weight = 0
    for i, ch in enumerate(sample):
        if ch.isascii():
            continue
        prev = sample[i - 1] if i else ""
        nxt = sample[i + 1] if i + 1 < len(sample) else ""
        total += _char_score(ch, prev, nxt, kin)
        weight += 1
    if kin not in _CJK:
        total -= _word_penalty(sample)
    return total / weight if weight else 0.0


def _char_score(ch: str, prev: str, nxt: str, kin: str) -> float:
    """One decoded non-ASCII character, in the context of its neighbours."""
    code = ord(ch)
    category = unicodedata.category(ch)
    if category[0] == "C":  # controls, private use, unassigned
        return -3.0
    if 0xFF61 <= code <= 0xFF9F:  # half-width katakana: real only in runs
        return 0.5 if _halfwidth(prev) or _halfwidth(nxt) else -1.0
    if 0x3040 <= code <= 0x30FF:
        return 1.0 if kin == "ja" else -1.0
    if 0xAC00 <= code <= 0xD7A3:
        return _hangul(ch) if kin == "ko" else -1.0
    if 0x4E00 <= code <= 0x9FFF:
        return _han(ch, prev, nxt, kin)
    if 0x3130 <= code <= 0x318F or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return -1.0  # isolated jamo, rare and compatibility ideographs
    if _FULLWIDTH_PUNCT[0] <= code <= _FULLWIDTH_PUNCT[1] or \
            _FULLWIDTH_PUNCT[2] <= code <= _FULLWIDTH_PUNCT[3]:
        return 0.5 if kin in _CJK else -1.0
    if category[0] == "L" and ch not in _RARE_LETTERS:
        if kin in _CJK:
            return -1.0  # Greek, Cyrillic, Latin out of a CJK table
        if prev.isalpha() and prev.islower() and ch.isupper():
            return -1.0  # "ÃŸ", "пРИВЕТ": case flipping inside a word
        if _script(ch) != "LATIN" and _ascii_letter(prev + nxt):
            return -1.0  # Cyrillic or Greek glued to Latin letters: "йF"
        return 1.0
    return 0.0 if ch in _TYPOGRAPHY else -0.7


def _han(ch: str, prev: str, nxt: str, kin: str) -> float:
    """A CJK ideograph: common in the table it came from, or a sign of a misread."""
    if (prev.isascii() and prev.isalpha()) or (nxt.isascii() and nxt.isalpha()):
        return -1.0  # glued to Latin letters: "礪ger"
    if kin == "ko":
        return -0.5  # Hanja: rare in today's Korean
    if kin not in _CJK:
        return -1.0
    level = _level(ch, kin)
    if " " in (prev, nxt):
        level = min(level, 0.0)  # Chinese and Japanese put no spaces between words
    return level


def _level(ch: str, kin: str) -> float:
    """1 for a character of the table's common level, 0.3 for the second, -0.5 beyond."""
    try:
        if kin == "zh-hans":
            lead = ch.encode("gb2312")[0]
            return 1.0 if lead <= 0xD7 else 0.3
        if kin == "zh-hant":
            lead = ch.encode("big5")[0]
            return 1.0 if lead <= 0xC6 else 0.3
        lead = ch.encode("cp932")[0]
    except UnicodeEncodeError:
        return -0.5
    return 1.0 if 0x88 <= lead <= 0x98 else 0.3 if lead <= 0xEA else -0.5


def _hangul(ch: str) -> float:
    """A Hangul syllable: plausible unless outside KS X 1001 or built from rare jamo."""
    try:
        ch.encode("euc_kr")
    except UnicodeEncodeError:
        return -1.0  # only in the UHC extension: almost never written
    index = ord(ch) - 0xAC00
    initial, medial, final = index // 588, index % 588 // 28, index % 28
    if initial in _RARE_INITIALS or medial in _RARE_MEDIALS or final in _RARE_FINALS:
        return 0.2
    return 1.2


def _ascii_letter(chars: str) -> bool:
    return any(ch.isascii() and ch.isalpha() for ch in chars)


def _halfwidth(ch: str) -> bool:
    return bool(ch) and 0xFF61 <= ord(ch) <= 0xFF9F


def _script(ch: str) -> str:
    return unicodedata.name(ch, "?").split(" ")[0]


def _word_penalty(text: str) -> float:
    """Single-byte readings: words of accented capitals only ("ÔÅÓÔ" is KOI8-R "тест"),
    capitals inside words.

    All-caps Cyrillic words weigh a little too: lower-case KOI8-R read as windows-1251
    comes out in capitals, and the other way round.
    """
    penalty = 0.0
    letters = "".join(ch if ch.isalpha() and ch not in _RARE_LETTERS else " " for ch in text)
    for word in letters.split():
        # "ÖěéFťů": an ASCII capital right after a lower-case letter inside a word
        penalty += sum(1.0 for a, b in itertools.pairwise(word)
                       if a.islower() and b.isupper() and b.isascii())
        if len(word) < 3 or not word.isupper() or any(ch.isascii() for ch in word):
            continue
        penalty += (1.5 if _script(word[0]) == "LATIN" else 0.3) * len(word)
    return penalty
