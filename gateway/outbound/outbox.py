"""The outbox: mails written in the event's transaction, claimed and sent by the mailer.

``enqueue`` runs inside the pipeline's transaction, so a mail exists exactly when the event
that caused it was stored. ``flush_outbox_once`` claims due rows, renders them, sends them
over one connection and records every outcome: sent, retry later (backoff), or failed.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.intake.parse import message_key
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import MailSender, PermanentSendError, TemporarySendError
from store.db import transaction
from store.models import Message, OutboxMail, Suppression, Ticket

log = logging.getLogger("gateway.mailer")

ACK_TEMPLATES = frozenset({"customer/acknowledgement", "customer/out_of_hours",
                           "customer/rejected_followup"})
CLAIM_SECONDS = 600
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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def suppressed(session: Session, address: str, now: datetime) -> bool:
    """Whether a hard bounce keeps us from mailing this address now (one query a transaction)."""
    active: set[str] | None = session.info.get("suppressed")
    if active is None:
        active = set(session.exec(
            select(Suppression.address).where(col(Suppression.until) > now)).all())
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
    return int(session.exec(
        select(func.count()).select_from(OutboxMail).where(
            col(OutboxMail.template).in_(templates),
            OutboxMail.primary_address == address,
            col(OutboxMail.created_at) >= since,
        )
    ).one())


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
    per_ticket = session.exec(
        select(func.count()).select_from(OutboxMail).where(
            col(OutboxMail.template).in_(ACK_TEMPLATES), OutboxMail.ticket_id == ticket_id)
    ).one()
    if per_ticket >= config.outbound.ack_limit_per_ticket:
        return (f"{per_ticket} automatic replies on this ticket already "
                f"(limit {config.outbound.ack_limit_per_ticket})")
    return None


def new_message_id(config: Config) -> str:
    """A fresh Message-ID in our domain (without brackets)."""
    return f"{uuid.uuid4().hex}@{config.outbound.message_id_domain}"


def enqueue(session: Session, config: Config, ticket: Ticket, template: str, audience: str,
            recipients: Sequence[Recipient], context: dict[str, Any], *, now: datetime,
            auto_submitted: str, in_reply_to: str | None, references: Sequence[str],
            reply_to: str, from_name: str, from_address: str) -> OutboxMail | None:
    """Write one outbound mail (and its Message row, so replies thread) into the outbox."""
    live = [r for r in recipients if not suppressed(session, r.address, now)]
    if not live:
        log.info("%s %s not queued: every recipient is suppressed", ticket.number, template)
        return None
    assert ticket.id is not None
    message_id = new_message_id(config)
    thread = [*references, *([in_reply_to] if in_reply_to else [])]
    row = Message(
        ticket_id=ticket.id, direction="out",
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
    mail = OutboxMail(
        ticket_id=ticket.id, message=row, template=template,
        language=str(context.get("language", config.outbound.language)), audience=audience,
        recipients=json.dumps([r.__dict__ for r in live]),
        primary_address=live[0].address,
        context=json.dumps({**context, "_meta": meta}, ensure_ascii=False, default=str),
        next_attempt_at=now, created_at=now,
    )
    session.add(mail)
    return mail


# --- sending --------------------------------------------------------------------------------

@dataclass
class FlushResult:
    """What one pass over the outbox did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    next_due: datetime | None = None


def backoff(config: Config, attempts: int) -> timedelta:
    """Delay before the next try: doubling from retry_base_seconds, at most an hour.

    >>> from gateway.config import parse_config
    >>> [backoff(parse_config({}, "c"), n).total_seconds() for n in (1, 2, 3, 20)]
    [30.0, 60.0, 120.0, 3600.0]
    """
    seconds = config.outbound.retry_base_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, 3600.0))


def claim(engine: Engine, config: Config, now: datetime) -> list[int]:
    """Take due rows (and rows whose sender died mid-send) for this process."""
    with transaction(engine) as session:
        query = (
            select(OutboxMail)
            .where(or_(
                and_(col(OutboxMail.status) == "pending", col(OutboxMail.next_attempt_at) <= now),
                and_(col(OutboxMail.status) == "sending", col(OutboxMail.claimed_until) < now),
            ))
            .order_by(col(OutboxMail.id))
            .limit(config.outbound.batch_size)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.exec(query).all()
        # Held long enough for the whole batch to time out mail by mail.
        hold = max(CLAIM_SECONDS, config.outbound.batch_size * _timeout(config) + 60)
        for row in rows:
            row.status = "sending"
            row.claimed_until = now + timedelta(seconds=hold)
        return [row.id for row in rows if row.id is not None]


def _timeout(config: Config) -> float:
    return config.smtp.timeout_seconds if config.smtp else 30.0


def compose(row: OutboxMail, message: Message, ticket: Ticket, renderer: Renderer) -> EmailMessage:
    """The MIME mail for an outbox row: rendered parts and our threading and loop headers."""
    context = json.loads(row.context)
    meta = context.pop("_meta")
    rendered = renderer.render(row.template, row.language, context)
    recipients = json.loads(row.recipients)
    mail = EmailMessage()
    mail["From"] = formataddr((header_safe(meta["from_name"]), meta["from_address"]))
    named = [(r["kind"], formataddr((header_safe(r["name"]), r["address"]))) for r in recipients]
    to = [a for kind, a in named if kind == "to"] or [named[0][1]]  # someone must be in To
    cc = [a for _, a in named if a not in to]
    mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    mail["Reply-To"] = meta["reply_to"]
    subject = header_safe(rendered.subject)
    token = f"[#{ticket.number}]"
    mail["Subject"] = subject if token in subject else f"{token} {subject}"
    mail["Message-ID"] = f"<{message.message_id}>"
    mail["Date"] = format_datetime(datetime.now(UTC))
    if message.in_reply_to:
        mail["In-Reply-To"] = f"<{header_safe(message.in_reply_to)}>"
    if message.references:
        mail["References"] = " ".join(f"<{header_safe(ref)}>" for ref in message.references.split())
    mail["Auto-Submitted"] = meta["auto_submitted"]
    mail["X-Auto-Response-Suppress"] = "All"
    if meta["auto_submitted"] != "no":  # an agent's reply is a human's mail
        mail["Precedence"] = "bulk"
    mail["X-Loop"] = meta["from_address"]
    mail.set_content(rendered.text)
    mail.add_alternative(rendered.html, subtype="html")
    message.subject, message.text, message.html = mail["Subject"], rendered.text, rendered.html
    return mail


async def flush_outbox_once(engine: Engine, config: Config, sender: Callable[[], MailSender],
                            renderer: Renderer, now: datetime | None = None) -> FlushResult:
    """Send every due mail now over one connection; return what happened."""
    now = now or datetime.now(UTC)
    result = FlushResult()
    ids = claim(engine, config, now)
    if not ids:
        result.next_due = next_due(engine)
        return result
    failed_renders: dict[int, tuple[str, str]] = {}
    prepared: list[tuple[int, EmailMessage]] = []
    with transaction(engine) as session:
        for row_id in ids:
            row = session.get(OutboxMail, row_id)
            assert row is not None
            message = session.get(Message, row.message_row) if row.message_row else None
            ticket = session.get(Ticket, row.ticket_id)
            assert message is not None and ticket is not None
            try:
                prepared.append((row_id, compose(row, message, ticket, renderer)))
            except Exception as exc:  # a broken (admin) template: record it, never crash
                failed_renders[row_id] = ("failed", f"render failed: {type(exc).__name__}: {exc}")
    _record(engine, config, failed_renders, now, result)
    pending = [row_id for row_id, _ in prepared]
    try:
        async with sender() as connection:
            for row_id, mail in prepared:
                try:
                    await connection.send(mail)
                    outcome = ("sent", "")
                except PermanentSendError as exc:
                    outcome = ("failed", str(exc))
                except TemporarySendError as exc:
                    outcome = ("retry", str(exc))
                    if exc.connection_lost:
                        _record(engine, config, {row_id: outcome}, now, result)
                        pending.remove(row_id)
                        break
                except Exception as exc:  # never resend a mail over an error we do not know
                    outcome = ("failed", f"{type(exc).__name__}: {exc}")
                # Recorded at once: a crash later in the batch never sends this one again.
                _record(engine, config, {row_id: outcome}, now, result)
                pending.remove(row_id)
    except TemporarySendError as exc:
        _record(engine, config, dict.fromkeys(pending, ("retry", str(exc))), now, result)
        pending = []
    _record(engine, config, dict.fromkeys(pending, ("retry", "not attempted: connection lost")),
            now, result)
    result.next_due = next_due(engine)
    return result


def _record(engine: Engine, config: Config, outcomes: dict[int, tuple[str, str]],
            now: datetime, result: FlushResult) -> None:
    if not outcomes:
        return
    with transaction(engine) as session:
        for row_id, (state, detail) in outcomes.items():
            row = session.get(OutboxMail, row_id)
            assert row is not None
            row.claimed_until = None
            if state == "sent":
                row.status, row.sent_at, row.last_error = "sent", now, ""
                row.attempts += 1
                result.sent += 1
                continue
            row.attempts += 1
            row.last_error = detail[:2000]
            if state == "retry" and row.attempts < config.outbound.retry_max_attempts:
                row.status = "pending"
                row.next_attempt_at = now + backoff(config, row.attempts)
                result.retried += 1
                log.warning("outbox %s %s: retry in %s: %s", row_id, row.template,
                            backoff(config, row.attempts), detail)
            else:
                row.status = "failed"
                result.failed += 1
                log.error("outbox %s %s failed for good: %s", row_id, row.template, detail)


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending mail is due (for the retry timer)."""
    with Session(engine) as session:
        due = session.exec(
            select(func.min(OutboxMail.next_attempt_at)).where(OutboxMail.status == "pending")
        ).one()
    return _aware(due) if due is not None else None
