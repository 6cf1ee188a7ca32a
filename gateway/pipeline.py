"""The inbound pipeline: parse → guard → thread → identify → store, one transaction per mail."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session, select

from gateway.agents.commands import Command, plan_commands, split_commands
from gateway.agents.identity import NEW_TICKET, identify_author
from gateway.agents.mail import agent_mail
from gateway.agents.quoting import trim_reply
from gateway.config import LANGUAGES, Config
from gateway.intake.guard import Verdict, inspect
from gateway.intake.htmltext import SANITIZERS
from gateway.intake.parse import ParsedMail, message_key, parse_mail
from gateway.outbound.notify import after_agent, after_inbound, record_bounce, unproven_agent
from gateway.rules.interpret import Rule
from gateway.rules.stage import apply, decide, describe_drop, mail_facts
from gateway.thread.followup import ThreadMatch, find_thread
from gateway.thread.numbers import counter_scope, format_number, ticket_subject
from store.db import transaction
from store.models import (
    Attachment,
    Contact,
    LedgerEntry,
    Message,
    QuarantinedMail,
    Ticket,
    utcnow,
)
from store.queries import (
    SessionThreadIndex,
    add_watcher,
    contact_for,
    ledger_has,
    next_counter,
    watcher_addresses,
)

log = logging.getLogger("gateway.inbound")

WAITING_EXTERNAL = "waiting_external"
REOPENABLE = frozenset({"resolved"})
CLOSED = frozenset({"closed"})


@dataclass(frozen=True)
class RawMail:
    """Mail bytes and where they came from."""

    data: bytes
    mailbox: str
    uidvalidity: int | None = None
    uid: int | None = None
    channel: str = "support"
    source: str = "email"


@dataclass(frozen=True)
class Disposition:
    """What became of one mail: created, followup, rejected, duplicate or quarantined."""

    outcome: str
    message_id: str
    ticket_number: str | None = None
    detail: str = ""


class StoreUnavailable(Exception):
    """The database could not be reached; the mail stays where it is and is tried again."""


def process(engine: Engine, config: Config, raw: RawMail, now: datetime | None = None,
            *, keep_failures: bool = True, rules: Sequence[Rule] = (),
            parsed: ParsedMail | None = None) -> Disposition:
    """Run one mail through the pipeline; only a database outage escapes as an exception.

    keep_failures=False (a quarantine retry) reports a failure without quarantining again.
    """
    now = now or datetime.now(UTC)
    fallback_id = f"{message_key(raw.data[:32].hex())[:40]}@unparsed.ticketgate.invalid"
    try:
        if len(raw.data) > config.limits.max_message_bytes:
            reason = (f"message too large: {len(raw.data)} bytes > limits.max_message_bytes "
                      f"{config.limits.max_message_bytes}")
            return _failed(engine, raw, reason, fallback_id, keep_failures)
        mail = parsed or parse_mail(raw.data, SANITIZERS[config.html_sanitizer])
        fallback_id = mail.message_id
        verdict = inspect(mail, config.own_addresses())
        for _attempt in range(3):
            try:
                return _store(engine, config, raw, mail, verdict, now, rules)
            except IntegrityError:
                # A concurrent process stored the same mail first: the next try sees it.
                log.info("%s concurrent insert, re-checking", mail.message_id)
        raise RuntimeError("unique constraint kept failing after 3 attempts")
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailable(str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)) from exc
    except Exception as exc:
        log.exception("%s failed", fallback_id)
        return _failed(engine, raw, f"{type(exc).__name__}: {exc}", fallback_id, keep_failures)


def _failed(engine: Engine, raw: RawMail, reason: str, message_id: str, keep: bool) -> Disposition:
    if keep:
        return quarantine(engine, raw, reason, message_id)
    return Disposition("quarantined", message_id, detail=reason)


def quarantine(engine: Engine, raw: RawMail, reason: str, message_id: str) -> Disposition:
    """Keep the raw bytes with the reason; the ledger records the mail as handled."""
    key = message_key(message_id)
    try:
        with transaction(engine) as session:
            if ledger_has(session, raw.mailbox, raw.uidvalidity, raw.uid):
                return Disposition("duplicate", message_id, detail="already in ledger")
            session.add(QuarantinedMail(mailbox=raw.mailbox, uidvalidity=raw.uidvalidity,
                                        uid=raw.uid, message_key=key, reason=reason[:2000],
                                        raw=raw.data))
            session.add(LedgerEntry(mailbox=raw.mailbox, uidvalidity=raw.uidvalidity,
                                    uid=raw.uid, message_key=key, outcome="quarantined",
                                    detail=reason[:2000]))
    except IntegrityError:
        return Disposition("duplicate", message_id, detail="already in ledger")
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailable(str(exc)) from exc
    log.warning("%s quarantined: %s", message_id, reason)
    return Disposition("quarantined", message_id, detail=reason)


def _store(engine: Engine, config: Config, raw: RawMail, mail: ParsedMail, verdict: Verdict,
           now: datetime, rules: Sequence[Rule]) -> Disposition:
    """The one transaction: dedupe, thread, identify, write ticket, message, watchers, ledger."""
    key = mail.message_key
    with transaction(engine) as session:
        if ledger_has(session, raw.mailbox, raw.uidvalidity, raw.uid):
            return Disposition("duplicate", mail.message_id, detail="already in ledger")
        fingerprint = mail.content_hash()
        existing = session.exec(select(Message).where(Message.message_key == key)).first()
        if existing is not None and existing.content_hash != fingerprint:
            # Same Message-ID, different mail (broken clients, test tools): keep both.
            mail.defects.append("Message-ID reused by a different mail; stored separately")
            key = message_key(f"{mail.message_id}\0{fingerprint}")
            existing = session.exec(select(Message).where(Message.message_key == key)).first()
        if existing is not None:
            ticket = session.get(Ticket, existing.ticket_id)
            number = ticket.number if ticket else None
            _ledger(session, raw, key, "duplicate", number, "Message-ID already stored")
            return Disposition("duplicate", mail.message_id, number, "Message-ID already stored")
        agents = frozenset(a.address for a in config.agents)
        match = find_thread(mail, SessionThreadIndex(session, agents), config.tickets)
        author = identify_author(config, mail)
        joined = session.get(Ticket, match.ticket.id) if match.ticket else None
        if joined is None and author.signed_ticket not in (None, NEW_TICKET):
            # the signed reply address itself names the ticket
            joined = session.exec(select(Ticket).where(Ticket.number == author.signed_ticket)).first()
        agent = None if verdict.automatic else author.proven_for(joined.number if joined else None)
        unproven = author.agent is not None and agent is None and not verdict.automatic
        commands, rest = split_commands(mail.text)
        facts = mail_facts(session, config, mail, verdict, source=raw.source, channel=raw.channel,
                           mailbox=raw.mailbox, now=now, ticket=joined,
                           author="agent" if agent else "customer")
        events = ["message.received"]
        if joined is None or (agent is None and _opens_new(config, joined, verdict)):
            events.append("ticket.created")
        decisions = decide(rules, events, facts)
        dropped = decisions.dropped
        if dropped is not None:
            note = describe_drop(dropped)
            _ledger(session, raw, key, "dropped", joined.number if joined else None, note)
            log.info("%s %s", mail.message_id, note)
            return Disposition("dropped", mail.message_id, None, note)
        old_status = joined.status if joined else None
        handled = None
        closing = False
        if agent is not None:
            plan = plan_commands(config, commands, by_agent=True)
            handled = agent_mail(
                session, config, mail, joined, agent, plan, now=now,
                open_ticket=lambda cid, oid, kind: _new_ticket(session, config, raw, mail, now,
                                                               cid, oid, kind))
        if handled is not None:
            ticket, outcome, kind, public = handled.ticket, handled.outcome, handled.kind, handled.public
            text, detail = trim_reply(rest), f"agent {agent.name if agent else ''} ({author.proof})"
        else:
            ticket, outcome, detail = _ticket_for(session, config, raw, mail, verdict, match, now)
            kind = "bounce" if "bounce" in verdict.classes else (
                "auto-reply" if verdict.automatic else "customer")
            public, text = True, mail.text
            if unproven:  # kept, but shown to agents only: it may be an internal note
                kind, public = "unverified", False
            closing = _customer_close(session, config, ticket, mail, commands, kind, outcome)
            if closing:
                text = rest
        if old_status is not None and joined is not None and ticket.id == joined.id \
                and ticket.status != old_status and handled is None:
            facts.status = ticket.status
            later = ["ticket.status_changed"]
            if old_status in REOPENABLE | CLOSED:
                later.append("ticket.reopened")
            for event, result in decide(rules, later, facts).outcomes:
                decisions.add(event, result)
        assert ticket.id is not None
        message = Message(
            ticket_id=ticket.id, direction="in", kind=kind, public=public,
            message_id=mail.message_id, message_key=key, content_hash=fingerprint,
            in_reply_to=" ".join(mail.in_reply_to) or None,
            references=" ".join(mail.references) or None,
            from_address=mail.from_.address if mail.from_ else "",
            from_name=(agent.display_name if agent else None) or (mail.from_.name if mail.from_ else ""),
            to=json.dumps([a.address for a in mail.to]),
            cc=json.dumps([a.address for a in mail.cc]),
            subject=mail.subject, text=text, html="" if handled else mail.html,
            classification=verdict.label, defects="\n".join(mail.defects)[:10000],
            mailbox=raw.mailbox, created_at=now,
        )
        session.add(message)
        session.flush()
        assert message.id is not None
        for item in mail.attachments:
            session.add(Attachment(message_id=message.id, filename=item.filename,
                                   content_type=item.content_type[:255], size=item.size,
                                   content_id=(item.content_id or None) and item.content_id[:255],
                                   data=item.data))
        if kind == "customer":
            _add_watchers(session, config, ticket.id, mail)
        rules_changed_status = apply(session, config, ticket, decisions, message.id, now)
        if handled is not None and agent is not None:
            notes = after_agent(session, config, ticket, message, agent, handled, now)
        elif unproven and author.agent is not None:
            notes = unproven_agent(session, config, ticket, message, author.agent, commands, now)
        else:
            notes = after_inbound(session, config, ticket, message, mail, outcome, verdict,
                                  decisions, rules_changed_status or closing, now)
        if kind == "bounce":
            notes += record_bounce(session, config, ticket, mail, now)
        if notes:
            detail = "; ".join([detail, *notes]) if detail else "; ".join(notes)
        _ledger(session, raw, key, outcome, ticket.number, detail)
        log.info("%s %s %s (%s)", mail.message_id, outcome, ticket.number, match.via)
        return Disposition(outcome, mail.message_id, ticket.number, detail)


def _customer_close(session: Session, config: Config, ticket: Ticket, mail: ParsedMail,
                    commands: list[Command], kind: str, outcome: str) -> bool:
    """A customer's '#close' on their own ticket closes it; other commands stay plain text."""
    if kind != "customer" or outcome != "followup" or not any(c.name == "close" for c in commands):
        return False
    sender = mail.from_.address if mail.from_ else ""
    customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None
    assert ticket.id is not None
    watching = sender in watcher_addresses(session, ticket.id)
    if (customer is None or customer.address != sender) and not watching:
        return False
    return ticket.set_status("closed", utcnow())


def _opens_new(config: Config, ticket: Ticket, verdict: Verdict) -> bool:
    """Whether a mail to this existing ticket opens a new one (closed, policy "new")."""
    if verdict.automatic or ticket.status not in CLOSED:
        return False
    channel = config.channel(ticket.channel)
    return ((channel.closed_followup if channel else None) or config.tickets.closed_followup) == "new"


def _ticket_for(session: Session, config: Config, raw: RawMail, mail: ParsedMail,
                verdict: Verdict, match: ThreadMatch, now: datetime) -> tuple[Ticket, str, str]:
    """The ticket this mail lands on, opened or moved on as its status demands."""
    if match.ticket is not None:
        ticket = session.get(Ticket, match.ticket.id)
        assert ticket is not None
        if verdict.automatic:
            return ticket, "followup", f"automatic mail ({verdict.label}) via {match.via}"
        if ticket.status in CLOSED:
            if _opens_new(config, ticket, verdict):
                new = _open_ticket(session, config, raw, mail, now, linked=ticket.id)
                return new, "created", f"follow-up to closed {ticket.number}: new ticket"
            channel = config.channel(ticket.channel)
            if ((channel.closed_followup if channel else None) or config.tickets.closed_followup) == "reject":
                return ticket, "rejected", f"follow-up to closed {ticket.number} rejected"
            ticket.set_status("open", now)
            return ticket, "followup", f"reopened closed ticket via {match.via}"
        if ticket.status == WAITING_EXTERNAL or ticket.status in REOPENABLE:
            ticket.set_status("open", now)
        ticket.updated_at = utcnow()
        return ticket, "followup", f"via {match.via}"
    linked = match.linked.id if match.linked else None
    ticket = _open_ticket(session, config, raw, mail, now, linked=linked)
    detail = f"token of {match.linked.number} from a non-participant" if match.linked else ""
    return ticket, "created", detail


def _open_ticket(session: Session, config: Config, raw: RawMail, mail: ParsedMail,
                 now: datetime, linked: int | None) -> Ticket:
    """A new ticket whose customer is the mail's sender."""
    contact = contact_for(session, mail.from_) if mail.from_ else None
    if contact is not None and contact.language is None:
        contact.language = _language(mail)
    ticket = _new_ticket(session, config, raw, mail, now, contact.id if contact else None,
                         contact.organisation_id if contact else None, "mail", linked)
    assert ticket.id is not None
    if contact is not None:
        add_watcher(session, ticket.id, contact.address, "customer")
    return ticket


def _language(mail: ParsedMail) -> str | None:
    """The writer's language when the mail declares one we ship templates in."""
    declared = (mail.header("content-language") or mail.header("accept-language")).lower()
    code = declared.replace("_", "-").split(",")[0].split("-")[0].strip()
    return code if code in LANGUAGES else None


def _new_ticket(session: Session, config: Config, raw: RawMail, mail: ParsedMail, now: datetime,
                customer_id: int | None, organisation_id: int | None, kind: str,
                linked: int | None = None) -> Ticket:
    """A numbered ticket row (mail, request on a customer's behalf, or internal)."""
    scope = counter_scope(config.tickets, now)
    ticket = Ticket(
        number=format_number(config.tickets, scope, next_counter(session, scope)),
        subject=ticket_subject(config.tickets, mail.subject)[:1000],
        status="new", channel=raw.channel, source=raw.source, type=kind,
        customer_id=customer_id, organisation_id=organisation_id, linked_ticket_id=linked,
        created_at=now, updated_at=now,
    )
    session.add(ticket)
    session.flush()
    return ticket


def _add_watchers(session: Session, config: Config, ticket_id: int, mail: ParsedMail) -> None:
    """People copied on a customer mail become watchers; our own addresses never do."""
    own = config.own_addresses()
    if mail.from_ is not None:
        contact_for(session, mail.from_)
    for person in [*mail.to, *mail.cc]:
        if person.address in own or person.domain in config.own_domains:
            continue
        try:
            validate_email(person.address, check_deliverability=False)
        except EmailNotValidError:
            continue
        contact_for(session, person)
        add_watcher(session, ticket_id, person.address, "cc")


def _ledger(session: Session, raw: RawMail, key: str, outcome: str, number: str | None,
            detail: str) -> None:
    session.add(LedgerEntry(mailbox=raw.mailbox, uidvalidity=raw.uidvalidity, uid=raw.uid,
                            message_key=key, outcome=outcome, ticket_number=number,
                            detail=detail[:2000]))
