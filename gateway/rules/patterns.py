"""Rule patterns on RE2: matching time grows linearly with the text, never exponentially.

An admin's ``matches`` pattern runs on text a stranger wrote. Python's ``re`` backtracks, so a
pattern like ``(a+)+$`` and a crafted body never finish. RE2 (``google-re2``) has no
backtracking; it rejects what needs it (look-around, back-references), and we reject patterns
whose compiled program is so big that even linear matching would crawl. Errors are worded
for the admin, with the RE2 name of the problem.
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["MAX_PROGRAM", "Pattern", "PatternError", "compile_pattern"]

MAX_PROGRAM = 2000
"""RE2 instructions a pattern may compile to. Keyword lists of 60 words take about 450; the
cost of the worst pattern of this size stays near seconds per megabyte of text."""

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are reported by `ticketgate check`, not on stderr

_HINTS = (  # RE2's message starts with ... -> what to tell the admin
    ("invalid perl operator: (?=", "look-ahead (?=...) is not supported"),
    ("invalid perl operator: (?!", "look-ahead (?!...) is not supported"),
    ("invalid perl operator: (?<=", "look-behind (?<=...) is not supported"),
    ("invalid perl operator: (?<!", "look-behind (?<!...) is not supported"),
    ("invalid perl operator: (?x", "verbose mode (?x) is not supported"),
    ("invalid perl operator: (?#", "comments (?#...) are not supported"),
    ("invalid escape sequence: \\Z", "\\Z is not supported: use \\z for the end of the text"),
    ("bad repetition operator", "possessive or doubled quantifiers (a++, a*+) are not supported"),
    ("invalid repetition size", "a repetition count above 1000 is not supported"),
    ("pattern too large", "the pattern is too large"),
)


class PatternError(ValueError):
    """A pattern RE2 cannot take, or one too complex to run on big mails."""


class Pattern:
    """A compiled rule pattern: searched anywhere in a text, in linear time."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str, compiled: Any) -> None:
        self.pattern = pattern
        self._compiled = compiled

    def search(self, text: str) -> bool:
        """Whether the pattern matches somewhere in text (lone surrogates count as U+FFFD).

        >>> Pattern("x", re2.compile("b.c")).search("ab\\udcffc")
        True
        """
        try:
            return self._compiled.search(text) is not None
        except UnicodeEncodeError:  # raw 8-bit bytes kept as surrogates: RE2 needs UTF-8
            clean = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self._compiled.search(clean) is not None

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"


def compile_pattern(pattern: str) -> Pattern:
    """The compiled pattern, or PatternError saying what the admin must change.

    >>> compile_pattern("(?i)urgent|dringend").search("Sehr DRINGEND!")
    True
    >>> def problem(pattern):
    ...     try:
    ...         compile_pattern(pattern)
    ...     except PatternError as exc:
    ...         return str(exc)
    >>> problem("(?<=re: )x")
    'look-behind (?<=...) is not supported (RE2: invalid perl operator: (?<=)'
    >>> problem(r"(a)\\1")
    'back-references (\\\\1) are not supported (RE2: invalid escape sequence: \\\\1)'
    """
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise PatternError(_explain(exc)) from None
    except (TypeError, ValueError, UnicodeError) as exc:  # e.g. lone surrogates
        raise PatternError(f"cannot be compiled: {exc}") from None
    size = int(compiled.programsize)
    if size > MAX_PROGRAM:
        raise PatternError(f"too complex: compiles to {size} RE2 instructions, at most "
                           f"{MAX_PROGRAM} (write it shorter, e.g. fewer or smaller {{m,n}})")
    return Pattern(pattern, compiled)


def _explain(exc: Exception) -> str:
    """RE2's error in words an admin can act on, with RE2's own words kept."""
    raw = exc.args[0] if exc.args else str(exc)
    said = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for start, hint in _HINTS:
        if said.startswith(start):
            return f"{hint} (RE2: {said})"
    if said.startswith("invalid escape sequence: \\") and said[-1:].isdigit():
        return f"back-references (\\{said[-1]}) are not supported (RE2: {said})"
    return f"not an RE2 pattern: {said}"
