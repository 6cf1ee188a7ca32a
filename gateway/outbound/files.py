"""Files on outbound mail: an agent's attachments relayed to the customer, a customer's files
on agent notifications, within the configured sizes.

A relayed file is an attachment row on the outbound message that points at the same blob as
the original: nothing is copied. The mailer turns those rows into MIME parts (``file_parts``);
an image with a Content-ID stays inline (``multipart/related`` with the HTML), everything else
is attached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import encoders
from email.mime.base import MIMEBase
from typing import Any

from sqlmodel import Session, col, select

from gateway.config import Config
from store import blobs
from store.models import Attachment, Message
from store.queries import insert_rows


@dataclass(frozen=True)
class File:
    """A file of an outbound message and its bytes."""

    row: Attachment
    data: bytes


@dataclass(frozen=True)
class Chosen:
    """The files that go with a mail, and those that stay behind (over the size limit)."""

    attached: list[Attachment]
    left: list[Attachment]


def files_of(session: Session, message_id: int | None) -> list[Attachment]:
    """A message's files in the order they came (none for a mail just stored without any)."""
    if message_id is None or message_id in session.info.get("without_files", ()):
        return []
    return list(session.exec(select(Attachment).where(Attachment.message_id == message_id)
                             .order_by(col(Attachment.id))).all())


def within(files: Sequence[Attachment], max_bytes: int) -> Chosen:
    """Files in order while their total stays within max_bytes; the rest left behind."""
    attached: list[Attachment] = []
    left: list[Attachment] = []
    total = 0
    for item in files:
        if total + item.size <= max_bytes and not left:
            attached.append(item)
            total += item.size
        else:
            left.append(item)
    return Chosen(attached, left)


def relayed_files(session: Session, config: Config, message: Message) -> Chosen:
    """An agent's files that go to the customer with the reply (none when relaying is off)."""
    outbound = config.outbound
    files = files_of(session, message.id) if outbound.relay_attachments else []
    return within(files, outbound.relay_max_bytes)


def inline(item: Attachment) -> bool:
    """An image the HTML shows in place (by its Content-ID)."""
    return bool(item.content_id) and item.content_type.startswith("image/")


def described(files: Sequence[Attachment]) -> list[dict[str, Any]]:
    """Files as templates list them."""
    return [{"filename": f.filename, "size": f.size, "content_type": f.content_type,
             "size_text": size_text(f.size)} for f in files]


def size_text(size: int) -> str:
    """A size for people.

    >>> size_text(512), size_text(2048), size_text(5 * 1024 * 1024)
    ('512 B', '2 KB', '5.0 MB')
    """
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size // 1024} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def copy_to(session: Session, message_id: int, files: Sequence[Attachment]) -> None:
    """The files as attachment rows of an outbound message (the same blobs)."""
    insert_rows(session, Attachment, [
        {"message_id": message_id, "filename": item.filename, "content_type": item.content_type,
         "size": item.size, "content_id": item.content_id, "blob": item.blob}
        for item in files])


def files_for(session: Session, message_ids: Iterable[int | None]) -> dict[int, list[File]]:
    """The files of a batch of outbound messages with their bytes, in one query (and a read
    of each file's bytes)."""
    wanted = [i for i in message_ids if i is not None]
    found: dict[int, list[File]] = {}
    if not wanted:
        return found
    rows = session.exec(select(Attachment).where(col(Attachment.message_id).in_(wanted))
                        .order_by(col(Attachment.id))).all()
    for item in rows:
        found.setdefault(item.message_id, []).append(File(item, blobs.read(session, item.blob)))
    return found


def file_parts(files: Sequence[File]) -> tuple[list[MIMEBase], list[MIMEBase]]:
    """MIME parts of the files: inline images (Content-ID), then every other file attached."""
    inline_parts: list[MIMEBase] = []
    attached: list[MIMEBase] = []
    for file in files:
        item = file.row
        maintype, _, subtype = item.content_type.partition("/")
        if not subtype or maintype in ("multipart", "message"):  # a nested mail goes as bytes
            maintype, subtype = "application", "octet-stream"
        part = MIMEBase(maintype, subtype)
        part.set_payload(file.data)
        encoders.encode_base64(part)
        name = item.filename if item.filename.isascii() else ("utf-8", "", item.filename)
        if inline(item):
            part.add_header("Content-Disposition", "inline", filename=name)
            part.add_header("Content-ID", f"<{item.content_id}>")
            inline_parts.append(part)
        else:
            part.add_header("Content-Disposition", "attachment", filename=name)
            attached.append(part)
    return inline_parts, attached
