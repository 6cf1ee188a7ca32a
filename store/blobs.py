"""Content-addressed bytes: each distinct file or raw mail kept once, by its SHA-256.

``put`` stores bytes (compressed with zlib when asked and when that helps) and returns the
digest rows refer to; ``put_packed`` stores bytes packed beforehand (``store.packing``: by
the parse worker, or by a thread while a large mail is parsed); ``read`` gives the bytes
back. ``release`` deletes the blobs of a list that nothing refers to any more: an attachment
row, a message's original. On PostgreSQL the foreign keys settle a race with a writer that
just referred to the same blob: the delete then fails inside its savepoint and the blob stays.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import bindparam, delete, exists, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from store.models import Attachment, Blob, Message
from store.packing import Packed, digest, pack, pack_to_file
from store.queries import LARGE_VALUE, fill_blob

__all__ = ["Packed", "digest", "pack", "pack_to_file", "put", "put_packed", "read", "release"]


_STORED = select(exists().where(col(Blob.sha256) == bindparam("sha")))  # asked per file: built once


def put(session: Session, data: bytes, *, compress: bool = False) -> str:
    """Store data once (a second put of the same bytes stores nothing) and return its digest."""
    sha = digest(data)
    if _known(session, sha):
        return sha
    if _streams(session, len(data)):
        packed = pack_to_file(data, compress=compress, sha=sha)
        try:
            _put_streamed(session, packed)
        finally:
            packed.close()
    else:
        _put_whole(session, pack(data, compress=compress, sha=sha))
    session.info["blobs"].add(sha)
    return sha


def put_packed(session: Session, packed: Packed) -> str:
    """Store bytes packed beforehand (by a parse worker or a packing thread); the digest.

    Nothing is asked first: the packing is done, and the insert does nothing for known bytes.
    The caller closes packed.
    """
    known: set[str] = session.info.setdefault("blobs", set())
    if packed.sha256 not in known:
        if packed.spool is not None or _streams(session, packed.stored_bytes):
            _put_streamed(session, packed)
        else:
            _put_whole(session, packed)
        known.add(packed.sha256)
    return packed.sha256


def _streams(session: Session, size: int) -> bool:
    """Whether a value is written through SQLite's blob handle (bound, it would be copied twice)."""
    return size >= LARGE_VALUE and session.get_bind().dialect.name == "sqlite"


def _known(session: Session, sha: str) -> bool:
    """Whether the blob is stored already (asked of the database once per transaction)."""
    known: set[str] = session.info.setdefault("blobs", set())
    if sha in known or session.execute(_STORED, {"sha": sha}).scalar():
        known.add(sha)
        return True
    return False


def _put_whole(session: Session, packed: Packed) -> None:
    """Insert the blob row with its value bound as one parameter."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(module.insert(SQLModel.metadata.tables["blob"]).values(
        sha256=packed.sha256, size=packed.size, encoding=packed.encoding,
        data=packed.data if packed.spool is None else b"".join(packed.pieces()))
        .on_conflict_do_nothing())


def _put_streamed(session: Session, packed: Packed) -> None:
    """Insert a zero-filled SQLite blob of the stored size and write it piece by piece."""
    inserted = session.execute(sqlite.insert(SQLModel.metadata.tables["blob"]).values(
        sha256=packed.sha256, size=packed.size, encoding=packed.encoding,
        data=func.zeroblob(packed.stored_bytes)).on_conflict_do_nothing())
    if not inserted.rowcount:  # type: ignore[attr-defined]
        return
    rowid = session.execute(text("SELECT rowid FROM blob WHERE sha256 = :sha"),
                            {"sha": packed.sha256}).scalar_one()
    fill_blob(session, "blob", "data", rowid, packed.pieces())


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
