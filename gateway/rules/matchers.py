"""Matchers: small tests of one value that can say why they held or not.

A matcher composes its reason only when asked (its second argument), so evaluating many
rules stays cheap and explanations stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from functools import lru_cache
from typing import Any

from gateway.rules.model import Matcher
from gateway.rules.patterns import Pattern


@lru_cache(maxsize=512)
def _fold_short(text: str) -> str:
    return text.casefold()


@lru_cache(maxsize=4)
def _fold_long(text: str) -> str:
    return text.casefold()


def fold(text: str) -> str:
    """Case-folded text, cached: the same subject is folded once for all rules.

    Long texts (bodies) get a cache of their own that holds only the last few, so a run of
    big mails never keeps hundreds of folded megabytes alive.
    """
    return _fold_short(text) if len(text) <= 4096 else _fold_long(text)


def _norm(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


def _show(value: Any) -> str:
    text = repr(value[:80] if isinstance(value, str) else value)
    return text if len(text) <= 60 else text[:57] + "...'"


def equals(expected: Any) -> Matcher:
    """Equal (strings compared without case)."""
    want = _norm(expected)

    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok = _norm(value) == want
        return ok, f"{_show(value)} {'equals' if ok else 'is not'} {_show(expected)}" if why else ""
    return test


def one_of(options: Sequence[Any]) -> Matcher:
    """One of the options."""
    folded = {_norm(o) for o in options}

    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok = _norm(value) in folded
        return ok, f"{_show(value)} {'in' if ok else 'not in'} {_show(list(options))}" if why else ""
    return test


def contains(needle: str) -> Matcher:
    """Contains the text (without case)."""
    folded = needle.casefold()

    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok = folded in fold(str(value or ""))
        return ok, f"{_show(value)} {'contains' if ok else 'does not contain'} {needle!r}" if why else ""
    return test


def starts_with(prefix: str) -> Matcher:
    """Starts with the text (without case)."""
    folded = prefix.casefold()

    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok = fold(str(value or "")).startswith(folded)
        if not why:
            return ok, ""
        return ok, f"{_show(value)} {'starts' if ok else 'does not start'} with {prefix!r}"
    return test


def matches(pattern: Pattern) -> Matcher:
    """The regular expression matches somewhere in the value (RE2: linear time)."""
    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok = pattern.search(str(value or ""))
        if not why:
            return ok, ""
        return ok, f"{_show(value)} {'matches' if ok else 'does not match'} /{pattern.pattern}/"
    return test


def negate(inner: Matcher) -> Matcher:
    """Holds when inner does not."""
    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok, reason = inner(value, why)
        return not ok, f"not ({reason})" if why else ""
    return test


def every(inner: Sequence[Matcher]) -> Matcher:
    """All of the matchers hold."""
    def test(value: Any, why: bool) -> tuple[bool, str]:
        reasons = []
        for matcher in inner:
            ok, reason = matcher(value, why)
            reasons.append(reason)
            if not ok:
                return False, reason
        return True, " and ".join(reasons)
    return test


def some(inner: Sequence[Matcher]) -> Matcher:
    """At least one of the matchers holds."""
    def test(value: Any, why: bool) -> tuple[bool, str]:
        reasons = []
        for matcher in inner:
            ok, reason = matcher(value, why)
            if ok:
                return True, reason
            reasons.append(reason)
        return False, " and ".join(reasons) or "no alternatives"
    return test


def any_item(inner: Matcher, what: str) -> Matcher:
    """For many-valued facts (To, CC, attachments): one item must match."""
    def test(values: Any, why: bool) -> tuple[bool, str]:
        items = values or ()
        for item in items:
            ok, reason = inner(item, why)
            if ok:
                return True, reason
        return False, f"no {what} matched" if items else f"no {what}"
    return test


def between(start: time, end: time) -> Matcher:
    """A time of day in [start, end); wraps past midnight when end < start."""
    def test(value: Any, why: bool) -> tuple[bool, str]:
        if value is None:
            return False, "no time"
        now = value.time() if isinstance(value, datetime) else value
        ok = start <= now < end if start <= end else (now >= start or now < end)
        span = f"{start:%H:%M}-{end:%H:%M}"
        return ok, f"{now:%H:%M} {'within' if ok else 'outside'} {span}"
    return test
