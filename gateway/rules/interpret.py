"""The rules interpreter: one evaluate function over rule records for one event.

``evaluate`` walks the rules in order for one event and returns the actions to apply
together with which rules fired and why, condition by condition. Conditions on the mail
alone can be decided beforehand (``decide_early``, outside any transaction); ``evaluate``
then only looks up their verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.rules.model import Condition, Facts, Outcome, Rule, RuleTrace

LIST_ACTIONS = frozenset({"category", "add_watcher", "tag", "notify"})

Known = Mapping[int, tuple[bool, str]]
"""Verdicts decided early, by ``id()`` of the condition: (held, why)."""


def decide_early(rules: Sequence[Rule], facts: Facts) -> dict[int, tuple[bool, str]]:
    """The verdict of every condition that needs no database, with its reason."""
    return {id(c): c.test(facts, True) for rule in rules for c in rule.conditions if not c.store}


def _verdict(condition: Condition, facts: Facts, why: bool, known: Known) -> tuple[bool, str]:
    found = known.get(id(condition))
    return found if found is not None else condition.test(facts, why)


def evaluate(rules: Sequence[Rule], event: str, facts: Facts, explain: bool = False,
             known: Known | None = None) -> Outcome:
    """Apply every enabled rule listening to event, in order, until one says stop.

    Fired rules always carry their reasons; with explain, rules that did not fire do too.
    known holds the verdicts of conditions decided early (see ``decide_early``).
    """
    known = known or {}
    outcome = Outcome()
    for rule in rules:
        if rule.on != event:
            continue
        fired = True
        for condition in rule.conditions:
            if not _verdict(condition, facts, False, known)[0]:
                fired = False
                break
        if fired or explain:
            outcome.traces.append(RuleTrace(rule, fired, _checks(rule, facts, known)))
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


def _checks(rule: Rule, facts: Facts, known: Known) -> tuple[tuple[str, bool, str], ...]:
    """Each condition with its verdict and reason, up to the first that failed."""
    checks = []
    for condition in rule.conditions:
        ok, why = _verdict(condition, facts, True, known)
        checks.append((condition.field, ok, why))
        if not ok:
            break
    return tuple(checks)
