"""RawMail: the bytes of one mail and where they came from, as every door hands it in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Submission:
    """What the HTTP door adds to a mail: ticket fields a mail cannot carry, and its identity.

    The land stage applies the fields when the submission opens a ticket. ``fingerprint``
    covers every field the client sent, so a retry with the same Idempotency-Key is recognised
    as the same request; ``exclusive`` makes a Message-ID already taken by a different
    request a conflict instead of a second ticket.
    """

    organisation: str | None = None  # the organisation's mail domain
    category: str | None = None
    asset: str | None = None  # the asset or object the ticket is about
    language: str | None = None  # the customer's language, when the client knows it
    fingerprint: str = ""
    exclusive: bool = False


@dataclass(frozen=True)
class RawMail:
    """Mail bytes and where they came from (mailbox and UID, or a file, or the API)."""

    data: bytes
    mailbox: str
    uidvalidity: int | None = None
    uid: int | None = None
    channel: str = "support"
    source: str = "email"
    submission: Submission | None = None
    # A stored message's original run through the pipeline again (its row id): it becomes a
    # new message on the same ticket, and nobody is mailed again.
    reprocess_of: int | None = None
