"""Rules stage: the facts of a mail, rule evaluation per event, actions applied to a ticket."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from gateway.config import Config
from gateway.intake.addresses import Address
from gateway.intake.guard import Verdict
from gateway.intake.parse import ParsedMail
from gateway.rules.interpret import Known, decide_early, evaluate
from gateway.rules.model import Facts, FileFact, Outcome, Rule, RuleTrace
from gateway.statuses import move
from store.models import Contact, Organisation, RuleHit, Ticket
from store.queries import add_watcher, find_contact, find_organisation, insert_rows
from store.timers import add_timer


@dataclass
class Decisions:
    """Everything the rules decided for one mail, event by event."""

    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)

    def add(self, event: str, outcome: Outcome) -> None:
        """Record the outcome of one event."""
        self.outcomes.append((event, outcome))

    @property
    def dropped(self) -> RuleTrace | None:
        """The rule that dropped the mail, if any."""
        return next((o.dropped for _, o in self.outcomes if o.dropped), None)

    def action_list(self, name: str) -> list[Any]:
        """Every value a list action (notify, tag, ...) collected over all events."""
        return [v for _, outcome in self.outcomes for v in outcome.actions.get(name, [])]

    def action(self, name: str, default: Any = None) -> Any:
        """The final value of a single-valued action (the last rule that set it wins)."""
        value = default
        for _, outcome in self.outcomes:
            value = outcome.actions.get(name, value)
        return value


def message_facts(config: Config, mail: ParsedMail, verdict: Verdict, *, source: str,
                  channel: str, mailbox: str, now: datetime) -> Facts:
    """What conditions see of the mail alone: known before any database work."""
    return Facts(
        source=source,
        channel=channel,
        mailbox=mailbox,
        sender=mail.from_,
        to=tuple(mail.to),
        cc=tuple(mail.cc),
        subject=mail.subject,
        body=mail.text,
        headers=mail.headers,
        attachments=tuple(FileFact(a.filename, a.content_type) for a in mail.attachments),
        auto_submitted=verdict.automatic,
        local_time=now.astimezone(config.tickets.zone),
    )


def store_facts(session: Session, facts: Facts, *, ticket: Ticket | None = None,
                author: str = "customer", organisation: str | None = None) -> Facts:
    """The mail's facts completed from the database: the sender known, the joined ticket.

    organisation: the domain an API submission names; otherwise the sender's domain counts.
    """
    sender = facts.sender
    known = False
    domain = organisation or (sender.domain if sender is not None else None)
    if sender is not None:
        known = find_contact(session, sender.address) is not None
    if domain:
        found = find_organisation(session, domain)
        organisation = found.name if found is not None else organisation
    return replace(
        facts,
        channel=ticket.channel if ticket else facts.channel,
        organisation=organisation,
        customer_known=known,
        status=ticket.status if ticket else "new",
        priority=ticket.priority if ticket else 5,
        author=author,
    )


def ticket_facts(session: Session, config: Config, ticket: Ticket, now: datetime,
                 sla: str = "") -> Facts:
    """What conditions see on a timer's event: the ticket's own facts, no mail.

    The customer stands in as the sender, so ``when.from`` still tells one customer from another.
    """
    customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None
    organisation = session.get(Organisation, ticket.organisation_id) if ticket.organisation_id \
        else None
    return Facts(
        source=ticket.source, channel=ticket.channel, subject=ticket.subject,
        sender=Address(customer.address, customer.name) if customer else None,
        organisation=organisation.name if organisation else None, customer_known=True,
        status=ticket.status, priority=ticket.priority, author="customer",
        local_time=now.astimezone(config.tickets.zone), sla=sla,
    )


@dataclass(frozen=True)
class Early:
    """The mail's own facts and the verdicts of every condition on them, decided before the
    transaction: a pattern on a big body never runs while the write lock is held."""

    facts: Facts
    known: dict[int, tuple[bool, str]]


def decide_before_store(rules: Sequence[Rule], facts: Facts) -> Early:
    """Evaluate what needs no database now; the transaction only adds the rest."""
    return Early(facts, decide_early(rules, facts))


def decide(rules: Sequence[Rule], events: Sequence[str], facts: Facts,
           explain: bool = False, known: Known | None = None) -> Decisions:
    """Evaluate the rules for each event in turn (explain: keep the traces of every rule)."""
    decisions = Decisions()
    for event in events:
        decisions.add(event, evaluate(rules, event, facts, explain, known))
    return decisions


def apply(session: Session, config: Config, ticket: Ticket, decisions: Decisions,
          message_id: int | None, now: datetime) -> bool:
    """Write the fired rules' actions and hits onto the ticket; True when the status changed."""
    assert ticket.id is not None
    before = ticket.status
    for event, outcome in decisions.outcomes:
        actions = outcome.actions
        for name in ("channel", "priority", "activity_type"):
            if name in actions:
                setattr(ticket, name, actions[name])
        if "status" in actions:
            move(ticket, actions["status"], now)
        if "owner" in actions:
            ticket.owner = actions["owner"]
            agent = next((a for a in config.agents if a.name == actions["owner"]), None)
            if agent is not None:
                add_watcher(session, ticket.id, agent.address, "owner")
        for name, column in (("category", "categories"), ("tag", "tags")):
            if name in actions:
                current = json.loads(getattr(ticket, column))
                current.extend(v for v in actions[name] if v not in current)
                setattr(ticket, column, json.dumps(current, ensure_ascii=False))
        for address in actions.get("add_watcher", []):
            add_watcher(session, ticket.id, address.lower(), "rule")
        if "remind" in actions:
            remind = actions["remind"]
            add_timer(session, ticket.id, "reminder", now + timedelta(minutes=remind["after_minutes"]),
                      note=remind["note"], created_by=f"rule ({event})", now=now)
        insert_rows(session, RuleHit, [{
            "ticket_id": ticket.id, "message_id": message_id, "file": trace.rule.file,
            "rule": trace.rule.name, "event": event,
            "actions": json.dumps(trace.rule.actions, ensure_ascii=False, default=str),
            "reasons": "; ".join(why for _, _, why in trace.checks)} for trace in outcome.fired])
    return ticket.status != before


def describe_drop(trace: RuleTrace) -> str:
    """The ledger's note for a dropped mail: which file and rule, and the reason given."""
    reason = trace.rule.actions.get("drop")
    said = f": {reason}" if isinstance(reason, str) else ""
    return f"dropped by rule {trace.rule.name!r} ({trace.rule.file}:{trace.rule.line}){said}"
