"""The inbound pipeline: every mail takes one way through named stages, in one transaction.

    parse → guard → ┌ dedupe → thread → identify → commands → arrival rules → land
                    └ status rules → store → rule actions → timers → notify → publish → ledger
                                                                                 (one transaction)

Each stage is a small function over the ``Inbound`` context, read top to bottom in
``STAGES`` (after GNU Mailman's handler pipeline). A stage that settles the mail early (a
duplicate, a dropped mail) returns its ``Disposition`` and the later stages are skipped.
Expected outcomes are values; an unexpected error quarantines the mail with its raw bytes,
and only a database outage escapes, as ``StoreUnavailable``. Every stage is timed and every
outcome counted once here (``gateway.metrics``), for mail and API submissions alike.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gateway.agents.commands import Command, Plan, find_commands, plan_commands
from gateway.agents.identity import NEW_TICKET, Author, identify_author
from gateway.agents.mail import AgentResult, agent_mail, customer_close
from gateway.config import AgentConfig, Config
from gateway.errors import StoreUnavailable, store_errors
from gateway.intake.guard import Verdict, inspect
from gateway.intake.headerblock import not_a_mail
from gateway.intake.htmltext import SANITIZERS
from gateway.intake.parse import ParsedMail, parse_mail
from gateway.intake.raw import RawMail
from gateway.metrics import MAILS, STAGE_SECONDS
from gateway.outbound.events import emit, status_changed
from gateway.outbound.notify import (
    after_agent,
    after_inbound,
    after_merge,
    record_bounce,
    unproven_agent,
)
from gateway.record import Body, add_copied_watchers, packed_beside, write_ledger, write_message
from gateway.rules.model import Facts, Rule
from gateway.rules.stage import (
    Decisions,
    Early,
    apply,
    decide,
    decide_before_store,
    describe_drop,
    message_facts,
    store_facts,
)
from gateway.statuses import DONE
from gateway.thread.followup import ThreadMatch, TicketRef, find_thread
from gateway.thread.index import SessionThreadIndex
from gateway.thread.landing import Landing, land, opens_new
from gateway.timers.policy import responded, sync_timers
from gateway.views.visibility import is_public
from store.db import transaction
from store.keys import message_key
from store.models import LedgerEntry, Message, QuarantinedMail, Ticket
from store.packing import Packed
from store.queries import insert_rows, ledger_has, message_by_key, ticket_by_number
from store.timers import merge_target

__all__ = ["Disposition", "RawMail", "StoreUnavailable", "process", "quarantine"]

log = logging.getLogger("gateway.inbound")


@dataclass(frozen=True)
class Disposition:
    """What became of one mail: created, followup, dropped, rejected, duplicate or quarantined.

    ``conflict``: an API submission whose Message-ID (from its Idempotency-Key) is taken by a
    different request; nothing was stored.
    """

    outcome: str
    message_id: str
    ticket_number: str | None = None
    detail: str = ""


@dataclass
class Inbound:
    """One mail inside its transaction: what the stages have found so far."""

    session: Session
    config: Config
    raw: RawMail
    mail: ParsedMail
    verdict: Verdict
    now: datetime
    rules: Sequence[Rule]
    early: Early  # the mail's own facts, its conditions decided before the transaction
    packing: Future[Packed] | None  # a large original, packed in a thread meanwhile
    key: str = ""
    fingerprint: str = ""
    match: ThreadMatch = field(default_factory=lambda: ThreadMatch(None, "new"))
    joined: Ticket | None = None  # the existing ticket the mail refers to
    old_status: str | None = None  # the joined ticket's status before this mail
    author: Author = field(default_factory=lambda: Author(None, None))
    agent: AgentConfig | None = None  # the agent, when proven for this ticket
    commands: list[Command] = field(default_factory=list)
    rest: str = ""  # the text below the commands
    facts: Facts = field(default_factory=Facts)
    decisions: Decisions = field(default_factory=Decisions)
    handled: AgentResult | None = None
    landing: Landing | None = None
    body: Body | None = None
    closing: bool = False  # a customer's #close
    message: Message | None = None
    rules_changed_status: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def unproven(self) -> bool:
        """From an agent's address, but without proof: stored, commands not executed."""
        return self.author.agent is not None and self.agent is None and not self.verdict.automatic

    @property
    def ticket(self) -> Ticket:
        """The ticket the mail landed on (set by the land stage)."""
        assert self.landing is not None
        return self.landing.ticket

    def settled(self, outcome: str, number: str | None, detail: str) -> Disposition:
        """End the mail early: ledger entry and disposition."""
        write_ledger(self.session, self.raw, self.key, outcome, number, detail)
        return Disposition(outcome, self.mail.message_id, number, detail)


def process(engine: Engine, config: Config, raw: RawMail, now: datetime | None = None,
            *, keep_failures: bool = True, rules: Sequence[Rule] = (),
            parsed: ParsedMail | None = None,
            packing: Future[Packed] | None = None) -> Disposition:
    """Run one mail through the pipeline; only a database outage escapes as an exception.

    keep_failures=False (a quarantine retry) reports a failure without quarantining again.
    parsed and packing: the mail parsed and its original packed beforehand (the service).
    """
    disposition = _process(engine, config, raw, now or datetime.now(UTC), keep_failures, rules,
                           parsed, packing)
    MAILS.labels(disposition.outcome, raw.source).inc()
    return disposition


def _process(engine: Engine, config: Config, raw: RawMail, now: datetime, keep_failures: bool,
             rules: Sequence[Rule], parsed: ParsedMail | None,
             ahead: Future[Packed] | None) -> Disposition:
    fallback_id = f"{message_key(raw.data[:32].hex())[:40]}@unparsed.ticketgate.invalid"
    try:
        with store_errors():
            if len(raw.data) > config.limits.max_message_bytes:
                reason = (f"message too large: {len(raw.data)} bytes > limits.max_message_bytes "
                          f"{config.limits.max_message_bytes}")
                return _failed(engine, raw, reason, fallback_id, keep_failures)
            junk = not_a_mail(raw.data)
            if junk is not None:  # an empty file, a picture: never a ticket from "(none)"
                return _failed(engine, raw, junk, fallback_id, keep_failures)
            with packed_beside(engine, raw, parsed, ahead) as packing:
                mail = parsed or parse_mail(raw.data, SANITIZERS[config.html_sanitizer])
                fallback_id = mail.message_id
                verdict = inspect(mail, config.own_addresses())
                facts = message_facts(config, mail, verdict, source=raw.source,
                                      channel=raw.channel, mailbox=raw.mailbox, now=now)
                early = decide_before_store(rules, facts)  # patterns run with no lock held
                for _attempt in range(3):
                    try:
                        return _store(engine, config, raw, mail, verdict, now, rules, early,
                                      packing)
                    except IntegrityError:
                        # A concurrent process stored the same mail first: the next try sees it.
                        log.info("%s concurrent insert, re-checking", mail.message_id)
                raise RuntimeError("unique constraint kept failing after 3 attempts")
    except StoreUnavailable:
        raise
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
        with store_errors(), transaction(engine) as session:
            if ledger_has(session, raw.mailbox, raw.uidvalidity, raw.uid):
                return Disposition("duplicate", message_id, detail="already in ledger")
            where = {"mailbox": raw.mailbox, "uidvalidity": raw.uidvalidity, "uid": raw.uid,
                     "message_key": key}
            insert_rows(session, QuarantinedMail, [{**where, "reason": reason[:2000],
                                                    "raw": raw.data}])
            insert_rows(session, LedgerEntry, [{**where, "outcome": "quarantined",
                                                "detail": reason[:2000]}])
    except IntegrityError:
        return Disposition("duplicate", message_id, detail="already in ledger")
    log.warning("%s quarantined: %s", message_id, reason)
    return Disposition("quarantined", message_id, detail=reason)


def _store(engine: Engine, config: Config, raw: RawMail, mail: ParsedMail, verdict: Verdict,
           now: datetime, rules: Sequence[Rule], early: Early,
           packing: Future[Packed] | None) -> Disposition:
    """The one transaction: the stages in order until one of them settles the mail."""
    with transaction(engine) as session:
        inbound = Inbound(session, config, raw, mail, verdict, now, rules, early, packing)
        for stage in STAGES:
            started = time.perf_counter()
            settled = stage(inbound)
            STAGE_SECONDS.labels(stage.__name__).observe(time.perf_counter() - started)
            if settled is not None:
                return settled
    raise AssertionError("the ledger stage always settles the mail")


# --- the stages, in order -------------------------------------------------------------------

def dedupe(m: Inbound) -> Disposition | None:
    """Already handled: the same mailbox copy (ledger), or the same mail by its Message-ID."""
    raw, mail = m.raw, m.mail
    if ledger_has(m.session, raw.mailbox, raw.uidvalidity, raw.uid):
        return Disposition("duplicate", mail.message_id, detail="already in ledger")
    submitted = raw.submission
    m.key = mail.message_key
    m.fingerprint = submitted.fingerprint if submitted and submitted.fingerprint else mail.content_hash()
    if raw.reprocess_of is not None:  # a new message by design: its own key, never a duplicate
        m.key = message_key(f"{mail.message_id}\0reprocess\0{uuid.uuid4().hex}")
        return None
    existing = message_by_key(m.session, m.key)
    if existing is not None and existing.content_hash != m.fingerprint and submitted \
            and submitted.exclusive:
        detail = "Message-ID (Idempotency-Key) already used by a different request"
        return Disposition("conflict", mail.message_id, None, detail)
    if existing is not None and existing.content_hash != m.fingerprint:
        # Same Message-ID, different mail (broken clients, test tools): keep both.
        mail.defects.append("Message-ID reused by a different mail; stored separately")
        m.key = message_key(f"{mail.message_id}\0{m.fingerprint}")
        existing = message_by_key(m.session, m.key)
    if existing is None:
        return None
    ticket = m.session.get(Ticket, existing.ticket_id)
    return m.settled("duplicate", ticket.number if ticket else None, "Message-ID already stored")


def thread(m: Inbound) -> Disposition | None:
    """The ticket the mail refers to, by its Message-ID headers or our subject token, when the
    sender takes part in it (a bounce threads by the Message-ID it returns)."""
    agents = frozenset(a.address for a in m.config.agents)
    if m.raw.reprocess_of is not None:
        found = _reprocessed_ticket(m)
        assert found.id is not None
        m.match = ThreadMatch(TicketRef(found.id, found.number, found.status), "reprocess")
    else:
        m.match = find_thread(m.mail, SessionThreadIndex(m.session, agents), m.config.tickets,
                              bounce="bounce" in m.verdict.classes)
    m.joined = m.session.get(Ticket, m.match.ticket.id) if m.match.ticket else None
    return None


def _reprocessed_ticket(m: Inbound) -> Ticket:
    """The ticket of the message whose original is run again (where it was merged to)."""
    earlier = m.session.get(Message, m.raw.reprocess_of)
    ticket = m.session.get(Ticket, earlier.ticket_id) if earlier else None
    if ticket is None:
        raise LookupError(f"message {m.raw.reprocess_of} to reprocess is gone")
    return merge_target(m.session, ticket)


def identify(m: Inbound) -> Disposition | None:
    """Who wrote it: an agent with proof that covers this ticket, or a customer."""
    m.author = identify_author(m.config, m.mail)
    if m.joined is None and m.author.signed_ticket not in (None, NEW_TICKET):
        m.joined = ticket_by_number(m.session, m.author.signed_ticket)  # the address names it
    if not m.verdict.automatic:
        m.agent = m.author.proven_for(_proof_number(m))
    m.old_status = m.joined.status if m.joined else None
    return None


def _proof_number(m: Inbound) -> str | None:
    """The ticket an agent's signed address must name: the joined one, or one merged into it."""
    if m.joined is None:
        return None
    signed = m.author.signed_ticket
    if signed not in (None, NEW_TICKET, m.joined.number.upper()):
        named = ticket_by_number(m.session, str(signed))
        if named is not None and merge_target(m.session, named).id == m.joined.id:
            return named.number
    return m.joined.number


def read_commands(m: Inbound) -> Disposition | None:
    """Commands on the first lines of the body (a bottom poster's: below the quote), the rest."""
    m.commands, m.rest = find_commands(m.mail.text)
    return None


def arrival_rules(m: Inbound) -> Disposition | None:
    """message.received (and ticket.created when one will be opened): the place to drop.

    Only conditions on the database (known customer, organisation, the joined ticket) are
    evaluated here; the rest were decided before the transaction began.
    """
    submitted = m.raw.submission
    m.facts = store_facts(m.session, m.early.facts, ticket=m.joined,
                          author="agent" if m.agent else "customer",
                          organisation=submitted.organisation if submitted else None)
    events = ["message.received"]
    if m.joined is None or (m.agent is None and opens_new(m.config, m.joined, m.verdict.automatic)):
        events.append("ticket.created")
    m.decisions = decide(m.rules, events, m.facts, known=m.early.known)
    dropped = m.decisions.dropped
    if dropped is None:
        return None
    note = describe_drop(dropped)
    log.info("%s %s", m.mail.message_id, note)
    m.settled("dropped", m.joined.number if m.joined else None, note)
    return Disposition("dropped", m.mail.message_id, None, note)


def land_on_ticket(m: Inbound) -> Disposition | None:
    """The ticket it lands on: an agent's reply, note or request, else the customer's ticket."""
    mail = m.mail
    if m.agent is not None:
        plan = plan_commands(m.config, m.commands, by_agent=True, now=m.now)
        if m.raw.reprocess_of is not None:  # carried out once already: only #internal still counts
            plan = Plan(internal=plan.internal)
        m.handled = agent_mail(m.session, m.config, m.raw, mail, m.joined, m.agent, plan, m.rest,
                               now=m.now)
    if m.handled is not None and m.agent is not None:
        detail = f"agent {m.agent.name} ({m.author.proof})"
        if m.handled.not_relayed:
            detail += "; not relayed: no text of the agent's own, kept whole as an internal note"
        m.landing = Landing(m.handled.ticket, m.handled.outcome, detail)
        m.body = Body(m.handled.kind, m.handled.public, m.agent.display_name, m.handled.text, "")
        return None
    if m.raw.reprocess_of is not None and m.joined is not None:  # the status stays as it is
        m.landing = Landing(m.joined, "followup", f"reprocessed message {m.raw.reprocess_of}")
    else:
        m.landing = land(m.session, m.config, m.raw, mail, m.verdict.label, m.match, m.now)
    kind = "bounce" if "bounce" in m.verdict.classes else (
        "auto-reply" if m.verdict.automatic else "customer")
    public, text = True, mail.text
    if m.unproven:  # kept, but shown to agents only: it may be an internal note
        kind, public = "unverified", False
    if kind == "customer" and m.landing.outcome == "followup":
        m.closing = customer_close(m.session, m.ticket, mail.sender, m.commands, m.now)
        text = m.rest if m.closing else text
    from_name = (m.agent.display_name if m.agent else "") or (mail.from_.name if mail.from_ else "")
    m.body = Body(kind, public, from_name, text, mail.html)
    return None


def status_rules(m: Inbound) -> Disposition | None:
    """ticket.status_changed and ticket.reopened, when the mail moved the status: a customer's
    by writing, an agent's by a command or a public reply. Their actions join the mail's
    decisions, so their mails leave the one way the others do (after an agent's mail: under
    the customer's thread, never showing an internal note)."""
    if m.handled is not None:
        before = m.handled.previous_status  # the ticket it landed on, even a merge target
    elif m.joined is not None and m.ticket.id == m.joined.id:
        before = m.old_status
    else:
        before = None
    ticket = m.ticket
    if before is None or ticket.status == before:
        return None
    m.facts.status, m.facts.channel, m.facts.priority = ticket.status, ticket.channel, \
        ticket.priority
    later = ["ticket.status_changed"]
    if before in DONE and ticket.status not in DONE:
        later.append("ticket.reopened")
    for event, outcome in decide(m.rules, later, m.facts, known=m.early.known).outcomes:
        m.decisions.add(event, outcome)
    return None


def store(m: Inbound) -> Disposition | None:
    """The message row with its attachments; people copied on a customer's mail watch."""
    ticket, body = m.ticket, m.body
    assert ticket.id is not None and body is not None
    m.message = write_message(m.session, m.raw, m.mail, ticket.id, m.key, m.fingerprint, body,
                              m.verdict.label, m.now, m.packing)
    if body.kind == "customer":
        m.notes.extend(add_copied_watchers(m.session, m.config, ticket.id, m.mail, m.message.id))
    if m.handled is not None and m.handled.outcome == "followup" and body.kind == "agent" \
            and body.public and body.text.strip():
        responded(ticket, m.now)  # the first public reply (a request an agent opens is none)
    return None


def rule_actions(m: Inbound) -> Disposition | None:
    """What the fired rules set (priority, channel, owner, ...), with their hits recorded."""
    assert m.message is not None
    m.rules_changed_status = apply(m.session, m.config, m.ticket, m.decisions, m.message.id, m.now)
    return None


def timers(m: Inbound) -> Disposition | None:
    """The ticket's due times follow what just happened (a customer's reply cancels auto-close)."""
    sync_timers(m.session, m.config, m.ticket, m.now)
    merged = m.handled.merged if m.handled is not None else None
    if merged is not None:
        sync_timers(m.session, m.config, merged, m.now)
    return None


def notify(m: Inbound) -> Disposition | None:
    """Queue the mails this event causes: acknowledgement, agent notes, relays, bounces."""
    ticket, message, landing = m.ticket, m.message, m.landing
    assert message is not None and landing is not None
    if m.raw.reprocess_of is not None:
        m.notes.append("reprocessed: nobody mailed again")
        return None
    if m.handled is not None and m.agent is not None:
        notes = after_agent(m.session, m.config, ticket, message, m.agent, m.handled,
                            m.decisions, m.rules_changed_status, m.now)
        if m.handled.merged is not None:
            notes += after_merge(m.session, m.config, ticket, m.handled.merged, m.now)
    elif m.unproven and m.author.agent is not None:
        notes = unproven_agent(m.session, m.config, ticket, message, m.author.agent, m.commands,
                               m.decisions, m.rules_changed_status, m.now)
    else:
        notes = after_inbound(m.session, m.config, ticket, message, m.mail, landing.outcome,
                              m.verdict, m.decisions, m.rules_changed_status or m.closing, m.now)
    if message.kind == "bounce":
        notes += record_bounce(m.session, m.config, ticket, m.mail, m.now)
    m.notes.extend(notes)
    return None


def publish(m: Inbound) -> Disposition | None:
    """Queue the webhook events of this mail: ticket created, message received, status changed."""
    ticket, message = m.ticket, m.message
    assert message is not None
    if m.raw.reprocess_of is not None:
        return None
    opened = m.landing is not None and m.landing.outcome == "created"  # not a merge target
    if opened:
        emit(m.session, m.config, "ticket.created", ticket, m.now, message=message)
    if is_public(message):
        emit(m.session, m.config, "message.received", ticket, m.now, message=message)
    before = m.handled.previous_status if m.handled is not None else m.old_status
    if not opened and before is not None and ticket.status != before:
        status_changed(m.session, m.config, ticket, before, m.now)
    merged = m.handled.merged if m.handled is not None else None
    if merged is not None and m.old_status is not None:  # #merge closed the ticket it came to
        status_changed(m.session, m.config, merged, m.old_status, m.now)
    return None


def ledger(m: Inbound) -> Disposition | None:
    """The ledger entry that marks the mail handled; the mail's disposition."""
    landing = m.landing
    assert landing is not None
    detail = "; ".join(x for x in [landing.detail, *m.notes] if x)
    log.info("%s %s %s (%s)", m.mail.message_id, landing.outcome, m.ticket.number, m.match.via)
    return m.settled(landing.outcome, m.ticket.number, detail)


Stage = Callable[[Inbound], Disposition | None]
STAGES: tuple[Stage, ...] = (dedupe, thread, identify, read_commands, arrival_rules,
                             land_on_ticket, status_rules, store, rule_actions, timers, notify,
                             publish, ledger)
