"""Rule compiler: TOML conditions and actions into tested matchers, with located errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any

from gateway.configmodels import SOURCES
from gateway.durations import MAX_AHEAD, parse_duration
from gateway.intake.addresses import address_problem
from gateway.rules import matchers as r
from gateway.rules.model import STORE_FACTS, WEEKDAYS, Condition, Facts, Matcher
from gateway.rules.patterns import Pattern, PatternError, compile_pattern
from gateway.statuses import STATUSES

AUDIENCES = ("customer", "agents", "owner", "watchers")
RULE_KEYS = {"name", "on", "when", "then", "stop", "enabled"}
OPERATORS = {"equals", "in", "contains", "starts_with", "matches", "not", "any", "all"}


@dataclass(frozen=True)
class Vocabulary:
    """What names rules may refer to: channels, agents, templates."""

    channels: frozenset[str] = frozenset({"support"})
    agents: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()



class Invalid(Exception):
    """A rule that does not validate: the key path and what is wrong with it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


# --- value matchers -------------------------------------------------------------------------

def _matcher(key: str, spec: Any, check: Callable[[str, Any], Any] | None = None) -> Matcher:
    """A matcher from TOML: scalar = equals, array = in, table = operators (all must hold)."""
    if isinstance(spec, list):
        for item in spec:
            _literal(key, item, check)
        return r.one_of(spec)
    if not isinstance(spec, dict):
        _literal(key, spec, check)
        return r.equals(spec)
    if not spec:
        raise Invalid(key, "empty condition table")
    parts: list[Matcher] = []
    for op, arg in spec.items():
        where = f"{key}.{op}"
        if op not in OPERATORS:
            raise Invalid(where, f"unknown operator {op!r} (use one of {', '.join(sorted(OPERATORS))})")
        if op == "equals":
            single = arg if not isinstance(arg, list | dict) else _bad(where, arg)
            parts.append(_matcher(where, single, check))
        elif op == "in":
            if not isinstance(arg, list):
                raise Invalid(where, f"needs an array, got {arg!r}")
            parts.append(_matcher(where, arg, check))
        elif op in ("contains", "starts_with"):
            if not isinstance(arg, str):
                raise Invalid(where, f"needs a string, got {arg!r}")
            parts.append(r.contains(arg) if op == "contains" else r.starts_with(arg))
        elif op == "matches":
            parts.append(r.matches(_regex(where, arg)))
        elif op == "not":
            parts.append(r.negate(_matcher(where, arg, check)))
        else:  # any / all
            if not isinstance(arg, list) or not arg:
                raise Invalid(where, f"needs a non-empty array of conditions, got {arg!r}")
            inner = [_matcher(f"{where}[{i}]", a, check) for i, a in enumerate(arg)]
            parts.append(r.some(inner) if op == "any" else r.every(inner))
    return parts[0] if len(parts) == 1 else r.every(parts)


def _bad(key: str, value: Any) -> Any:
    raise Invalid(key, f"needs a single value, got {value!r}")


def _literal(key: str, value: Any, check: Callable[[str, Any], Any] | None) -> None:
    if isinstance(value, dict | list):
        raise Invalid(key, f"needs a single value, got {value!r}")
    if check is not None:
        check(key, value)


def _regex(key: str, pattern: Any) -> Pattern:
    """A pattern in RE2 syntax (linear time): look-around and back-references are refused."""
    if not isinstance(pattern, str):
        raise Invalid(key, f"needs a regular expression string, got {pattern!r}")
    try:
        return compile_pattern(pattern)
    except PatternError as exc:
        raise Invalid(key, f"bad regular expression {pattern!r}: {exc}") from None


def _one_of(options: Sequence[str], what: str) -> Callable[[str, Any], Any]:
    """A check that also answers with the name as configured ("HOTLINE" -> "hotline")."""
    canonical = {o.casefold(): o for o in options}

    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value.casefold() not in canonical:
            raise Invalid(key, f"unknown {what} {value!r} (known: {', '.join(sorted(options))})")
        return canonical[value.casefold()]
    return check


def typed(kind: type) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Invalid(key, f"needs {kind.__name__}, got {value!r}")
    return check


# --- conditions -----------------------------------------------------------------------------

def _person_matcher(key: str, spec: Any) -> Matcher:
    """Address conditions: a plain matcher applies to the address; address/domain/name keys
    apply to those parts."""
    if isinstance(spec, dict):
        strange = sorted(set(spec) - {"address", "domain", "name"} - OPERATORS)
        if strange:
            raise Invalid(f"{key}.{strange[0]}", "unknown key (use address, domain, name, "
                           f"or an operator: {', '.join(sorted(OPERATORS))})")
    if isinstance(spec, dict) and set(spec) & {"address", "domain", "name"}:
        extra = set(spec) - {"address", "domain", "name"}
        if extra:
            raise Invalid(f"{key}.{sorted(extra)[0]}", "mix of address parts and operators")
        parts: list[Matcher] = []
        for part, sub in spec.items():
            inner = _matcher(f"{key}.{part}", sub)
            parts.append(_project(inner, part))
        return r.every(parts)
    return _project(_matcher(key, spec), "address")


def _project(inner: Matcher, attribute: str) -> Matcher:
    def test(person: Any, why: bool) -> tuple[bool, str]:
        if person is None:
            return False, "no sender"
        ok, reason = inner(getattr(person, attribute), why)
        return ok, f"{attribute} {reason}" if why else ""
    return test


FactTest = Callable[[Facts, bool], tuple[bool, str]]


def _fact(getter: Callable[[Facts], Any], matcher: Matcher) -> FactTest:
    return lambda facts, why: matcher(getter(facts), why)


def condition(key: str, spec: Any, vocab: Vocabulary) -> Condition:
    """One when.KEY = SPEC, compiled (key is the full path, its last part the condition)."""
    name = key.rpartition(".")[2]
    simple: dict[str, tuple[Callable[[Facts], Any], Callable[[str, Any], Any] | None]] = {
        "source": (lambda f: f.source, _one_of(SOURCES, "source")),
        "channel": (lambda f: f.channel, _one_of(sorted(vocab.channels), "channel")),
        "mailbox": (lambda f: f.mailbox, typed(str)),
        "subject": (lambda f: f.subject, typed(str)),
        "body": (lambda f: f.body, typed(str)),
        "organisation": (lambda f: f.organisation or "", typed(str)),
        "status": (lambda f: f.status, _one_of(STATUSES, "status")),
        "priority": (lambda f: f.priority, _priority),
        "author": (lambda f: f.author, _one_of(("agent", "customer"), "author")),
        "customer": (lambda f: "known" if f.customer_known else "new", _one_of(("known", "new"), "customer")),
        "has_attachment": (lambda f: bool(f.attachments), typed(bool)),
        "auto_submitted": (lambda f: f.auto_submitted, typed(bool)),
        "sla": (lambda f: f.sla, _one_of(("first_response", "resolution"), "SLA target")),
        "weekday": (lambda f: WEEKDAYS[f.local_time.weekday()] if f.local_time else "",
                    _one_of(WEEKDAYS, "weekday")),
    }
    if name in simple:
        getter, check = simple[name]
        return Condition(key, _fact(getter, _matcher(key, spec, check)), name in STORE_FACTS)
    if name == "from":
        return Condition(key, _fact(lambda f: f.sender, _person_matcher(key, spec)))
    if name in ("to", "cc"):
        matcher = r.any_item(_person_matcher(key, spec), f"{name} address")
        return Condition(key, _fact(lambda f: getattr(f, name), matcher))
    if name == "header":
        return _headercondition(key, spec)
    if name == "attachment":
        return _attachmentcondition(key, spec)
    if name == "time":
        return Condition(key, _fact(lambda f: f.local_time, _time_matcher(key, spec)))
    if name in ("any", "all", "not"):
        return _group(key, name, spec, vocab)
    known = sorted([*simple, "from", "to", "cc", "header", "attachment", "time", "any", "all", "not"])
    raise Invalid(key, f"unknown condition {name!r} (known: {', '.join(known)})")


def _priority(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 9:
        raise Invalid(key, f"priority must be 1-9, got {value!r}")


def _headercondition(key: str, spec: Any) -> Condition:
    if not isinstance(spec, dict) or not spec:
        raise Invalid(key, 'needs a table of header names, e.g. when.header = { "X-Source" = "portal" }')
    tests: list[FactTest] = []
    for header, sub in spec.items():
        matcher = _matcher(f"{key}.{header}", sub)
        lower = header.lower()

        def test(facts: Facts, why: bool, m: Matcher = matcher, h: str = lower,
                 label: str = header) -> tuple[bool, str]:
            values = facts.headers.get(h) or [""]
            results = [m(v, why) for v in values]
            ok = any(ok for ok, _ in results)
            reason = next((w for good, w in results if good), results[0][1])
            return ok, f"{label}: {reason}" if why else ""
        tests.append(test)  # default arguments bind this loop pass's values
    return Condition(key, r.every(tests))


def _attachmentcondition(key: str, spec: Any) -> Condition:
    if not isinstance(spec, dict) or not spec or set(spec) - {"name", "type"}:
        raise Invalid(key, "needs a table with name and/or type, e.g. { name = { matches = '\\.pdf$' } }")
    parts = [_project(_matcher(f"{key}.{part}", sub), part) for part, sub in spec.items()]
    return Condition(key, _fact(lambda f: f.attachments, r.any_item(r.every(parts), "attachment")))


def _time_matcher(key: str, spec: Any) -> Matcher:
    if not isinstance(spec, dict) or set(spec) != {"between"}:
        raise Invalid(key, 'needs { between = ["18:00", "08:00"] }')
    span = spec["between"]
    if not isinstance(span, list) or len(span) != 2:
        raise Invalid(f"{key}.between", f"needs two times, got {span!r}")
    start, end = (_clock(f"{key}.between", s) for s in span)
    return r.between(start, end)


def _clock(key: str, value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = map(int, value.split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise Invalid(key, f"needs HH:MM times, got {value!r}")


def _group(key: str, name: str, spec: Any, vocab: Vocabulary) -> Condition:
    blocks = spec if isinstance(spec, list) else [spec]
    if name == "not" and not isinstance(spec, dict):
        raise Invalid(key, "needs a table of conditions")
    if name != "not" and (not isinstance(spec, list) or not spec):
        raise Invalid(key, "needs a non-empty array of condition tables")
    compiled = []
    store = False
    for i, block in enumerate(blocks):
        where = key if name == "not" else f"{key}[{i}]"
        if not isinstance(block, dict) or not block:
            raise Invalid(where, "needs a table of conditions")
        inner = [condition(f"{where}.{k}", v, vocab) for k, v in block.items()]
        store = store or any(c.store for c in inner)
        compiled.append(r.every([c.test for c in inner]))

    def test(facts: Facts, why: bool) -> tuple[bool, str]:
        results = [c(facts, why) for c in compiled]
        if name == "not":
            ok, reason = results[0]
            return not ok, f"not ({reason})" if why else ""
        hit = [w for ok, w in results if ok]
        if name == "any":
            return bool(hit), hit[0] if hit else " / ".join(w for _, w in results)
        missed = [w for ok, w in results if not ok]
        return not missed, missed[0] if missed else "; ".join(hit)
    return Condition(key, test, store)


# --- actions --------------------------------------------------------------------------------

def actions(spec: Any, vocab: Vocabulary) -> dict[str, Any]:
    if not isinstance(spec, dict) or not spec:
        raise Invalid("then", "needs at least one action, e.g. then.priority = 8")
    out: dict[str, Any] = {}
    for name, value in spec.items():
        key = f"then.{name}"
        if name == "channel":
            value = _one_of(sorted(vocab.channels), "channel")(key, value)
        elif name == "priority":
            _priority(key, value)
        elif name == "activity_type":
            if not isinstance(value, str) or not value.strip():
                raise Invalid(key, f"needs a non-empty string, got {value!r}")
        elif name == "owner":
            value = _one_of(sorted(vocab.agents), "agent")(key, value)
        elif name == "status":
            value = _one_of(STATUSES, "status")(key, value)
        elif name in ("category", "tag"):
            value = _strings(key, value)
        elif name == "add_watcher":
            value = _strings(key, value)
            for address in value:
                problem = address_problem(address)
                if problem is not None:
                    raise Invalid(key, f"{address!r} is not a valid address: {problem}")
        elif name == "auto_reply":
            if value is not False:
                value = _one_of(sorted(vocab.templates), "template")(key, value)
        elif name == "notify":
            value = [_notify(f"{key}[{i}]" if isinstance(spec[name], list) else key, n, vocab)
                     for i, n in enumerate(value if isinstance(value, list) else [value])]
        elif name == "drop":
            if value is not True and not (isinstance(value, str) and value):
                raise Invalid(key, f"needs true or a reason string, got {value!r}")
        elif name == "stop":
            typed(bool)(key, value)
        elif name == "remind":
            value = _remind(key, value)
        else:
            known = "activity_type, add_watcher, auto_reply, category, channel, drop, notify, " \
                    "owner, priority, remind, status, stop, tag"
            raise Invalid(key, f"unknown action {name!r} (known: {known})")
        out[name] = value
    return out


def _strings(key: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise Invalid(key, f"needs a string or an array of strings, got {value!r}")
    return list(items)


def _notify(key: str, value: Any, vocab: Vocabulary) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"template", "audience"}:
        raise Invalid(key, 'needs { template = "agent/new_ticket", audience = "agents" }')
    template = _one_of(sorted(vocab.templates), "template")(f"{key}.template", value["template"])
    audience = _one_of(AUDIENCES, "audience")(f"{key}.audience", value["audience"])
    if audience in ("customer", "watchers") and template.startswith("agent/"):
        raise Invalid(f"{key}.template", f"{template!r} is written for agents, not for {audience}")
    return {"template": template, "audience": audience}


def _remind(key: str, value: Any) -> dict[str, Any]:
    """then.remind = "2d" or { after = "4h", note = "call back" }: a reminder for the agents."""
    spec = value if isinstance(value, dict) else {"after": value}
    if set(spec) - {"after", "note"} or "after" not in spec:
        raise Invalid(key, 'needs a duration or { after = "2d", note = "..." }')
    note = spec.get("note", "")
    if not isinstance(note, str):
        raise Invalid(f"{key}.note", f"needs a string, got {note!r}")
    after = spec["after"]
    where = f"{key}.after" if isinstance(value, dict) else key
    span = parse_duration(after) if isinstance(after, str) else None
    if span is None or not span.total_seconds() > 0 or span > MAX_AHEAD:
        raise Invalid(where, f"needs a duration such as \"30m\", \"4h\", \"2d\", \"1w\", got {after!r}")
    return {"after_minutes": int(span.total_seconds() // 60), "note": note}
