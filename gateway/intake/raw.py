"""RawMail: the bytes of one mail and where they came from, as every door hands it in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RawMail:
    """Mail bytes and where they came from (mailbox and UID, or a file, or the API)."""

    data: bytes
    mailbox: str
    uidvalidity: int | None = None
    uid: int | None = None
    channel: str = "support"
    source: str = "email"
