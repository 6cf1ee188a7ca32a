"""Who gets what: the outbound mails an inbound event causes, queued in its transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from gateway.agents.commands import Command
from gateway.agents.identity import signed_reply_address
from gateway.agents.mail import AgentResult
from gateway.config import AgentConfig, Config
from gateway.intake.addresses import valid_address
from gateway.intake.guard import Verdict
from gateway.intake.parse import ParsedMail
from gateway.outbound.files import copy_to, described, files_of, inline, relayed_files, within
from gateway.outbound.outbox import Recipient, ack_allowed, enqueue, suppress, update_allowed
from gateway.rules.stage import Decisions
from gateway.statuses import agent_word, customer_status
from gateway.thread.numbers import token
from store.keys import message_key
from store.models import Attachment, CapHit, Contact, Message, Ticket
from store.queries import hold_back, watcher_addresses

log = logging.getLogger("gateway.notify")


def language_for(config: Config, ticket: Ticket, contact: Contact | None) -> str:
    """The contact's language, else the channel's, else the default."""
    if contact is not None and contact.language:
        return contact.language
    channel = config.channel(ticket.channel)
    return (channel.language if channel else None) or config.outbound.language


def ticket_context(config: Config, ticket: Ticket, language: str) -> dict[str, Any]:
    """The ticket as templates see it."""
    url = config.outbound.portal_url.format(number=ticket.number) if config.outbound.portal_url else ""
    channel = config.channel(ticket.channel) or config.channels[0]
    return {
        "ticket": {"number": ticket.number, "subject": ticket.subject, "status": ticket.status,
                   "status_word": agent_word(ticket.status, language),
                   "priority": ticket.priority, "channel": ticket.channel, "source": ticket.source,
                   "url": url},
        "status": customer_status(ticket.status, language),
        "token": token(ticket.number),
        "channel": {"name": channel.name, "display_name": channel.display_name,
                    "address": channel.address},
        "language": language,
        "message": None, "agent": None, "results": [], "reason": "", "not_relayed": False,
        "timer": None, "merged": None, "files": [], "inline_images": [],
    }


def message_context(message: Message | None, public_only: bool) -> dict[str, str] | None:
    """A message for a template; internal notes never reach customer templates."""
    if message is None or (public_only and not message.public):
        return None
    return {"author": message.from_name or message.from_address, "text": message.text,
            "subject": message.subject}


class Planner:
    """Queues the mails of one event; collects notes on what was held back and why."""

    def __init__(self, session: Session, config: Config, ticket: Ticket, now: datetime) -> None:
        self.session, self.config, self.ticket, self.now = session, config, ticket, now
        self.notes: list[str] = []
        self.budget = config.limits.recipients_per_event  # customer-side recipients left
        self._held: dict[str, CapHit] = {}
        channel = config.channel(ticket.channel) or config.channels[0]
        self.channel = channel
        self.customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None

    def agents(self) -> list[AgentConfig]:
        """The agents who work this ticket's channel."""
        return [a for a in self.config.agents if a.works(self.ticket.channel)]

    def owner_or_agents(self) -> list[AgentConfig]:
        """The ticket's owner; the channel's agents when nobody owns it."""
        owner = [a for a in self.config.agents if a.name == self.ticket.owner]
        return owner or self.agents()

    def to_customer(self, template: str, about: Message | None, *, auto: str,
                    recipients: Sequence[Recipient] | None = None,
                    extra: dict[str, Any] | None = None, from_name: str | None = None,
                    thread: Message | None = None, files: Sequence[Attachment] = ()) -> None:
        """One mail to the customer (and any CC recipients given); never for internal tickets.

        It threads under thread, else under about when that is public: an internal note's
        Message-ID is no more the customer's business than its text.
        """
        if self.ticket.type == "internal":
            self.notes.append(f"{template} not sent: internal ticket")
            return
        if recipients is None:
            if self.customer is None:
                self.notes.append(f"{template} not sent: ticket has no customer")
                return
            recipients = [Recipient(self.customer.address, self.customer.name)]
        undeliverable = [r.address for r in recipients if valid_address(r.address) is None]
        if undeliverable:  # never mail an address that is not one (or one we would have to fix)
            self.notes.append(f"{template} not sent to {', '.join(undeliverable)}: not a valid address")
            recipients = [r for r in recipients if r.address not in undeliverable]
        recipients = self._within_limits(recipients, about)
        if not recipients:
            return
        if self.ticket.source == "portal" and template in ("customer/status_changed", "customer/closed"):
            template = "portal/ticket_update"
        language = language_for(self.config, self.ticket, self.customer)
        context = ticket_context(self.config, self.ticket, language)
        context["recipient"] = {"address": recipients[0].address, "name": recipients[0].name}
        context["message"] = message_context(about, public_only=True)
        context.update(extra or {})
        if thread is None and about is not None and about.public:
            thread = about
        self._queue(template, "customer", recipients, context, thread, auto,
                    reply_to=self.channel.address, from_name=from_name or self.channel.display_name,
                    files=files)

    def _within_limits(self, recipients: Sequence[Recipient],
                       about: Message | None) -> list[Recipient]:
        """The recipients the limits allow (per mail, then what is left for this event);
        whoever is held back is recorded on the ticket."""
        limits = self.config.limits
        kept = list(recipients)
        for limit, maximum, room in (("recipients_per_mail", limits.recipients_per_mail,
                                      limits.recipients_per_mail),
                                     ("recipients_per_event", limits.recipients_per_event,
                                      self.budget)):
            if len(kept) > room:
                self._hold(limit, maximum, [r.address for r in kept[room:]], about)
                kept = kept[:room]
        self.budget -= len(kept)
        return kept

    def _hold(self, limit: str, maximum: int, addresses: list[str], about: Message | None) -> None:
        """Record held-back recipients: one cap hit per limit and event, noted once."""
        assert self.ticket.id is not None
        if limit not in self._held:
            self.notes.append(f"recipients held back (limits.{limit} = {maximum})")
        self._held[limit] = hold_back(self.session, self._held.get(limit), ticket_id=self.ticket.id,
                                      message_id=about.id if about else None, limit=limit,
                                      maximum=maximum, addresses=addresses)

    def to_agent(self, template: str, agent: AgentConfig, about: Message | None,
                 extra: dict[str, Any] | None = None, files: Sequence[Attachment] = ()) -> None:
        """One mail to one agent (each agent gets their own, with their own Reply-To)."""
        language = language_for(self.config, self.ticket, None)
        context = ticket_context(self.config, self.ticket, language)
        context["recipient"] = {"address": agent.address, "name": agent.display_name}
        context["message"] = message_context(about, public_only=False)
        context.update(extra or {})
        self._queue(template, "agent", [Recipient(agent.address, agent.display_name)], context,
                    about, "auto-generated", reply_to=self.reply_address(agent),
                    from_name=self.channel.display_name, files=files)

    def reply_address(self, agent: AgentConfig) -> str:
        """Where an agent's reply goes (the channel address; signed per agent when enabled)."""
        return signed_reply_address(self.config, self.channel.address, self.ticket.number, agent)

    def _queue(self, template: str, audience: str, recipients: Sequence[Recipient],
               context: dict[str, Any], about: Message | None, auto: str, *, reply_to: str,
               from_name: str, files: Sequence[Attachment] = ()) -> None:
        refs = (about.references or "").split() if about else []
        queued = enqueue(self.session, self.config, self.ticket, template, audience, recipients, context,
                now=self.now, auto_submitted=auto,
                in_reply_to=about.message_id if about else None, references=refs,
                reply_to=reply_to, from_name=from_name, from_address=self.channel.address)
        if queued is not None:
            copy_to(self.session, queued, files)

    def tell_agents(self, template: str, agents: Sequence[AgentConfig], inbound: Message) -> None:
        """A notification per agent, with the customer's files attached up to a size, else listed."""
        files = files_of(self.session, inbound.id)
        chosen = within(files, self.config.outbound.notify_attach_max_bytes)
        listed = [{**d, "attached": f in chosen.attached} for f, d in zip(files, described(files),
                                                                          strict=True)]
        for agent in agents:
            self.to_agent(template, agent, inbound, extra={"files": listed}, files=chosen.attached)

    def auto_reply(self, template: str, inbound: Message, verdict: Verdict) -> None:
        """An automatic reply to the sender of inbound, unless that could start a loop."""
        assert self.ticket.id is not None
        if verdict.automatic:
            self.notes.append(f"no {template}: the mail is automatic ({verdict.label})")
            return
        address = inbound.from_address
        if not address:
            raw = inbound.from_raw or "no From header"
            self.notes.append(f"no {template}: the sender wrote no valid address ({raw})")
            return
        own = self.config.own_addresses()
        if address in own or address.rpartition("@")[2] in self.config.own_domains:
            self.notes.append(f"no {template}: sender {address} is one of ours")
            return
        held = ack_allowed(self.session, self.config, address, self.ticket.id, self.now)
        if held is not None:
            self.notes.append(f"no {template}: {held}")
            log.warning("%s %s held back: %s", self.ticket.number, template, held)
            return
        self.to_customer(template, inbound, auto="auto-replied",
                         recipients=[Recipient(address, inbound.from_name)])

    def status_changed(self, about: Message | None, thread: Message | None = None) -> None:
        """Tell the customer the ticket's new status (closing has its own template)."""
        closed = self.ticket.status in ("resolved", "closed")
        self.to_customer("customer/closed" if closed else "customer/status_changed", about,
                         auto="auto-generated", thread=thread)


def after_inbound(session: Session, config: Config, ticket: Ticket, inbound: Message,
                  mail: ParsedMail, outcome: str, verdict: Verdict, decisions: Decisions,
                  rules_changed_status: bool, now: datetime) -> list[str]:
    """Queue the mails a stored inbound message causes; returns notes on mails held back."""
    plan = Planner(session, config, ticket, now)
    customer_message = inbound.kind == "customer"
    if outcome == "created":
        template = decisions.action("auto_reply")
        if template is None:
            template = "portal/ticket_update" if ticket.source == "portal" else "customer/acknowledgement"
        if template is not False:
            plan.auto_reply(template, inbound, verdict)
        plan.tell_agents("agent/new_ticket", plan.agents(), inbound)
    elif outcome == "followup" and customer_message:
        plan.tell_agents("agent/new_message",
                         _agents_to_tell(session, config, plan, ticket, inbound.from_address), inbound)
        copied = {a.address for a in [*mail.to, *mail.cc]}
        for watcher in _watchers(session, ticket, exclude={inbound.from_address, *copied}, config=config):
            if not update_allowed(session, config, watcher, now):
                plan.notes.append(f"no watcher/update to {watcher}: hourly limit reached")
                continue
            plan.to_customer("watcher/update", inbound, auto="auto-generated",
                             recipients=[Recipient(watcher)])
    elif outcome == "rejected":
        plan.auto_reply("customer/rejected_followup", inbound, verdict)
    rule_mails(plan, decisions, inbound, rules_changed_status and not verdict.automatic)
    return plan.notes


def rule_mails(plan: Planner, decisions: Decisions, about: Message | None, status_changed: bool,
               thread: Message | None = None) -> None:
    """What the fired rules cause: the customer hears of a status change; each notify is sent.

    The one way rules' mails leave, after a customer's mail, an agent's mail (threaded under
    the customer's last mail, never under an internal note) or a timer (about no message).
    """
    if status_changed:
        plan.status_changed(about, thread)
    for request in decisions.action_list("notify"):
        _notify(plan, request, about, thread)


def _agents_to_tell(session: Session, config: Config, plan: Planner, ticket: Ticket,
                    author: str) -> list[AgentConfig]:
    """Owner and agent watchers; the channel's agents when nobody owns or watches it."""
    assert ticket.id is not None
    watching = watcher_addresses(session, ticket.id)
    chosen = [a for a in config.agents
              if (a.name == ticket.owner or a.address in watching) and a.address != author]
    return chosen or [a for a in plan.agents() if a.address != author]


def _watchers(session: Session, ticket: Ticket, exclude: set[str], config: Config) -> list[str]:
    """Non-agent watchers (CC'd people) to tell about public activity, minus exclude."""
    agents = {a.address for a in config.agents}
    customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None
    assert ticket.id is not None
    rows = watcher_addresses(session, ticket.id)
    skip = exclude | agents | ({customer.address} if customer else set())
    return [address for address in rows if address not in skip]


def _notify(plan: Planner, request: dict[str, str], about: Message | None,
            thread: Message | None) -> None:
    """A rule's notify action: a template to an audience."""
    template, audience = request["template"], request["audience"]
    ticket, config = plan.ticket, plan.config
    if audience == "customer":
        plan.to_customer(template, about, auto="auto-generated", thread=thread)
    elif audience == "watchers":
        for address in _watchers(plan.session, ticket, exclude=set(), config=config):
            plan.to_customer(template, about, auto="auto-generated", recipients=[Recipient(address)],
                             thread=thread)
    else:
        agents = plan.agents() if audience == "agents" else [
            a for a in config.agents if a.name == ticket.owner]
        for agent in agents:
            plan.to_agent(template, agent, about)


def record_bounce(session: Session, config: Config, ticket: Ticket, mail: ParsedMail,
                  now: datetime) -> list[str]:
    """A hard bounce of one of our mails: suppress its failed recipients for a while.

    Only recipients of the mail of ours that the report returns count, and never agents or
    our own addresses: a forged report cannot silence anyone else.
    """
    keys = [message_key(m) for m in mail.thread_ids()[:100]]
    ours = session.exec(select(Message).where(Message.direction == "out",
                                              col(Message.message_key).in_(keys))).all()
    sent_to = {a for m in ours for a in [*json.loads(m.to), *json.loads(m.cc)]}
    protected = {a.address for a in config.agents} | config.own_addresses()
    until = now + timedelta(days=config.outbound.bounce_suppress_days)
    notes = []
    for address, status in mail.delivery_status:
        if not status.startswith("5."):
            continue
        if address not in sent_to or address in protected:
            notes.append(f"bounce for {address} ignored: not a recipient of a mail of ours here")
            continue
        suppress(session, address, until, f"hard bounce {status} ({mail.message_id})", ticket.id)
        notes.append(f"{address} suppressed until {until:%Y-%m-%d} (DSN {status})")
    return notes


def after_agent(session: Session, config: Config, ticket: Ticket, message: Message,
                agent: AgentConfig, handled: AgentResult, decisions: Decisions,
                rules_changed_status: bool, now: datetime) -> list[str]:
    """A proven agent's mail: relay a public reply to the customer, report the commands.

    Only a public reply with text is relayed; a reply that had nothing of the agent's own was
    stored as a note (``handled.not_relayed``) and the agent is told so, never sent empty.
    Mails to customers thread under the customer's last mail: the agent's own Message-ID
    stays private. The status shows in the acknowledgement and the relayed reply; otherwise
    (a note, commands only) a status change gets its own mail, without the note.
    """
    plan = Planner(session, config, ticket, now)
    last = _last_customer_mail(session, ticket)
    status_shown = False
    left_behind: list[str] = []
    if handled.outcome == "created" and ticket.type == "request":
        plan.to_customer("customer/acknowledgement", None, auto="auto-replied")
        status_shown = True
    elif handled.public and message.text.strip():
        customer = plan.customer
        recipients = [Recipient(customer.address, customer.name)] if customer else []
        recipients += [Recipient(w, kind="cc") for w in _watchers(session, ticket, set(), config)]
        if recipients:
            chosen = relayed_files(session, config, message)
            plan.to_customer("customer/agent_reply", message, auto="no", recipients=recipients,
                             extra={"agent": {"display_name": agent.display_name},
                                    "inline_images": [{"cid": f.content_id, "filename": f.filename}
                                                      for f in chosen.attached if inline(f)]},
                             from_name=agent.display_name, thread=last, files=chosen.attached)
            status_shown = True
            left_behind = [f"{d['filename']} ({d['size_text']}) not sent to the customer: over "
                           f"outbound.relay_max_bytes" for d in described(chosen.left)]
    changed = (handled.status_changed or rules_changed_status) and not status_shown
    rule_mails(plan, decisions, message, changed, thread=last)
    if handled.results or handled.not_relayed or left_behind:
        plan.to_agent("agent/command_result", agent, message,
                      extra={"results": [*handled.results, *left_behind], "reason": "",
                             "not_relayed": handled.not_relayed})
    plan.notes.extend(left_behind)
    return plan.notes



def _last_customer_mail(session: Session, ticket: Ticket) -> Message | None:
    """The customer's latest mail on the ticket: what mails caused by agents thread under."""
    return session.exec(
        select(Message).where(Message.ticket_id == ticket.id, Message.direction == "in",
                              Message.kind == "customer")
        .order_by(col(Message.id).desc())
    ).first()


def unproven_agent(session: Session, config: Config, ticket: Ticket, message: Message,
                   agent: AgentConfig, commands: Sequence[Command], decisions: Decisions,
                   rules_changed_status: bool, now: datetime) -> list[str]:
    """A mail that only claims to be from an agent: stored as ordinary text, hidden from
    customers (it may be an internal note); the agent hears why. The rules still apply."""
    plan = Planner(session, config, ticket, now)
    rule_mails(plan, decisions, message, rules_changed_status,
               thread=_last_customer_mail(session, ticket))
    reason = ("This mail came from your address but without proof that you sent it: it was not "
              "sent to your signed reply address and no trusted mail server confirmed it "
              "(DKIM/SPF). It was stored as an ordinary message and relayed to nobody.")
    results = [f"{c.line}: not executed (unproven sender)" for c in commands]
    plan.to_agent("agent/command_result", agent, message, extra={"results": results, "reason": reason})
    return [*plan.notes, f"unproven mail from agent {agent.name}: commands not executed"]


def after_merge(session: Session, config: Config, target: Ticket, source: Ticket,
                now: datetime) -> list[str]:
    """Tell the merged ticket's customer, once, where their request goes on."""
    plan = Planner(session, config, target, now)
    plan.customer = session.get(Contact, source.customer_id) if source.customer_id else None
    if source.type == "internal" or plan.customer is None:
        return [f"no customer/merged: {source.number} has no customer"]
    plan.to_customer("customer/merged", None, auto="auto-generated",
                     extra={"merged": {"number": source.number, "subject": source.subject}})
    return plan.notes
