"""Rule files: load rules/*.toml in name order, validate with file, line and key; hot reload.

A file that fails validation is reported and skipped; at run time the last good version of
that file stays in force, so a broken edit never stops mail intake.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from gateway import rules as r
from gateway.rules import Condition, Facts, Matcher, Rule

log = logging.getLogger("gateway.rules")

SOURCES = ("email", "portal", "api", "phone")
STATUSES = ("new", "open", "waiting_external", "waiting_internal", "resolved", "closed",
            "postponed")
AUDIENCES = ("customer", "agents", "owner", "watchers")
RULE_KEYS = {"name", "on", "when", "then", "stop", "enabled"}
OPERATORS = {"equals", "in", "contains", "starts_with", "matches", "not", "any", "all"}


@dataclass(frozen=True)
class Vocabulary:
    """What names rules may refer to: channels, agents, templates."""

    channels: frozenset[str] = frozenset({"support"})
    agents: frozenset[str] = frozenset()
    templates: frozenset[str] = frozenset()


def vocabulary(config: Any) -> Vocabulary:
    """The names a config makes known to rules (channels, agents, templates)."""
    from gateway.render import template_names

    return Vocabulary(
        channels=frozenset(c.name for c in config.channels),
        agents=frozenset(a.name for a in config.agents),
        templates=template_names(config.templates_folder),
    )


@dataclass
class RuleFileError:
    """One validation problem, located."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class _Invalid(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


# --- value matchers -------------------------------------------------------------------------

def _matcher(key: str, spec: Any, check: Callable[[str, Any], None] | None = None) -> Matcher:
    """A matcher from TOML: scalar = equals, array = in, table = operators (all must hold)."""
    if isinstance(spec, list):
        for item in spec:
            _literal(key, item, check)
        return r.one_of(spec)
    if not isinstance(spec, dict):
        _literal(key, spec, check)
        return r.equals(spec)
    if not spec:
        raise _Invalid(key, "empty condition table")
    parts: list[Matcher] = []
    for op, arg in spec.items():
        where = f"{key}.{op}"
        if op not in OPERATORS:
            raise _Invalid(where, f"unknown operator {op!r} (use one of {', '.join(sorted(OPERATORS))})")
        if op == "equals":
            single = arg if not isinstance(arg, list | dict) else _bad(where, arg)
            parts.append(_matcher(where, single, check))
        elif op == "in":
            if not isinstance(arg, list):
                raise _Invalid(where, f"needs an array, got {arg!r}")
            parts.append(_matcher(where, arg, check))
        elif op in ("contains", "starts_with"):
            if not isinstance(arg, str):
                raise _Invalid(where, f"needs a string, got {arg!r}")
            parts.append(r.contains(arg) if op == "contains" else r.starts_with(arg))
        elif op == "matches":
            parts.append(r.matches(_regex(where, arg)))
        elif op == "not":
            parts.append(r.negate(_matcher(where, arg, check)))
        else:  # any / all
            if not isinstance(arg, list) or not arg:
                raise _Invalid(where, f"needs a non-empty array of conditions, got {arg!r}")
            inner = [_matcher(f"{where}[{i}]", a, check) for i, a in enumerate(arg)]
            parts.append(r.some(inner) if op == "any" else r.every(inner))
    return parts[0] if len(parts) == 1 else r.every(parts)


def _bad(key: str, value: Any) -> Any:
    raise _Invalid(key, f"needs a single value, got {value!r}")


def _literal(key: str, value: Any, check: Callable[[str, Any], None] | None) -> None:
    if isinstance(value, dict | list):
        raise _Invalid(key, f"needs a single value, got {value!r}")
    if check is not None:
        check(key, value)


def _regex(key: str, pattern: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise _Invalid(key, f"needs a regular expression string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _Invalid(key, f"bad regular expression {pattern!r}: {exc}") from None


def _one_of(options: Sequence[str], what: str) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, str) or value.casefold() not in {o.casefold() for o in options}:
            raise _Invalid(key, f"unknown {what} {value!r} (known: {', '.join(sorted(options))})")
    return check


def _typed(kind: type) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _Invalid(key, f"needs {kind.__name__}, got {value!r}")
    return check


# --- conditions -----------------------------------------------------------------------------

def _person_matcher(key: str, spec: Any) -> Matcher:
    """Address conditions: a plain matcher applies to the address; address/domain/name keys
    apply to those parts."""
    if isinstance(spec, dict):
        strange = sorted(set(spec) - {"address", "domain", "name"} - OPERATORS)
        if strange:
            raise _Invalid(f"{key}.{strange[0]}", "unknown key (use address, domain, name, "
                           f"or an operator: {', '.join(sorted(OPERATORS))})")
    if isinstance(spec, dict) and set(spec) & {"address", "domain", "name"}:
        extra = set(spec) - {"address", "domain", "name"}
        if extra:
            raise _Invalid(f"{key}.{sorted(extra)[0]}", "mix of address parts and operators")
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


def _condition(key: str, spec: Any, vocab: Vocabulary) -> Condition:
    """One when.KEY = SPEC, compiled (key is the full path, its last part the condition)."""
    name = key.rpartition(".")[2]
    simple: dict[str, tuple[Callable[[Facts], Any], Callable[[str, Any], None] | None]] = {
        "source": (lambda f: f.source, _one_of(SOURCES, "source")),
        "channel": (lambda f: f.channel, _one_of(sorted(vocab.channels), "channel")),
        "mailbox": (lambda f: f.mailbox, _typed(str)),
        "subject": (lambda f: f.subject, _typed(str)),
        "body": (lambda f: f.body, _typed(str)),
        "organisation": (lambda f: f.organisation or "", _typed(str)),
        "status": (lambda f: f.status, _one_of(STATUSES, "status")),
        "priority": (lambda f: f.priority, _priority),
        "author": (lambda f: f.author, _one_of(("agent", "customer"), "author")),
        "customer": (lambda f: "known" if f.customer_known else "new", _one_of(("known", "new"), "customer")),
        "has_attachment": (lambda f: bool(f.attachments), _typed(bool)),
        "auto_submitted": (lambda f: f.auto_submitted, _typed(bool)),
        "weekday": (lambda f: r.WEEKDAYS[f.local_time.weekday()] if f.local_time else "",
                    _one_of(r.WEEKDAYS, "weekday")),
    }
    if name in simple:
        getter, check = simple[name]
        return Condition(key, _fact(getter, _matcher(key, spec, check)))
    if name == "from":
        return Condition(key, _fact(lambda f: f.sender, _person_matcher(key, spec)))
    if name in ("to", "cc"):
        matcher = r.any_item(_person_matcher(key, spec), f"{name} address")
        return Condition(key, _fact(lambda f: getattr(f, name), matcher))
    if name == "header":
        return _header_condition(key, spec)
    if name == "attachment":
        return _attachment_condition(key, spec)
    if name == "time":
        return Condition(key, _fact(lambda f: f.local_time, _time_matcher(key, spec)))
    if name in ("any", "all", "not"):
        return _group(key, name, spec, vocab)
    known = sorted([*simple, "from", "to", "cc", "header", "attachment", "time", "any", "all", "not"])
    raise _Invalid(key, f"unknown condition {name!r} (known: {', '.join(known)})")


def _priority(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 9:
        raise _Invalid(key, f"priority must be 1-9, got {value!r}")


def _header_condition(key: str, spec: Any) -> Condition:
    if not isinstance(spec, dict) or not spec:
        raise _Invalid(key, 'needs a table of header names, e.g. when.header = { "X-Source" = "portal" }')
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
    return Condition(key, _all_of(tests))


def _attachment_condition(key: str, spec: Any) -> Condition:
    if not isinstance(spec, dict) or not spec or set(spec) - {"name", "type"}:
        raise _Invalid(key, "needs a table with name and/or type, e.g. { name = { matches = '\\.pdf$' } }")
    parts = [_project(_matcher(f"{key}.{part}", sub), part) for part, sub in spec.items()]
    return Condition(key, _fact(lambda f: f.attachments, r.any_item(r.every(parts), "attachment")))


def _time_matcher(key: str, spec: Any) -> Matcher:
    if not isinstance(spec, dict) or set(spec) != {"between"}:
        raise _Invalid(key, 'needs { between = ["18:00", "08:00"] }')
    span = spec["between"]
    if not isinstance(span, list) or len(span) != 2:
        raise _Invalid(f"{key}.between", f"needs two times, got {span!r}")
    start, end = (_clock(f"{key}.between", s) for s in span)
    return r.between(start, end)


def _clock(key: str, value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value):
        hours, minutes = map(int, value.split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    raise _Invalid(key, f"needs HH:MM times, got {value!r}")


def _all_of(tests: list[FactTest]) -> FactTest:
    def test(facts: Facts, why: bool) -> tuple[bool, str]:
        reasons = []
        for one in tests:
            ok, reason = one(facts, why)
            reasons.append(reason)
            if not ok:
                return False, reason
        return True, "; ".join(reasons)
    return test


def _group(key: str, name: str, spec: Any, vocab: Vocabulary) -> Condition:
    blocks = spec if isinstance(spec, list) else [spec]
    if name == "not" and not isinstance(spec, dict):
        raise _Invalid(key, "needs a table of conditions")
    if name != "not" and (not isinstance(spec, list) or not spec):
        raise _Invalid(key, "needs a non-empty array of condition tables")
    compiled = []
    for i, block in enumerate(blocks):
        where = key if name == "not" else f"{key}[{i}]"
        if not isinstance(block, dict) or not block:
            raise _Invalid(where, "needs a table of conditions")
        compiled.append(_all_of([_condition(f"{where}.{k}", v, vocab).test for k, v in block.items()]))

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
    return Condition(key, test)


# --- actions --------------------------------------------------------------------------------

def _actions(spec: Any, vocab: Vocabulary) -> dict[str, Any]:
    if not isinstance(spec, dict) or not spec:
        raise _Invalid("then", "needs at least one action, e.g. then.priority = 8")
    out: dict[str, Any] = {}
    for name, value in spec.items():
        key = f"then.{name}"
        if name == "channel":
            _one_of(sorted(vocab.channels), "channel")(key, value)
        elif name == "priority":
            _priority(key, value)
        elif name == "activity_type":
            if not isinstance(value, str) or not value.strip():
                raise _Invalid(key, f"needs a non-empty string, got {value!r}")
        elif name == "owner":
            _one_of(sorted(vocab.agents), "agent")(key, value)
        elif name == "status":
            _one_of(STATUSES, "status")(key, value)
        elif name in ("category", "tag"):
            value = _strings(key, value)
        elif name == "add_watcher":
            value = _strings(key, value)
            for address in value:
                try:
                    validate_email(address, check_deliverability=False)
                except EmailNotValidError as exc:
                    raise _Invalid(key, f"{address!r} is not a valid address: {exc}") from None
        elif name == "auto_reply":
            if value is not False:
                _one_of(sorted(vocab.templates), "template")(key, value)
        elif name == "notify":
            value = [_notify(f"{key}[{i}]" if isinstance(spec[name], list) else key, n, vocab)
                     for i, n in enumerate(value if isinstance(value, list) else [value])]
        elif name == "drop":
            if value is not True and not (isinstance(value, str) and value):
                raise _Invalid(key, f"needs true or a reason string, got {value!r}")
        elif name == "stop":
            _typed(bool)(key, value)
        else:
            known = "activity_type, add_watcher, auto_reply, category, channel, drop, notify, " \
                    "owner, priority, status, stop, tag"
            raise _Invalid(key, f"unknown action {name!r} (known: {known})")
        out[name] = value
    return out


def _strings(key: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise _Invalid(key, f"needs a string or an array of strings, got {value!r}")
    return list(items)


def _notify(key: str, value: Any, vocab: Vocabulary) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"template", "audience"}:
        raise _Invalid(key, 'needs { template = "agent/new_ticket", audience = "agents" }')
    _one_of(sorted(vocab.templates), "template")(f"{key}.template", value["template"])
    _one_of(AUDIENCES, "audience")(f"{key}.audience", value["audience"])
    return {"template": value["template"], "audience": value["audience"]}


# --- files ----------------------------------------------------------------------------------

def _rule_lines(text: str) -> list[int]:
    return [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]


def _locate(text: str, starts: list[int], index: int, key: str) -> int:
    """The line of a key inside the index-th [[rule]] (the rule's own line when not found)."""
    lines = text.splitlines()
    if index >= len(starts):
        return 1
    first = starts[index]
    last = starts[index + 1] - 1 if index + 1 < len(starts) else len(lines)
    parts = [p for p in re.split(r"[.\[\]]", key) if p and not p.isdigit()]
    for depth in range(len(parts), 0, -1):
        needle = parts[depth - 1]
        for number in range(first, last + 1):
            if re.search(rf'(^|[\s.{{,"]){re.escape(needle)}"?\s*=', lines[number - 1]):
                return number
    return first


def parse_rule_file(path: Path, vocab: Vocabulary) -> tuple[list[Rule], list[RuleFileError]]:
    """The rules of one file, or the errors that make it unusable."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        return [], [RuleFileError(name, int(found.group(1)) if found else 1, "toml", str(exc))]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RuleFileError(name, 1, "file", f"cannot read: {exc}")]
    errors: list[RuleFileError] = []
    unknown = sorted(set(data) - {"rule"})
    for key in unknown:
        errors.append(RuleFileError(name, 1, key, "unknown top-level key (rules are [[rule]] tables)"))
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        return [], [RuleFileError(name, 1, "rule", "must be an array of tables: [[rule]]")]
    starts = _rule_lines(text)
    result: list[Rule] = []
    for index, table in enumerate(tables):
        line = starts[index] if index < len(starts) else 1
        label = f"rule[{index}]"
        try:
            rule = _rule(table, vocab, name, line)
        except _Invalid as exc:
            where = _locate(text, starts, index, exc.key)
            title = table.get("name") if isinstance(table.get("name"), str) else label
            errors.append(RuleFileError(name, where, f"rule {title!r} {exc.key}", exc.message))
            continue
        if rule is not None:
            result.append(rule)
    return (result, []) if not errors else ([], errors)


def _rule(table: dict[str, Any], vocab: Vocabulary, file: str, line: int) -> Rule | None:
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        raise _Invalid(unknown[0], f"unknown key (known: {', '.join(sorted(RULE_KEYS))})")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Invalid("name", "every rule needs a name")
    on = table.get("on")
    if on not in r.EVENTS:
        raise _Invalid("on", f"unknown event {on!r} (known: {', '.join(r.EVENTS)})")
    enabled = table.get("enabled", True)
    stop = table.get("stop", False)
    _typed(bool)("enabled", enabled)
    _typed(bool)("stop", stop)
    when = table.get("when", {})
    if not isinstance(when, dict):
        raise _Invalid("when", "must be a table of conditions")
    conditions = tuple(_condition(f"when.{k}", v, vocab) for k, v in when.items())
    actions = _actions(table.get("then"), vocab)
    if not enabled:
        return None
    return Rule(name=name, on=on, conditions=conditions, actions=actions,
                stop=stop or bool(actions.pop("stop", False)), file=file, line=line)


def load_rules(folder: Path, vocab: Vocabulary) -> tuple[list[Rule], list[RuleFileError]]:
    """All rules of a folder in file-name order, with every error found (bad files skipped)."""
    rules: list[Rule] = []
    errors: list[RuleFileError] = []
    if not folder.is_dir():
        return [], [RuleFileError(str(folder), 1, "rules.folder", "is not a folder")]
    for path in sorted(folder.glob("*.toml")):
        found, problems = parse_rule_file(path, vocab)
        rules.extend(found)
        errors.extend(problems)
    return rules, errors


@dataclass
class RuleBook:
    """The rules in force; reloads changed files, keeping a broken file's last good version."""

    folder: Path | None
    vocab: Vocabulary
    _files: dict[Path, tuple[tuple[int, int], list[Rule]]] = field(default_factory=dict)
    _reported: set[tuple[Path, tuple[int, int]]] = field(default_factory=set)
    _rules: list[Rule] = field(default_factory=list)

    def current(self) -> list[Rule]:
        """The rules now in force (cheap when nothing changed: one stat per file)."""
        if self.folder is None:
            return []
        try:
            paths = sorted(self.folder.glob("*.toml"))
            stamps = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in paths}
        except OSError as exc:
            log.error("rules folder %s unreadable: %s; keeping the rules in force", self.folder, exc)
            return self._rules
        if set(stamps) == set(self._files) and all(self._files[p][0] == s for p, s in stamps.items()):
            return self._rules
        files: dict[Path, tuple[tuple[int, int], list[Rule]]] = {}
        for path, stamp in stamps.items():
            known = self._files.get(path)
            if known is not None and known[0] == stamp:
                files[path] = known
                continue
            found, errors = parse_rule_file(path, self.vocab)
            if errors:
                if (path, stamp) not in self._reported:
                    self._reported.add((path, stamp))
                    for error in errors:
                        log.error("%s (the file's last good rules stay in force)", error)
                files[path] = (stamp, known[1] if known else [])
                continue
            if known is not None:
                log.info("%s reloaded: %d rule(s)", path, len(found))
            files[path] = (stamp, found)
        self._files = files
        self._rules = [rule for path in sorted(files) for rule in files[path][1]]
        return self._rules
