"""The rules interpreter: one evaluate function over rule records for one event.

``evaluate`` walks the rules in order for one event and returns the actions to apply
together with which rules fired and why, condition by condition.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.rules.model import Facts, Outcome, Rule, RuleTrace

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
