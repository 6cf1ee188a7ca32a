"""Bytes made ready for the blob table without a database: digest and compression.

No session needed, so the parse worker can pack a mail's original while the main process
stores the mail before it (``gateway.intake.parsepool``), and a thread can pack a large one
while it is parsed (``gateway.record.packed_beside``): zlib and SHA-256 release the GIL.
"""

from __future__ import annotations

import hashlib
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

PIECE = 1024 * 1024
"""Large values are compressed and written a piece of this size at a time."""
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
    size: int  # of the bytes as they came
    encoding: str  # identity | zlib
    data: bytes  # the stored form; empty when it lies in spool
    spool: BinaryIO | None = None  # a large value's compressed form, in a temporary file
    stored_size: int = 0  # bytes in spool

    @property
    def stored_bytes(self) -> int:
        """How many bytes the blob table holds for this value."""
        return self.stored_size if self.spool is not None else len(self.data)

    def pieces(self) -> Iterator[bytes]:
        """The stored form a piece at a time (from the start of the spool each time)."""
        if self.spool is None:
            yield self.data
            return
        self.spool.seek(0)
        while piece := self.spool.read(PIECE):
            yield piece

    def close(self) -> None:
        """Remove the temporary file, if any."""
        if self.spool is not None:
            self.spool.close()


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


def pack_to_file(data: bytes, *, compress: bool = True, sha: str | None = None) -> Packed:
    """Like ``pack``, but the compressed form goes piece by piece into a temporary file: a
    large value is never held compressed in memory beside itself. Close the result."""
    sha = sha or digest(data)
    if not compress or not data:
        return Packed(sha, len(data), "identity", data)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it: Packed.close)
    packer = zlib.compressobj(1)
    view = memoryview(data)
    for start in range(0, len(view), PIECE):
        spool.write(packer.compress(view[start:start + PIECE]))
    spool.write(packer.flush())
    stored = spool.tell()
    if stored > len(data) * MIN_SAVING:
        spool.close()
        return Packed(sha, len(data), "identity", data)
    return Packed(sha, len(data), "zlib", b"", spool, stored)
