"""The outbox queue: mails written in the transaction of the event that causes them.

``enqueue`` runs inside the pipeline's transaction, so a mail exists exactly when the event
that caused it was stored; ``gateway.outbound.flush`` sends it later. Loop protection lives
here: rate limits on automatic replies and watcher updates, suppressed (bounced) recipients.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.outbound.bell import queued
from store.keys import message_key
from store.models import Message, OutboxMail, Suppression, Ticket
from store.queries import insert_one

log = logging.getLogger("gateway.mailer")

ACK_TEMPLATES = frozenset({"customer/acknowledgement", "customer/out_of_hours",
                           "customer/rejected_followup"})
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def header_safe(value: str) -> str:
    """User text fit for a header: no CR, LF or other control characters.

    >>> header_safe("Hi\\r\\nBcc: victim@example.com")
    'Hi Bcc: victim@example.com'
    """
    return " ".join(_UNSAFE.sub(" ", value).split())


@dataclass(frozen=True)
class Recipient:
    """An address a mail goes to, with the name to greet."""

    address: str
    name: str = ""
    kind: str = "to"  # to | cc


# The rate-limit and suppression look-ups every mail makes, built once.
_SUPPRESSED = select(Suppression.address).where(col(Suppression.until) > bindparam("now"))
_RECENT = select(func.count()).select_from(OutboxMail).where(
    col(OutboxMail.template).in_(bindparam("templates", expanding=True)),
    OutboxMail.primary_address == bindparam("address"),
    col(OutboxMail.created_at) >= bindparam("since"))
_ACKS_ON_TICKET = select(func.count()).select_from(OutboxMail).where(
    col(OutboxMail.template).in_(ACK_TEMPLATES), OutboxMail.ticket_id == bindparam("ticket_id"))


def suppressed(session: Session, address: str, now: datetime) -> bool:
    """Whether a hard bounce keeps us from mailing this address now (one query a transaction)."""
    active: set[str] | None = session.info.get("suppressed")
    if active is None:
        active = set(session.execute(_SUPPRESSED, {"now": now}).scalars())
        session.info["suppressed"] = active
    return address.lower() in active


def suppress(session: Session, address: str, until: datetime, reason: str,
             ticket_id: int | None) -> None:
    """Stop mailing an address until a time (a hard bounce)."""
    session.info.pop("suppressed", None)
    row = session.get(Suppression, address.lower())
    if row is None:
        session.add(Suppression(address=address.lower(), until=until, reason=reason[:500],
                                ticket_id=ticket_id))
    else:
        row.until, row.reason, row.ticket_id = until, reason[:500], ticket_id


def _recent(session: Session, address: str, templates: frozenset[str], since: datetime) -> int:
    """How many mails of these templates went to address since a time."""
    params = {"templates": sorted(templates), "address": address, "since": since}
    return int(session.execute(_RECENT, params).scalar_one())


def update_allowed(session: Session, config: Config, address: str, now: datetime) -> bool:
    """Watcher updates are rate-limited like automatic replies: two CC'd robots cannot loop."""
    sent = _recent(session, address, frozenset({"watcher/update"}), now - timedelta(hours=1))
    return sent < config.outbound.ack_limit_per_recipient_hour


def ack_allowed(session: Session, config: Config, address: str, ticket_id: int,
                now: datetime) -> str | None:
    """None when an automatic reply may go out; otherwise why not (rate limits)."""
    per_recipient = _recent(session, address, ACK_TEMPLATES, now - timedelta(hours=1))
    if per_recipient >= config.outbound.ack_limit_per_recipient_hour:
        return (f"{per_recipient} automatic replies to {address} in the last hour "
                f"(limit {config.outbound.ack_limit_per_recipient_hour})")
    per_ticket = session.execute(_ACKS_ON_TICKET, {"ticket_id": ticket_id}).scalar_one()
    if per_ticket >= config.outbound.ack_limit_per_ticket:
        return (f"{per_ticket} automatic replies on this ticket already "
                f"(limit {config.outbound.ack_limit_per_ticket})")
    return None


def subject_with_token(subject: str, number: str) -> str:
    """The rendered subject, header-safe, with the ticket token in it once.

    >>> subject_with_token("Your request", "T0042")
    '[#T0042] Your request'
    >>> subject_with_token("Re: [#T0042] Printer", "T0042")
    'Re: [#T0042] Printer'
    """
    safe = header_safe(subject)
    token = f"[#{number}]"
    return safe if token in safe else f"{token} {safe}"


def new_message_id(config: Config) -> str:
    """A fresh Message-ID in our domain (without brackets)."""
    return f"{uuid.uuid4().hex}@{config.outbound.message_id_domain}"


def enqueue(session: Session, config: Config, ticket: Ticket, template: str, audience: str,
            recipients: Sequence[Recipient], context: dict[str, Any], *, now: datetime,
            auto_submitted: str, in_reply_to: str | None, references: Sequence[str],
            reply_to: str, from_name: str, from_address: str) -> int | None:
    """Write one outbound mail (and its Message row, so replies thread) into the outbox; the
    Message row's id, None when every recipient is suppressed.

    Both rows are written at once as plain inserts: nothing reads them back in this
    transaction through the ORM, and building ORM objects costs more than the inserts.
    """
    live = [r for r in recipients if not suppressed(session, r.address, now)]
    if not live:
        log.info("%s %s not queued: every recipient is suppressed", ticket.number, template)
        return None
    assert ticket.id is not None
    message_id = new_message_id(config)
    thread = [*references, *([in_reply_to] if in_reply_to else [])]
    message_row = insert_one(
        session, Message, ticket_id=ticket.id, direction="out",
        kind="acknowledgement" if template in ACK_TEMPLATES else (
            "agent-reply" if template == "customer/agent_reply" else "notification"),
        public=audience != "agent", message_id=message_id, message_key=message_key(message_id),
        in_reply_to=in_reply_to, references=" ".join(thread[-20:]) or None,
        from_address=from_address, from_name=from_name,
        to=json.dumps([r.address for r in live if r.kind == "to"]),
        cc=json.dumps([r.address for r in live if r.kind == "cc"]),
        classification=auto_submitted, created_at=now,
    )
    meta = {"auto_submitted": auto_submitted, "reply_to": reply_to, "from_name": from_name,
            "from_address": from_address}
    insert_one(
        session, OutboxMail, ticket_id=ticket.id, message_row=message_row, template=template,
        language=str(context.get("language", config.outbound.language)), audience=audience,
        recipients=json.dumps([r.__dict__ for r in live]),
        primary_address=live[0].address,
        context=json.dumps({**context, "_meta": meta}, ensure_ascii=False, default=str),
        next_attempt_at=now, created_at=now,
    )
    queued(session)  # the mailer wakes once this transaction commits
    return message_row
