"""Rule files: load rules/*.toml in name order, validate with file, line and key; hot reload.

A file that fails validation is reported and skipped; at run time the last good version of
that file stays in force, so a broken edit never stops mail intake.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.rules.compiler import RULE_KEYS, Invalid, Vocabulary, actions, condition, typed
from gateway.rules.model import EVENTS, TIMER_EVENTS, Rule
from gateway.templates import template_names

log = logging.getLogger("gateway.rules")

__all__ = ["RuleBook", "RuleFileError", "Vocabulary", "load_rules", "parse_rule_file",
           "vocabulary"]


def vocabulary(config: Any) -> Vocabulary:
    """The names a config makes known to rules (channels, agents, templates)."""
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


def parse_rule_file(path: Path, vocab: Vocabulary,
                    content: bytes | None = None) -> tuple[list[Rule], list[RuleFileError]]:
    """The rules of one file (its content when already read), or the errors that make it unusable."""
    name = str(path)
    try:
        text = (path.read_bytes() if content is None else content).decode("utf-8")
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
        if not isinstance(table, dict):
            errors.append(RuleFileError(name, line, label, "must be a table: [[rule]]"))
            continue
        try:
            rule = _rule(table, vocab, name, line)
        except Invalid as exc:
            where = _locate(text, starts, index, exc.key)
            title = table.get("name") if isinstance(table.get("name"), str) else label
            errors.append(RuleFileError(name, where, f"rule {title!r} {exc.key}", exc.message))
            continue
        except Exception as exc:  # a shape the validator did not foresee: report, never crash
            errors.append(RuleFileError(name, line, label, f"cannot be read: {exc!r}"))
            continue
        if rule is not None:
            result.append(rule)
    return (result, []) if not errors else ([], errors)


def _rule(table: dict[str, Any], vocab: Vocabulary, file: str, line: int) -> Rule | None:
    unknown = sorted(set(table) - RULE_KEYS)
    if unknown:
        raise Invalid(unknown[0], f"unknown key (known: {', '.join(sorted(RULE_KEYS))})")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Invalid("name", "every rule needs a name")
    on = table.get("on")
    if on not in EVENTS:
        raise Invalid("on", f"unknown event {on!r} (known: {', '.join(EVENTS)})")
    enabled = table.get("enabled", True)
    stop = table.get("stop", False)
    typed(bool)("enabled", enabled)
    typed(bool)("stop", stop)
    when = table.get("when", {})
    if not isinstance(when, dict):
        raise Invalid("when", "must be a table of conditions")
    conditions = tuple(condition(f"when.{k}", v, vocab) for k, v in when.items())
    then = actions(table.get("then"), vocab)
    if on in TIMER_EVENTS:
        for name in ("drop", "auto_reply"):
            if name in then:
                raise Invalid(f"then.{name}", f"{on} comes with no mail to drop or answer")
    if not enabled:
        return None
    return Rule(name=name, on=on, conditions=conditions, actions=then,
                stop=stop or bool(then.pop("stop", False)), file=file, line=line)


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
    """The rules in force; reloads changed files, keeping a broken file's last good version.

    A file counts as changed when its content hash changes: an edit that keeps the size
    within the file system's timestamp granularity leaves (mtime, size) as they were.
    """

    folder: Path | None
    vocab: Vocabulary
    _files: dict[Path, tuple[str, list[Rule]]] = field(default_factory=dict)
    _reported: set[tuple[Path, str]] = field(default_factory=set)
    _rules: list[Rule] = field(default_factory=list)

    def current(self) -> list[Rule]:
        """The rules now in force (cheap when nothing changed: one read and hash per file)."""
        if self.folder is None:
            return []
        try:
            contents = {p: p.read_bytes() for p in sorted(self.folder.glob("*.toml"))}
        except OSError as exc:
            log.error("rules folder %s unreadable: %s; keeping the rules in force", self.folder, exc)
            return self._rules
        digests = {p: hashlib.sha256(data).hexdigest() for p, data in contents.items()}
        if set(digests) == set(self._files) and all(
                self._files[p][0] == d for p, d in digests.items()):
            return self._rules
        files: dict[Path, tuple[str, list[Rule]]] = {}
        for path, digest in digests.items():
            known = self._files.get(path)
            if known is not None and known[0] == digest:
                files[path] = known
                continue
            found, errors = parse_rule_file(path, self.vocab, contents[path])
            if errors:
                if (path, digest) not in self._reported:
                    self._reported.add((path, digest))
                    for error in errors:
                        log.error("%s (the file's last good rules stay in force)", error)
                files[path] = (digest, known[1] if known else [])
                continue
            if known is not None:
                log.info("%s reloaded: %d rule(s)", path, len(found))
            files[path] = (digest, found)
        self._files = files
        self._rules = [rule for path in sorted(files) for rule in files[path][1]]
        return self._rules
