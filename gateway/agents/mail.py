"""Agent mail: a proven agent's reply, note or commands, applied to its ticket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from gateway.agents.commands import Command, Plan
from gateway.agents.merge import merge, merge_problem
from gateway.agents.quoting import trim_reply
from gateway.config import AgentConfig, Config
from gateway.durations import format_minutes
from gateway.intake.parse import ParsedMail
from gateway.intake.raw import RawMail
from gateway.statuses import Status, move
from gateway.thread.landing import new_ticket
from gateway.thread.numbers import ticket_subject
from store.models import Contact, Ticket
from store.queries import add_watcher, contact_for, watcher_addresses
from store.timers import add_timer, book_time


@dataclass
class AgentResult:
    """Where an agent's mail went and what it is."""

    ticket: Ticket
    outcome: str  # created | followup
    kind: str  # agent | note
    public: bool
    status_changed: bool
    results: list[str]
    text: str = ""  # what is stored (and relayed when public)
    not_relayed: bool = False  # a reply with nothing of the agent's own: kept whole as a note
    previous_status: str | None = None  # the ticket's status before this mail (None: new)
    merged: Ticket | None = None  # the ticket #merge closed into this one


def stored_text(rest: str, outcome: str) -> tuple[str, bool]:
    """The text to keep of an agent's mail, and whether it was kept whole for lack of own words.

    A new ticket keeps everything (a forwarded request is its content); a reply loses its
    quoted history and signature, unless nothing would be left: then it is kept whole.

    >>> stored_text("Done.\\n\\n> old", "followup"), stored_text("> old", "followup")
    (('Done.', False), ('> old', True))
    """
    if outcome == "created":
        return rest, False
    trimmed = trim_reply(rest)
    if trimmed or not rest.strip():
        return trimmed, False
    return rest.strip(), True


def apply_plan(session: Session, config: Config, ticket: Ticket, plan: Plan, now: datetime,
               agent: str = "") -> bool:
    """Carry out valid commands on a ticket; True when its status changed."""
    assert ticket.id is not None
    before = ticket.status
    if plan.status is not None:
        move(ticket, plan.status, now)
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
    for due, note, _ in plan.reminders:
        add_timer(session, ticket.id, "reminder", due, note=note, created_by=agent, now=now)
    for minutes, activity, _ in plan.bookings:
        book_time(session, ticket.id, agent, minutes, activity or ticket.activity_type or "", now)
    ticket.updated_at = now
    return ticket.status != before


def _timed_results(config: Config, ticket: Ticket, plan: Plan,
                   results: dict[str, str]) -> None:
    """What #remind and #time did, in words for the agent."""
    zone = config.tickets.zone
    for due, _, line in plan.reminders:
        results[line] = f"{line}: done, due {due.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"
    for minutes, _, line in plan.bookings:
        results[line] = f"{line}: done, {format_minutes(minutes)} booked on {ticket.number}"


def _merge(session: Session, joined: Ticket | None, plan: Plan, results: dict[str, str],
           now: datetime) -> tuple[Ticket | None, Ticket | None]:
    """Carry out #merge first: the mail then lands on the target. (ticket, merged source)."""
    if plan.merge_into is None:
        return joined, None
    number, line = plan.merge_into
    if joined is None:
        results[line] = f"{line}: only works in a reply to the ticket to merge"
        return joined, None
    target, problem = merge_problem(session, joined, number)
    if target is None:
        results[line] = f"{line}: {problem}"
        return joined, None
    merge(session, joined, target, now)
    results[line] = f"{line}: done, {joined.number} is closed and merged into {target.number}"
    return target, joined


def agent_mail(session: Session, config: Config, raw: RawMail, mail: ParsedMail,
               joined: Ticket | None, agent: AgentConfig, plan: Plan, rest: str, *,
               now: datetime) -> AgentResult | None:
    """A proven agent's mail (rest: its text below the commands); None for a plain new request.

    A reply with no text of the agent's own is never relayed (nor sent empty): it is kept
    whole as an internal note, does not make the ticket wait for the customer, and the agent
    hears why.
    """
    later: dict[str, str] = {}  # results of the commands carried out here, by command line
    joined, merged = _merge(session, joined, plan, later, now)
    results: list[str] = []
    previous = joined.status if joined is not None else None
    if joined is None:
        if plan.customer is not None:
            name, address = plan.customer
            contact = contact_for(session, address, name)
            ticket = new_ticket(session, config, raw, mail.subject, now, customer_id=contact.id,
                                organisation_id=contact.organisation_id, kind="request")
            assert ticket.id is not None
            add_watcher(session, ticket.id, contact.address, "customer")
        elif plan.internal:
            ticket = new_ticket(session, config, raw, mail.subject, now, customer_id=None,
                                organisation_id=None, kind="internal")
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
    text, kept_whole = stored_text(rest, outcome)
    internal = plan.internal or ticket.type == "internal"
    not_relayed = kept_whole and not internal
    if outcome == "followup" and (kept_whole or not text):
        internal = True  # nothing of the agent's own to relay (or only commands): a note
    if outcome == "followup" and not internal and plan.status is None:
        plan.status = Status.WAITING_EXTERNAL  # an agent's public reply waits for the customer
    changed = apply_plan(session, config, ticket, plan, now, agent=agent.name)
    _timed_results(config, ticket, plan, later)
    results = [later.get(r, r) for r in plan.results] + results
    if ticket.owner is None and outcome == "followup":
        ticket.owner = agent.name  # the first agent to answer takes the ticket
    assert ticket.id is not None
    add_watcher(session, ticket.id, agent.address, "agent")
    return AgentResult(ticket, outcome, "note" if internal else "agent", not internal, changed,
                       results, text, not_relayed, previous, merged)


def customer_close(session: Session, ticket: Ticket, sender: str, commands: list[Command],
                   now: datetime) -> bool:
    """A customer's '#close' on their own ticket closes it; other commands stay plain text."""
    if not any(c.name == "close" for c in commands) or not may_close(session, ticket, sender):
        return False
    return move(ticket, Status.CLOSED, now)


def may_close(session: Session, ticket: Ticket, sender: str) -> bool:
    """Whether this person may close the ticket: its customer, or someone watching it."""
    customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None
    assert ticket.id is not None
    return (customer is not None and customer.address == sender) or \
        sender in watcher_addresses(session, ticket.id)
