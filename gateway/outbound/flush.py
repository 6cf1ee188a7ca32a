"""The sending pass: claim due outbox rows, render them, send them, record every outcome.

``flush_outbox_once`` claims due rows (``SKIP LOCKED`` on PostgreSQL), renders them, sends
them over one connection and records each outcome at once: sent, retry later (backoff), or
failed. A crash mid-batch never sends a recorded mail again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.errors import PermanentSendError, TemporarySendError
from gateway.outbound.events import message_sent
from gateway.outbound.outbox import header_safe, subject_with_token
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import MailSender
from gateway.retry import backoff
from store.db import transaction
from store.models import Message, OutboxMail, Ticket

log = logging.getLogger("gateway.mailer")

CLAIM_SECONDS = 600


@dataclass
class FlushResult:
    """What one pass over the outbox did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    next_due: datetime | None = None


def aware(moment: datetime) -> datetime:
    """Times read back from SQLite lack their zone: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def retry_delay(config: Config, attempts: int) -> timedelta:
    """Delay before the next try: doubling from retry_base_seconds, at most an hour."""
    return timedelta(seconds=backoff(attempts, config.outbound.retry_base_seconds, 3600.0))


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
    mail["Subject"] = subject_with_token(rendered.subject, ticket.number)
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
                message_sent(session, config, row.message_row, now)  # webhook, same transaction
                continue
            row.attempts += 1
            row.last_error = detail[:2000]
            if state == "retry" and row.attempts < config.outbound.retry_max_attempts:
                row.status = "pending"
                row.next_attempt_at = now + retry_delay(config, row.attempts)
                result.retried += 1
                log.warning("outbox %s %s: retry in %s: %s", row_id, row.template,
                            retry_delay(config, row.attempts), detail)
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
    return aware(due) if due is not None else None
