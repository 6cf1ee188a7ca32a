"""Rule records and the facts they look at: what a rule file becomes, what an event offers.

Rules are data (parsed from ``rules/*.toml`` by ``gateway.rules.loader``, compiled by
``gateway.rules.compiler``) and run by ``gateway.rules.interpret``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.intake.addresses import Address

EVENTS = ("message.received", "ticket.created", "ticket.status_changed", "ticket.reopened",
          "ticket.sla_warning", "ticket.sla_breached", "ticket.idle")
TIMER_EVENTS = frozenset({"ticket.sla_warning", "ticket.sla_breached", "ticket.idle"})
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
    sla: str = ""  # the SLA target of ticket.sla_warning / ticket.sla_breached


# A matcher tests one value; asked to (second argument), it also says why. Reasons are only
# composed when wanted: evaluation of many rules stays cheap, explanations stay exact.
Matcher = Callable[[Any, bool], tuple[bool, str]]


STORE_FACTS = frozenset({"channel", "organisation", "customer", "status", "priority", "author"})
"""Conditions on these facts need the database (the joined ticket, known contacts): they are
decided inside the mail's transaction; every other condition before it, with no lock held."""


@dataclass(frozen=True)
class Condition:
    """One when.* entry: a field, its matcher, and whether it needs the database."""

    field: str
    test: Callable[[Facts, bool], tuple[bool, str]]
    store: bool = False


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
