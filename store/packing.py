"""Bytes made ready for the blob table without a database: digest and compression.

Pure functions, so the parse worker can pack a mail's original while the main process
stores the mail before it (``gateway.intake.parsepool``).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

MIN_SAVING = 0.9  # compressed data is kept only when it is at most 90 % of the bytes


def digest(data: bytes) -> str:
    """The name of some bytes: hex SHA-256.

    >>> digest(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Packed:
    """Bytes ready for the blob table: their digest, size, encoding and the stored form."""

    sha256: str
    size: int
    encoding: str  # identity | zlib
    data: bytes


def pack(data: bytes, *, compress: bool = True, sha: str | None = None) -> Packed:
    """Digest and (when it saves at least a tenth) compress data: pure, so a parse worker can.

    >>> packed = pack(b"a" * 1000)
    >>> packed.encoding, packed.size, len(packed.data) < 100
    ('zlib', 1000, True)
    >>> pack(b"xyz").encoding
    'identity'
    """
    sha = sha or digest(data)
    if compress and data:
        packed = zlib.compress(data, 1)  # the fastest level: mail text packs nearly as well
        if len(packed) <= len(data) * MIN_SAVING:
            return Packed(sha, len(data), "zlib", packed)
    return Packed(sha, len(data), "identity", data)

