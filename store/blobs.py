"""Content-addressed bytes: each distinct file or raw mail kept once, by its SHA-256.

``put`` stores bytes (compressed with zlib when asked and when that helps) and returns the
digest rows refer to; ``read`` gives the bytes back. ``release`` deletes the blobs of a list
that nothing refers to any more: an attachment row, a message's original. On PostgreSQL the
foreign keys settle a race with a writer that just referred to the same blob: the delete
then fails inside its savepoint and the blob stays.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator

from sqlalchemy import delete, exists, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from store.models import Attachment, Blob, Message
from store.queries import LARGE_VALUE, fill_blob

_MIN_SAVING = 0.9  # compressed data is kept only when it is at most 90 % of the bytes


def digest(data: bytes) -> str:
    """The name of some bytes: hex SHA-256.

    >>> digest(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(data).hexdigest()


def put(session: Session, data: bytes, *, compress: bool = False) -> str:
    """Store data once (a second put of the same bytes stores nothing) and return its digest."""
    sha = digest(data)
    known: set[str] = session.info.setdefault("blobs", set())
    if sha in known or session.exec(select(exists().where(col(Blob.sha256) == sha))).one():
        known.add(sha)
        return sha
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite" and len(data) >= LARGE_VALUE:  # SQLite would copy a bound value twice
        _put_streamed(session, sha, data, compress)
    else:
        _put_whole(session, sha, data, compress, dialect)
    known.add(sha)
    return sha


def _put_whole(session: Session, sha: str, data: bytes, compress: bool, dialect: str) -> None:
    """Insert the blob row with its value bound as one parameter."""
    encoding, stored = "identity", data
    if compress and data:
        packed = zlib.compress(data, 1)  # the fastest level: mail text packs nearly as well
        if len(packed) <= len(data) * _MIN_SAVING:
            encoding, stored = "zlib", packed
    module = postgresql if dialect == "postgresql" else sqlite
    session.execute(module.insert(SQLModel.metadata.tables["blob"]).values(
        sha256=sha, size=len(data), encoding=encoding, data=stored).on_conflict_do_nothing())


def _put_streamed(session: Session, sha: str, data: bytes, compress: bool) -> None:
    """Insert a zero-filled SQLite blob and write it piece by piece: a large original is never
    held compressed in memory beside itself (it is compressed twice: once to learn the size)."""
    size = sum(len(piece) for piece in _packed_pieces(data)) if compress else len(data)
    packed = compress and size <= len(data) * _MIN_SAVING
    inserted = session.execute(sqlite.insert(SQLModel.metadata.tables["blob"]).values(
        sha256=sha, size=len(data), encoding="zlib" if packed else "identity",
        data=func.zeroblob(size if packed else len(data))).on_conflict_do_nothing())
    if inserted.rowcount:  # type: ignore[attr-defined]
        rowid = session.execute(text("SELECT rowid FROM blob WHERE sha256 = :sha"),
                                {"sha": sha}).scalar_one()
        fill_blob(session, "blob", "data", rowid, _packed_pieces(data) if packed else data)


def _packed_pieces(data: bytes) -> Iterator[bytes]:
    """data compressed at zlib's fastest level, a piece at a time (zlib.decompress reads it whole)."""
    packer = zlib.compressobj(1)
    view = memoryview(data)
    for start in range(0, len(view), LARGE_VALUE):
        yield packer.compress(view[start:start + LARGE_VALUE])
    yield packer.flush()


def read(session: Session, sha: str) -> bytes:
    """The bytes of a blob (KeyError when it is gone)."""
    blob = session.get(Blob, sha)
    if blob is None:
        raise KeyError(sha)
    return zlib.decompress(blob.data) if blob.encoding == "zlib" else bytes(blob.data)


def referenced(session: Session, sha: str) -> bool:
    """Whether any attachment or message original still refers to the blob."""
    by_file = session.exec(select(exists().where(col(Attachment.blob) == sha))).one()
    by_mail = session.exec(select(exists().where(col(Message.original) == sha))).one()
    return bool(by_file or by_mail)


def release(session: Session, shas: Iterable[str]) -> int:
    """Delete the blobs of shas that nothing refers to; returns how many went."""
    session.flush()
    gone = 0
    for sha in dict.fromkeys(shas):
        if referenced(session, sha):
            continue
        try:
            with session.begin_nested():
                result = session.execute(delete(Blob).where(col(Blob.sha256) == sha))
        except IntegrityError:  # someone referred to it meanwhile: it stays
            continue
        gone += result.rowcount or 0  # type: ignore[attr-defined]
        session.info.get("blobs", set()).discard(sha)
    return gone
