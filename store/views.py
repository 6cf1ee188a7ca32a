"""Read models for the CLI: tickets and quarantine as plain dicts (stable JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select

from store.models import (
    Attachment,
    CapHit,
    Contact,
    Message,
    Organisation,
    OutboxMail,
    QuarantinedMail,
    RuleHit,
    Suppression,
    Ticket,
    TimeEntry,
    Timer,
    Watcher,
    utcnow,
)


def ticket_rows(session: Session, limit: int | None = 1000, offset: int = 0) -> list[dict[str, Any]]:
    """Tickets, newest first, with the customer address (limit None: all of them)."""
    rows = session.exec(
        select(Ticket, Contact.address)
        .join(Contact, col(Contact.id) == col(Ticket.customer_id), isouter=True)
        .order_by(col(Ticket.id).desc())
        .offset(offset).limit(limit)
    ).all()
    return [_ticket_head(ticket, address) for ticket, address in rows]


def _ticket_head(ticket: Ticket, customer: str | None) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "activity_type": ticket.activity_type,
        "source": ticket.source,
        "type": ticket.type,
        "customer": customer,
        "created_at": _when(ticket.created_at),
    }


def ticket_detail(session: Session, number: str) -> dict[str, Any] | None:
    """One ticket with watchers and messages (internal notes included: this is the agent view)."""
    ticket = session.exec(select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        return None
    customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None
    result = _ticket_head(ticket, customer.address if customer else None)
    if ticket.linked_ticket_id:
        linked = session.get(Ticket, ticket.linked_ticket_id)
        result["linked_ticket"] = linked.number if linked else None
    if ticket.merged_into_id:
        target = session.get(Ticket, ticket.merged_into_id)
        result["merged_into"] = target.number if target else None
    result["owner"] = ticket.owner
    result["first_response_at"] = _when(ticket.first_response_at)
    result["resolved_at"] = _when(ticket.resolved_at)
    result.update(_time_and_timers(session, ticket))
    result["categories"] = json.loads(ticket.categories)
    result["tags"] = json.loads(ticket.tags)
    result["rule_hits"] = [
        {"file": h.file, "rule": h.rule, "event": h.event, "actions": json.loads(h.actions),
         "why": h.reasons}
        for h in session.exec(select(RuleHit).where(RuleHit.ticket_id == ticket.id)
                              .order_by(col(RuleHit.id))).all()
    ]
    result["watchers"] = list(session.exec(
        select(Watcher.address).where(Watcher.ticket_id == ticket.id).order_by(col(Watcher.id))
    ).all())
    result["capped"] = [
        {"limit": h.limit, "maximum": h.maximum, "left_out": h.left_out,
         "addresses": json.loads(h.addresses), "message_id": message_id,
         "at": _when(h.created_at)}
        for h, message_id in session.exec(
            select(CapHit, Message.message_id)
            .join(Message, col(Message.id) == col(CapHit.message_id), isouter=True)
            .where(CapHit.ticket_id == ticket.id).order_by(col(CapHit.id))).all()
    ]
    result["messages"] = _messages(session, ticket)
    return result


def _messages(session: Session, ticket: Ticket) -> list[dict[str, Any]]:
    """The ticket's messages, oldest first; outbound ones with their outbox state."""
    messages = session.exec(
        select(Message).where(Message.ticket_id == ticket.id).order_by(col(Message.id))
    ).all()
    outbox = {row.message_row: row for row in session.exec(
        select(OutboxMail).where(OutboxMail.ticket_id == ticket.id)).all()}
    blocked = _suppressed(session, outbox.values())
    return [{"position": n, **_message(session, m, outbox.get(m.id), blocked)}
            for n, m in enumerate(messages, 1)]


def message_on_ticket(session: Session, number: str, which: str) -> Message | None:
    """A ticket's message by its position in `tickets show` (1, 2, ...) or its Message-ID."""
    ticket = session.exec(select(Ticket).where(Ticket.number == number)).first()
    if ticket is None:
        return None
    query = select(Message).where(Message.ticket_id == ticket.id).order_by(col(Message.id))
    if which.isdigit():
        return session.exec(query.offset(max(int(which) - 1, 0)).limit(1)).first() \
            if int(which) >= 1 else None
    wanted = which.strip().strip("<>")
    return session.exec(query.where(Message.message_id == wanted)).first()


def _suppressed(session: Session, rows: Any) -> set[str]:
    """The recipients of these outbox rows that a hard bounce keeps us from mailing now."""
    addresses = {r["address"].lower() for row in rows for r in json.loads(row.recipients)}
    if not addresses:
        return set()
    return set(session.exec(select(Suppression.address).where(
        col(Suppression.address).in_(addresses), col(Suppression.until) > utcnow())).all())


def outbox_state(row: OutboxMail, blocked: set[str]) -> str:
    """queued, sending, sent, retrying, failed or suppressed (every recipient bounced hard)."""
    if row.status == "pending":
        recipients = {r["address"].lower() for r in json.loads(row.recipients)}
        if recipients and recipients <= blocked:
            return "suppressed"
        return "retrying" if row.attempts else "queued"
    return row.status


def _outbox_entry(row: OutboxMail, blocked: set[str]) -> dict[str, Any]:
    return {"id": row.id, "state": outbox_state(row, blocked), "template": row.template,
            "recipients": [r["address"] for r in json.loads(row.recipients)],
            "attempts": row.attempts, "last_error": row.last_error,
            "next_attempt_at": _when(row.next_attempt_at) if row.status == "pending" else None,
            "sent_at": _when(row.sent_at), "preview": False}


def _when(moment: datetime | None) -> str | None:
    """ISO 8601 with its zone: UTC, which SQLite hands back without saying so."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds")


def _time_and_timers(session: Session, ticket: Ticket) -> dict[str, Any]:
    """Booked time (total and entries) and the timers still to fire."""
    entries = session.exec(select(TimeEntry).where(TimeEntry.ticket_id == ticket.id)
                           .order_by(col(TimeEntry.id))).all()
    timers = session.exec(select(Timer).where(Timer.ticket_id == ticket.id,
                                              Timer.status == "pending")
                          .order_by(col(Timer.due_at))).all()
    return {
        "time_booked_minutes": sum(e.minutes for e in entries),
        "time_entries": [{"agent": e.agent, "minutes": e.minutes, "activity": e.activity,
                          "at": _when(e.created_at)} for e in entries],
        "timers": [{"kind": t.kind, "due_at": _when(t.due_at), "note": t.note,
                    "by": t.created_by} for t in timers],
    }


def _message(session: Session, message: Message, outbox: OutboxMail | None = None,
             blocked: set[str] | None = None) -> dict[str, Any]:
    attachments = session.exec(
        select(Attachment.filename, Attachment.content_type, Attachment.size)
        .where(Attachment.message_id == message.id).order_by(col(Attachment.id))
    ).all()
    return {
        "kind": message.kind,
        "direction": message.direction,
        "public": message.public,
        "from": message.from_address,
        "from_raw": message.from_raw,
        "to": json.loads(message.to),
        "cc": json.loads(message.cc),
        "subject": message.subject,
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
        "classification": message.classification,
        "delivery_status": json.loads(message.delivery_status or "[]"),
        "defects": message.defects.splitlines(),
        "text": message.text,
        "html": message.html,
        "original": message.original is not None,
        "attachments": [
            {"filename": f, "content_type": c, "size": s} for f, c, s in attachments
        ],
        "outbox": _outbox_entry(outbox, blocked or set()) if outbox is not None else None,
        "created_at": _when(message.created_at),
    }


def quarantine_rows(session: Session, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Quarantined mails with their reasons, oldest first."""
    query = select(QuarantinedMail).order_by(col(QuarantinedMail.id))
    if not include_resolved:
        query = query.where(col(QuarantinedMail.resolved_at).is_(None))
    return [
        {
            "id": q.id,
            "mailbox": q.mailbox,
            "uid": q.uid,
            "reason": q.reason,
            "size": len(q.raw),
            "created_at": _when(q.created_at),
            "resolution": q.resolution,
        }
        for q in session.exec(query).all()
    ]


def outbox_rows(session: Session, status: str | None = None, limit: int | None = 1000,
                offset: int = 0) -> list[dict[str, Any]]:
    """Outbound mails, newest first (limit None: all of them)."""
    query = (select(OutboxMail, Ticket.number).join(Ticket, col(Ticket.id) == col(OutboxMail.ticket_id))
             .order_by(col(OutboxMail.id).desc()).offset(offset).limit(limit))
    if status:
        query = query.where(OutboxMail.status == status)
    return [
        {"id": row.id, "ticket": number, "template": row.template, "status": row.status,
         "recipients": [r["address"] for r in json.loads(row.recipients)],
         "attempts": row.attempts, "last_error": row.last_error,
         "next_attempt_at": _when(row.next_attempt_at), "sent_at": _when(row.sent_at)}
        for row, number in session.exec(query).all()
    ]


def organisation_rows(session: Session) -> list[dict[str, Any]]:
    """Organisations by domain, with how many contacts they have."""
    counts = dict(session.exec(select(Contact.organisation_id, func.count())
                               .group_by(col(Contact.organisation_id))).all())
    return [{"domain": o.domain, "name": o.name, "share_tickets": o.share_tickets,
             "contacts": int(counts.get(o.id, 0))}
            for o in session.exec(select(Organisation).order_by(col(Organisation.domain))).all()]
