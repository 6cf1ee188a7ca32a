"""The rules interpreter: rule records, the facts of an event, and one evaluate function.

Rules are data (parsed from ``rules/*.toml`` by ``gateway.rules.loader``). ``evaluate`` walks
them in order for one event and returns the actions to apply together with which rules
fired and why, condition by condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import lru_cache
from typing import Any

from gateway.intake.addresses import Address

EVENTS = ("message.received", "ticket.created", "ticket.status_changed", "ticket.reopened")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


Person = Address  # rules see the parsed address itself: address, name, domain


@dataclass(frozen=True)
class FileFact:
    """An attachment as rules see it."""

    name: str
    type: str


@dataclass
class Facts:
    """Everything a condition may look at, for one event."""

    source: str = "email"
    channel: str = "support"
    mailbox: str = ""
    sender: Person | None = None
    to: tuple[Person, ...] = ()
    cc: tuple[Person, ...] = ()
    subject: str = ""
    body: str = ""
    headers: dict[str, list[str]] = field(default_factory=dict)
    attachments: tuple[FileFact, ...] = ()
    organisation: str | None = None
    customer_known: bool = False
    status: str = "new"
    priority: int = 5
    author: str = "customer"  # customer | agent
    auto_submitted: bool = False
    local_time: datetime | None = None


# A matcher tests one value; asked to (second argument), it also says why. Reasons are only
# composed when wanted: evaluation of many rules stays cheap, explanations stay exact.
Matcher = Callable[[Any, bool], tuple[bool, str]]


@dataclass(frozen=True)
class Condition:
    """One when.* entry: a field, its matcher, and the text the admin wrote."""

    field: str
    test: Callable[[Facts, bool], tuple[bool, str]]


@dataclass(frozen=True)
class Rule:
    """One [[rule]] of a rule file."""

    name: str
    on: str
    conditions: tuple[Condition, ...]
    actions: dict[str, Any]
    stop: bool
    file: str
    line: int


@dataclass(frozen=True)
class RuleTrace:
    """How one rule fared: fired or not, each condition with its explanation."""

    rule: Rule
    fired: bool
    checks: tuple[tuple[str, bool, str], ...]


@dataclass
class Outcome:
    """Actions to apply (later rules override single values, lists accumulate) and the trace."""

    actions: dict[str, Any] = field(default_factory=dict)
    traces: list[RuleTrace] = field(default_factory=list)

    @property
    def fired(self) -> list[RuleTrace]:
        """Only the rules that fired."""
        return [t for t in self.traces if t.fired]

    @property
    def dropped(self) -> RuleTrace | None:
        """The rule that dropped the mail, if one did."""
        return next((t for t in self.fired if t.rule.actions.get("drop")), None)


LIST_ACTIONS = frozenset({"category", "add_watcher", "tag", "notify"})


def evaluate(rules: Sequence[Rule], event: str, facts: Facts, explain: bool = False) -> Outcome:
    """Apply every enabled rule listening to event, in order, until one says stop.

    Fired rules always carry their reasons; with explain, rules that did not fire do too.
    """
    outcome = Outcome()
    for rule in rules:
        if rule.on != event:
            continue
        fired = True
        for condition in rule.conditions:
            if not condition.test(facts, False)[0]:
                fired = False
                break
        if fired or explain:
            outcome.traces.append(RuleTrace(rule, fired, _checks(rule, facts)))
        if not fired:
            continue
        for key, value in rule.actions.items():
            if key in LIST_ACTIONS:
                outcome.actions.setdefault(key, []).extend(value)
            else:
                outcome.actions[key] = value
        if rule.stop or rule.actions.get("drop"):
            break
    return outcome


def _checks(rule: Rule, facts: Facts) -> tuple[tuple[str, bool, str], ...]:
    """Each condition with its verdict and reason, up to the first that failed."""
    checks = []
    for condition in rule.conditions:
        ok, why = condition.test(facts, True)
        checks.append((condition.field, ok, why))
        if not ok:
            break
    return tuple(checks)


# --- matchers over plain values -------------------------------------------------------------

@lru_cache(maxsize=512)
def fold(text: str) -> str:
    """Case-folded text, cached: the same subject is folded once for all rules."""
    return text.casefold()


def _norm(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


def _show(value: Any) -> str:
    text = repr(value)
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


def matches(pattern: re.Pattern[str]) -> Matcher:
    """The regular expression matches somewhere in the value."""
    def test(value: Any, why: bool) -> tuple[bool, str]:
        ok = pattern.search(str(value or "")) is not None
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
