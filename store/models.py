"""SQLModel tables: tickets, messages, attachments, contacts, organisations, watchers, ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.orm import relationship
from sqlmodel import Field, Relationship, SQLModel


def utcnow() -> datetime:
    """Timestamps are timezone-aware UTC."""
    return datetime.now(UTC)


def _stamp(nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware timestamp column."""
    if nullable:
        return Field(default=None, sa_type=DateTime(timezone=True), index=index)
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), index=index)


class Organisation(SQLModel, table=True):
    """A customer organisation; contacts join it by mail domain."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    domain: str = Field(max_length=255, unique=True)
    # Every contact of the organisation sees all its tickets (portal and API), not only their own.
    share_tickets: bool = Field(default=False)
    created_at: datetime = _stamp()


class Contact(SQLModel, table=True):
    """A person who wrote to us or was copied on a ticket."""

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320, unique=True)
    name: str = Field(default="", max_length=255)
    language: str | None = Field(default=None, max_length=8)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    created_at: datetime = _stamp()


class Ticket(SQLModel, table=True):
    """A customer request and everything said about it."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=40, unique=True)
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="new", max_length=32, index=True)
    priority: int = Field(default=5)
    channel: str = Field(default="support", max_length=100, index=True)
    activity_type: str | None = Field(default=None, max_length=100)
    type: str = Field(default="mail", max_length=20)
    source: str = Field(default="email", max_length=20)
    customer_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    owner: str | None = Field(default=None, max_length=100)
    categories: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    tags: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    linked_ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    asset: str | None = Field(default=None, max_length=255, index=True)  # the object it is about
    # A merged ticket is closed; its token and Message-IDs thread into this one.
    merged_into_id: int | None = Field(default=None, foreign_key="ticket.id")
    created_at: datetime = _stamp()
    updated_at: datetime = _stamp(index=True)
    resolved_at: datetime | None = _stamp(nullable=True)
    closed_at: datetime | None = _stamp(nullable=True)
    first_response_at: datetime | None = _stamp(nullable=True)  # first public agent reply
    status_changed_at: datetime | None = _stamp(nullable=True)  # None: since created_at


class Message(SQLModel, table=True):
    """One mail (or note) on a ticket; message_key makes every Message-ID unique."""

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    direction: str = Field(default="in", max_length=3)  # in | out
    kind: str = Field(default="customer", max_length=20)
    public: bool = True
    message_id: str = Field(sa_column=Column(Text, nullable=False))
    message_key: str = Field(max_length=64, unique=True)
    content_hash: str = Field(default="", max_length=64)
    in_reply_to: str | None = Field(default=None, sa_column=Column(Text))
    references: str | None = Field(default=None, sa_column=Column(Text))
    from_address: str = Field(default="", max_length=320, index=True)
    from_name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The From header as written: the only trace of a sender whose address was not valid.
    from_raw: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    to: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    cc: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    classification: str = Field(default="", max_length=100)  # auto-replied, bulk, list, bounce
    defects: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # A delivery report's recipients: JSON list of {recipient, action, status,
    # diagnostic_code, remote_mta}; "[]" for every other mail.
    delivery_status: str = Field(default="[]", sa_column=Column(Text, nullable=False,
                                                                default="[]"))
    mailbox: str | None = Field(default=None, max_length=200)
    # The raw mail as it arrived (a compressed blob); None for our own mails and once purged.
    original: str | None = Field(default=None, foreign_key="blob.sha256", max_length=64,
                                 index=True)
    created_at: datetime = _stamp()


class Blob(SQLModel, table=True):
    """Bytes kept once per content (attachments, raw originals), named by their SHA-256.

    ``sha256`` is the digest of the bytes as they came; ``encoding`` says how ``data`` holds
    them (``identity`` or ``zlib``). Rows refer to a blob by digest; a blob goes when nothing
    refers to it any more (``store.blobs.release``).
    """

    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    encoding: str = Field(default="identity", max_length=10)
    created_at: datetime = _stamp()
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # last: see store.blobs.put


class Attachment(SQLModel, table=True):
    """A file that came with a message, stored with a safe name; its bytes are a blob."""

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int
    content_id: str | None = Field(default=None, max_length=255)
    blob: str = Field(foreign_key="blob.sha256", max_length=64, index=True)


class Watcher(SQLModel, table=True):
    """Someone who hears about public activity on a ticket."""

    __table_args__ = (UniqueConstraint("ticket_id", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    address: str = Field(max_length=320)
    role: str = Field(default="cc", max_length=20)  # customer | cc | agent | owner
    created_at: datetime = _stamp()


class LedgerEntry(SQLModel, table=True):
    """The processed-mail ledger: each fetched mail once, with what became of it."""

    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=200)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)  # IMAP: up to 2^32-1
    uid: int | None = Field(default=None, sa_type=BigInteger)
    message_key: str = Field(max_length=64, index=True)
    outcome: str = Field(max_length=30)
    ticket_number: str | None = Field(default=None, max_length=40)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # Without MOVE: the target folder's UIDNEXT noted before the COPY, so a crash after the
    # COPY is seen (its copy has this UID or a higher one) and the mail is not copied twice.
    copy_uidnext: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = _stamp()


class QuarantinedMail(SQLModel, table=True):
    """A mail that failed unexpectedly: raw bytes kept with the reason, to retry later."""

    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=200)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    uid: int | None = Field(default=None, sa_type=BigInteger)
    message_key: str = Field(max_length=64, index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _stamp()
    resolved_at: datetime | None = _stamp(nullable=True)
    resolution: str | None = Field(default=None, max_length=200)


class Counter(SQLModel, table=True):
    """Ticket number counters, one row per scope (a day, or the whole store)."""

    scope: str = Field(primary_key=True, max_length=40)
    value: int = 0


class MailboxLease(SQLModel, table=True):
    """Which process holds a mailbox (SQLite; PostgreSQL uses an advisory lock instead)."""

    __tablename__ = "mailbox_lease"

    mailbox: str = Field(primary_key=True, max_length=200)
    holder: str = Field(max_length=200)
    host: str = Field(max_length=200)
    pid: int
    renewed_at: datetime = _stamp()


class RuleHit(SQLModel, table=True):
    """A rule that fired on a ticket: which file, which rule, which event, what it did, why."""

    __tablename__ = "rule_hit"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    file: str = Field(max_length=500)
    rule: str = Field(sa_column=Column(Text, nullable=False))
    event: str = Field(max_length=40)
    actions: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    reasons: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _stamp()


class OutboxMail(SQLModel, table=True):
    """A mail to send, written in the transaction of the event that caused it."""

    __tablename__ = "outbox"
    # the mailer's order check: unfinished mail to one address, whatever the history behind it
    __table_args__ = (Index("ix_outbox_status_address", "status", "primary_address"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    message_row: int | None = Field(default=None, foreign_key="message.id", nullable=False)
    # set together: one flush writes both rows, in order
    message: Message | None = Relationship(sa_relationship=relationship("Message"))
    template: str = Field(max_length=100)
    language: str = Field(default="en", max_length=8)
    audience: str = Field(max_length=20)  # customer | agent | watcher
    recipients: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of addresses
    primary_address: str = Field(default="", max_length=320, index=True)  # for rate limits
    context: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    status: str = Field(default="pending", max_length=12, index=True)  # pending sending sent failed
    attempts: int = 0
    next_attempt_at: datetime = _stamp()
    claimed_until: datetime | None = _stamp(nullable=True)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sent_at: datetime | None = _stamp(nullable=True)
    created_at: datetime = _stamp()


class Suppression(SQLModel, table=True):
    """A recipient we do not mail (hard bounce) until the given time."""

    address: str = Field(primary_key=True, max_length=320)
    until: datetime = _stamp()
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")


class ApiToken(SQLModel, table=True):
    """An API client's token: only its SHA-256 is kept; scopes say what it may do."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    scopes: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    created_at: datetime = _stamp()
    revoked_at: datetime | None = _stamp(nullable=True)


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscriber, written in the event's transaction, sent and retried later."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (UniqueConstraint("webhook", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook: str = Field(max_length=200)  # the [[webhook]] name
    event_id: str = Field(max_length=64)  # the same for every subscriber of one event
    event: str = Field(max_length=40)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id", index=True)
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the JSON body, as sent
    status: str = Field(default="pending", max_length=12, index=True)  # pending sending sent failed
    attempts: int = 0
    next_attempt_at: datetime = _stamp()
    claimed_until: datetime | None = _stamp(nullable=True)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    sent_at: datetime | None = _stamp(nullable=True)
    created_at: datetime = _stamp()


class CapHit(SQLModel, table=True):
    """A limit that held people or mail back on a ticket: which one, how many, whom."""

    __tablename__ = "cap_hit"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    limit: str = Field(max_length=40)  # the [limits] key, e.g. watchers_per_mail
    maximum: int
    left_out: int  # how many addresses were held back
    addresses: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    created_at: datetime = _stamp()


class Timer(SQLModel, table=True):
    """A due time: a reminder, an auto-close step, an SLA warning or breach, idle.

    Fired under a row lock (PostgreSQL ``SKIP LOCKED``; SQLite's write lock): its state
    changes in the transaction of its effect, so it fires once, and never not at all.
    """

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: str = Field(max_length=40)  # reminder | waiting_reminder | auto_close | sla_* | idle
    due_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    status: str = Field(default="pending", max_length=12, index=True)  # pending fired cancelled failed
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(default="", max_length=320)  # agent name, rule, or "" (policy)
    attempts: int = 0
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _stamp()
    fired_at: datetime | None = _stamp(nullable=True)


class TimeEntry(SQLModel, table=True):
    """Time an agent booked on a ticket ('#time 30m Remote support')."""

    __tablename__ = "time_entry"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    agent: str = Field(max_length=100)
    minutes: int
    activity: str = Field(default="", max_length=100)
    message_id: int | None = Field(default=None, foreign_key="message.id")
    created_at: datetime = _stamp()


class OAuthGrant(SQLModel, table=True):
    """A mailbox's OAuth grant: the refresh token sealed with the configured secret, and its state.

    ``name`` is the mailbox name (or ``smtp``); ``client_id`` and ``token_url`` say whom the
    grant belongs to, so a changed app registration asks for a new sign-in instead of failing
    obscurely. The access token itself lives in memory only; its expiry is kept for
    ``ticketgate auth status``.
    """

    __tablename__ = "oauth_grant"

    name: str = Field(primary_key=True, max_length=200)
    provider: str = Field(max_length=20)
    grant_type: str = Field(max_length=40)  # refresh_token | client_credentials
    client_id: str = Field(max_length=255)
    token_url: str = Field(sa_column=Column(Text, nullable=False))
    sealed_refresh_token: str | None = Field(default=None, sa_column=Column(Text))
    scopes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    signed_in_at: datetime | None = _stamp(nullable=True)
    refreshed_at: datetime | None = _stamp(nullable=True)
    access_expires_at: datetime | None = _stamp(nullable=True)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    last_error_at: datetime | None = _stamp(nullable=True)


class PortalLink(SQLModel, table=True):
    """A customer portal sign-in request: the single-use link's SHA-256 (none for an unknown
    address, so rate limits count every request alike), who asked, from where, and its fate."""

    __tablename__ = "portal_link"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    address: str = Field(max_length=320, index=True)
    client: str = Field(default="", max_length=64, index=True)  # the requesting IP address
    next_path: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _stamp(index=True)
    expires_at: datetime = _stamp()
    used_at: datetime | None = _stamp(nullable=True)


class PortalSession(SQLModel, table=True):
    """A signed-in portal browser: only the cookie's SHA-256 is kept; revoked sessions stay for audit."""

    __tablename__ = "portal_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    address: str = Field(max_length=320, index=True)
    csrf: str = Field(max_length=64)  # the token every form of this session carries
    created_at: datetime = _stamp()
    last_seen_at: datetime = _stamp()
    expires_at: datetime = _stamp()
    revoked_at: datetime | None = _stamp(nullable=True)


class AuditEntry(SQLModel, table=True):
    """That an erasure or a purge happened, and when: never what was erased."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    action: str = Field(max_length=40)  # erase | purge
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _stamp()
