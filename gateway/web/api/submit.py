"""Submissions through the pipeline: an API request becomes a mail and takes the mail's way.

The request is rendered as a faithful MIME mail (kept like any mail's original), parsed by
the same parser with the configured HTML sanitiser, and handed to ``gateway.pipeline.process``
with a ``Submission`` for the fields mail cannot carry. Threading, rules, notifications,
size limits and the one transaction are the pipeline's: nothing here decides about tickets.
An Idempotency-Key fixes the Message-ID, so the pipeline's Message-ID dedupe returns the first
ticket on a retry.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.agents.mail import may_close
from gateway.config import LANGUAGES, Config
from gateway.configmodels import SOURCES
from gateway.intake.attachments import safe_filename
from gateway.intake.htmltext import SANITIZERS
from gateway.intake.parse import parse_mail
from gateway.intake.raw import RawMail, Submission
from gateway.outbound.outbox import header_safe
from gateway.pipeline import Disposition, process
from gateway.rules.model import Rule
from gateway.statuses import CLOSED
from gateway.views.visibility import Viewer, visible_ticket
from gateway.web.problems import Problem
from gateway.web.tokens import Client
from store.keys import message_key
from store.models import Message, Ticket

FINGERPRINT = "X-Ticketgate-Request-Hash"


@dataclass(frozen=True)
class Upload:
    """One attached file as received."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Draft:
    """What a client submitted, checked and typed: a new ticket or a message on one."""

    source: str
    email: str
    name: str
    subject: str
    text: str
    html: str
    channel: str
    files: list[Upload] = field(default_factory=list)
    organisation: str | None = None
    category: str | None = None
    asset: str | None = None
    language: str | None = None
    in_reply_to: str | None = None  # a Message-ID of the ticket it answers
    request: str = ""  # what the client sent (route and document): an idempotent retry repeats it


def _clean(text: str) -> str:
    """Text that encodes: lone surrogates from JSON become U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def fingerprint(draft: Draft) -> str:
    """SHA-256 over what the client sent (not what we derived, such as the thread): a retry matches."""
    digest = hashlib.sha256(draft.request.encode("utf-8", "surrogatepass"))
    for item in draft.files:
        digest.update(f"\0{item.filename}\0{item.content_type}\0".encode("utf-8", "replace"))
        digest.update(hashlib.sha256(item.data).digest())
    return digest.hexdigest()


def message_id_for(config: Config, client: Client, key: str | None) -> str:
    """The submission's Message-ID: fixed by (token, Idempotency-Key), else fresh."""
    domain = f"api.{config.outbound.message_id_domain}"
    if key is None:
        return f"{uuid.uuid4().hex}@{domain}"
    scoped = hashlib.sha256(f"{client.token_hash}\0{key}".encode("utf-8", "surrogatepass"))
    return f"{scoped.hexdigest()[:40]}@{domain}"


def render(config: Config, draft: Draft, message_id: str, client: Client, now: datetime) -> bytes:
    """The submission as a MIME mail: headers of our own name where it came from and what it adds."""
    mail = EmailMessage()
    channel = config.channel(draft.channel) or config.channels[0]
    mail["From"] = formataddr((header_safe(_clean(draft.name)), draft.email))
    mail["To"] = channel.address
    mail["Subject"] = header_safe(_clean(draft.subject))
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = f"<{message_id}>"
    if draft.in_reply_to:
        mail["In-Reply-To"] = mail["References"] = f"<{draft.in_reply_to}>"
    mail["X-Ticketgate-Source"] = draft.source
    mail["X-Ticketgate-Client"] = header_safe(client.name)
    for name, value in (("Organisation", draft.organisation), ("Category", draft.category),
                        ("Asset", draft.asset)):
        if value:
            mail[f"X-Ticketgate-{name}"] = header_safe(_clean(value))
    if draft.language:  # an X- header: set_content and add_attachment move Content-* headers
        mail["X-Ticketgate-Language"] = draft.language
    mail[FINGERPRINT] = fingerprint(draft)
    text, html = _clean(draft.text), _clean(draft.html)
    if html and not text:
        mail.set_content(html, subtype="html", charset="utf-8")
    else:
        mail.set_content(text, charset="utf-8")
        if html:
            mail.add_alternative(html, subtype="html", charset="utf-8")
    for index, item in enumerate(draft.files, 1):
        maintype, _, subtype = item.content_type.partition("/")
        if maintype in ("message", "multipart"):  # kept as opaque bytes, never re-parsed as MIME
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(item.data, maintype=maintype, subtype=subtype,
                            filename=safe_filename(_clean(item.filename), item.content_type, index))
    return mail.as_bytes()


@dataclass(frozen=True)
class Result:
    """The pipeline's disposition and the Message-ID key the submission was stored under."""

    disposition: Disposition
    key: str


def submit(engine: Engine, config: Config, rules: list[Rule], client: Client, draft: Draft,
           idempotency_key: str | None, now: datetime) -> Result:
    """Run a submission through the pipeline (blocking: call it from the thread pool)."""
    message_id = message_id_for(config, client, idempotency_key)
    data = render(config, draft, message_id, client, now)
    limit = config.limits.max_message_bytes
    if len(data) > limit:
        raise Problem(413, "too-large", f"the submission is {len(data)} bytes as a mail "
                      f"(attachments base64-encoded), more than limits.max_message_bytes {limit}",
                      field="attachments" if draft.files else "text")
    parsed = parse_mail(data, SANITIZERS[config.html_sanitizer])
    submission = submission_of(parsed.headers, exclusive=idempotency_key is not None)
    raw = RawMail(data, f"api:{client.name}", channel=draft.channel, source=draft.source,
                  submission=submission)
    disposition = process(engine, config, raw, now, rules=rules, parsed=parsed)
    return Result(disposition, message_key(parsed.message_id))


def submission_of(headers: dict[str, list[str]], exclusive: bool) -> Submission:
    """The submission's fields from the headers of its rendering (also for a quarantine retry)."""
    def first(name: str) -> str | None:
        values = headers.get(name.lower())
        return values[0].strip() or None if values else None

    language = first("X-Ticketgate-Language")
    return Submission(organisation=first("X-Ticketgate-Organisation"),
                      category=first("X-Ticketgate-Category"), asset=first("X-Ticketgate-Asset"),
                      language=language if language in LANGUAGES else None,
                      fingerprint=first(FINGERPRINT) or "", exclusive=exclusive)


def kept_submission(config: Config, data: bytes, mailbox: str) -> RawMail:
    """A quarantined API submission made ready to run again, with the fields it came with."""
    parsed = parse_mail(data, SANITIZERS[config.html_sanitizer])
    source = parsed.header("X-Ticketgate-Source").strip()
    to = parsed.to[0].address if parsed.to else ""
    channel = next((c.name for c in config.channels if c.address == to), config.channels[0].name)
    return RawMail(data, f"retry:{mailbox}", channel=channel,
                   source=source if source in SOURCES else "api",
                   submission=submission_of(parsed.headers, exclusive=True))


def thread_id(session: Session, ticket: Ticket) -> str | None:
    """A Message-ID that threads to this ticket alone: its newest message stored under its own id."""
    rows = session.exec(select(Message.message_id, Message.message_key)
                        .where(Message.ticket_id == ticket.id)
                        .order_by(col(Message.id).desc()).limit(50)).all()
    return next((mid for mid, key in rows if key == message_key(mid)), None)


def reply_draft(session: Session, number: str, email: str, name: str, language: str | None,
                text: str, html: str, uploads: list[Upload], request: str,
                closing: bool) -> Draft | None:
    """A customer's message (or #close) on a ticket they may see, threaded by In-Reply-To;
    None when closing a ticket that is closed already. 404 for a ticket they may not see."""
    ticket = visible_ticket(session, Viewer(customer=email), number)
    if ticket is None:
        raise Problem(404, "not-found", f"no ticket {number[:40]!r} for this viewer", field="number")
    if closing and not may_close(session, ticket, email):
        raise Problem(403, "forbidden", "only the ticket's customer or someone copied on it may "
                      "close it", field="customer.email")
    if closing and ticket.status in CLOSED:
        return None
    return Draft(source=ticket.source, email=email, name=name, subject=f"Re: {ticket.subject}",
                 text=text, html=html, channel=ticket.channel, files=uploads, language=language,
                 in_reply_to=thread_id(session, ticket), request=request)
