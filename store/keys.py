"""Fixed-length keys for unique indexes over unbounded text (Message-IDs)."""

from __future__ import annotations

import hashlib


def message_key(message_id: str) -> str:
    """SHA-256 hex of a Message-ID (without brackets).

    >>> len(message_key("abc@example.org"))
    64
    """
    return hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
