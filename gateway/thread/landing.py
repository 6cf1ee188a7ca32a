"""Where a mail lands: the ticket it follows up (reopened as its status demands) or a new one.

The closed-ticket policy (DESIGN section 4: ``reopen``, ``new`` or ``reject``, per channel or
for all tickets) is decided here, once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from gateway.config import LANGUAGES, Config
from gateway.intake.parse import ParsedMail
from gateway.intake.raw import RawMail
from gateway.statuses import CLOSED, Status, after_customer_message, move
from gateway.thread.followup import ThreadMatch
from gateway.thread.numbers import counter_scope, format_number, ticket_subject
from store.models import Ticket
from store.queries import (
    add_watcher,
    contact_for,
    next_counter,
    no_watchers_yet,
    organisation_for,
)


@dataclass(frozen=True)
class Landing:
    """The ticket a mail lands on, how (created, followup, rejected) and why."""

    ticket: Ticket
    outcome: str
    detail: str


def closed_followup_policy(config: Config, ticket: Ticket) -> str:
    """What a customer's mail to this closed ticket does: reopen, new or reject."""
    channel = config.channel(ticket.channel)
    return (channel.closed_followup if channel else None) or config.tickets.closed_followup


def opens_new(config: Config, ticket: Ticket, automatic: bool) -> bool:
    """Whether a person's mail to this existing ticket opens a new one (closed, policy new)."""
    return (not automatic and ticket.status in CLOSED
            and closed_followup_policy(config, ticket) == "new")


def land(session: Session, config: Config, raw: RawMail, mail: ParsedMail, automatic: str,
         match: ThreadMatch, now: datetime) -> Landing:
    """The ticket this mail lands on, opened or moved on as its status demands.

    automatic is the guard's label of a machine-sent mail ("" for a person's mail).
    """
    if match.ticket is None:
        linked = match.linked
        ticket = open_ticket(session, config, raw, mail, now, linked=linked.id if linked else None)
        way = "reply to a mail" if match.via == "stranger-references" else "token"
        detail = f"{way} of {linked.number} from a non-participant" if linked else ""
        return Landing(ticket, "created", detail)
    found = session.get(Ticket, match.ticket.id)
    assert found is not None
    ticket = found
    if automatic:
        return Landing(ticket, "followup", f"automatic mail ({automatic}) via {match.via}")
    if ticket.status in CLOSED:
        policy = closed_followup_policy(config, ticket)
        if policy == "new":
            new = open_ticket(session, config, raw, mail, now, linked=ticket.id)
            return Landing(new, "created", f"follow-up to closed {ticket.number}: new ticket")
        if policy == "reject":
            return Landing(ticket, "rejected", f"follow-up to closed {ticket.number} rejected")
        move(ticket, Status.OPEN, now)
        return Landing(ticket, "followup", f"reopened closed ticket via {match.via}")
    moved_to = after_customer_message(ticket.status)
    if moved_to is not None:
        move(ticket, moved_to, now)
    ticket.updated_at = now
    return Landing(ticket, "followup", f"via {match.via}")


def open_ticket(session: Session, config: Config, raw: RawMail, mail: ParsedMail,
                now: datetime, linked: int | None) -> Ticket:
    """A new ticket whose customer is the mail's sender (watching it from the start)."""
    contact = contact_for(session, mail.from_.address, mail.from_.name) if mail.from_ else None
    submitted = raw.submission
    if contact is not None and contact.language is None:
        contact.language = (submitted.language if submitted else None) or declared_language(mail)
    organisation_id = contact.organisation_id if contact else None
    if submitted is not None and submitted.organisation:
        named = organisation_for(session, submitted.organisation)
        organisation_id = named.id if named else organisation_id
        if contact is not None and contact.organisation_id is None:
            contact.organisation_id = organisation_id  # the portal vouches for where they work
    ticket = new_ticket(session, config, raw, mail.subject, now,
                        customer_id=contact.id if contact else None,
                        organisation_id=organisation_id, kind="mail", linked=linked)
    assert ticket.id is not None
    if submitted is not None:
        ticket.asset = submitted.asset
        if submitted.category:
            ticket.categories = json.dumps([submitted.category], ensure_ascii=False)
    if contact is not None:
        add_watcher(session, ticket.id, contact.address, "customer")
    return ticket


def declared_language(mail: ParsedMail) -> str | None:
    """The writer's language when the mail declares one we ship templates in."""
    declared = (mail.header("content-language") or mail.header("accept-language")).lower()
    code = declared.replace("_", "-").split(",")[0].split("-")[0].strip()
    return code if code in LANGUAGES else None


def new_ticket(session: Session, config: Config, raw: RawMail, subject: str, now: datetime, *,
               customer_id: int | None, organisation_id: int | None, kind: str,
               linked: int | None = None) -> Ticket:
    """A numbered ticket row (mail, request on a customer's behalf, or internal)."""
    scope = counter_scope(config.tickets, now)
    ticket = Ticket(
        number=format_number(config.tickets, scope, next_counter(session, scope)),
        subject=ticket_subject(config.tickets, subject)[:1000],
        status=Status.NEW.value, channel=raw.channel, source=raw.source, type=kind,
        customer_id=customer_id, organisation_id=organisation_id, linked_ticket_id=linked,
        created_at=now, updated_at=now,
    )
    session.add(ticket)
    session.flush()
    assert ticket.id is not None
    session.info.setdefault("opened", set()).add(ticket.id)  # its timers: only this session's
    no_watchers_yet(session, ticket.id)
    return ticket
