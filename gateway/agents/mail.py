"""Agent mail: a proven agent's reply, note or commands, applied to its ticket."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from gateway.agents.commands import Plan
from gateway.config import AgentConfig, Config
from gateway.intake.parse import Address, ParsedMail
from gateway.thread.numbers import ticket_subject
from store.models import Ticket
from store.queries import add_watcher, contact_for

# Opens a ticket for the current mail: (customer contact id, organisation id, type) -> Ticket.
OpenTicket = Callable[[int | None, int | None, str], Ticket]


@dataclass
class AgentResult:
    """Where an agent's mail went and what it is."""

    ticket: Ticket
    outcome: str  # created | followup
    kind: str  # agent | note
    public: bool
    status_changed: bool
    results: list[str]


def apply_plan(session: Session, config: Config, ticket: Ticket, plan: Plan, now: datetime) -> bool:
    """Carry out valid commands on a ticket; True when its status changed."""
    assert ticket.id is not None
    before = ticket.status
    if plan.status is not None:
        ticket.set_status(plan.status, now)
    if plan.priority is not None:
        ticket.priority = plan.priority
    if plan.channel is not None:
        ticket.channel = plan.channel
    if plan.activity_type is not None:
        ticket.activity_type = plan.activity_type
    if plan.categories:
        current = json.loads(ticket.categories)
        current.extend(c for c in plan.categories if c not in current)
        ticket.categories = json.dumps(current, ensure_ascii=False)
    if plan.owner is not None:
        ticket.owner = plan.owner
        owner = next(a for a in config.agents if a.name == plan.owner)
        add_watcher(session, ticket.id, owner.address, "owner")
    for address in plan.watchers:
        add_watcher(session, ticket.id, address, "cc")
    ticket.updated_at = now
    return ticket.status != before


def agent_mail(session: Session, config: Config, mail: ParsedMail, joined: Ticket | None,
               agent: AgentConfig, plan: Plan, *, now: datetime,
               open_ticket: OpenTicket) -> AgentResult | None:
    """A proven agent's mail; None when it is simply a new request (handled like a customer's)."""
    results = list(plan.results)
    if joined is None:
        if plan.customer is not None:
            name, address = plan.customer
            contact = contact_for(session, Address(address, name))
            ticket = open_ticket(contact.id, contact.organisation_id, "request")
            assert ticket.id is not None
            add_watcher(session, ticket.id, contact.address, "customer")
        elif plan.internal:
            ticket = open_ticket(None, None, "internal")
        else:
            return None
        assert ticket.id is not None
        add_watcher(session, ticket.id, agent.address, "agent")
        ticket.subject = ticket_subject(config.tickets, mail.subject)[:1000]
        outcome = "created"
    else:
        ticket = joined
        if plan.customer is not None:
            results.append("#customer ignored: it only opens a new ticket, write a new mail")
        outcome = "followup"
    internal = plan.internal or ticket.type == "internal"
    if outcome == "followup" and not internal and plan.status is None:
        plan.status = "waiting_external"  # an agent's public reply waits for the customer
    changed = apply_plan(session, config, ticket, plan, now)
    if ticket.owner is None and outcome == "followup":
        ticket.owner = agent.name  # the first agent to answer takes the ticket
    assert ticket.id is not None
    add_watcher(session, ticket.id, agent.address, "agent")
    return AgentResult(ticket, outcome, "note" if internal else "agent", not internal, changed, results)
