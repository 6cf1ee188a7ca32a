"""Store stage: the message row with its attachments, copied people as watchers, the ledger.

These writes run inside the mail's one transaction (``gateway.pipeline``); nothing here
commits. The ledger entry is what makes a mail count as handled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import Config
from gateway.intake.addresses import valid_address
from gateway.intake.parse import ParsedMail
from gateway.intake.raw import RawMail
from store import blobs
from store.models import Attachment, LedgerEntry, Message
from store.packing import Packed, pack, pack_to_file
from store.queries import (
    LARGE_VALUE,
    add_watcher,
    contact_for,
    hold_back,
    insert_rows,
    watcher_addresses,
)

_PACKER = ThreadPoolExecutor(1, thread_name_prefix="pack-original")


@dataclass(frozen=True)
class Body:
    """What of a mail is stored as the message: kind, visibility, author name, text, HTML."""

    kind: str  # customer | agent | note | auto-reply | bounce | unverified
    public: bool
    from_name: str
    text: str
    html: str


def write_message(session: Session, raw: RawMail, mail: ParsedMail, ticket_id: int, key: str,
                  fingerprint: str, body: Body, classification: str, now: datetime,
                  packing: Future[Packed] | None = None) -> Message:
    """The inbound message row, its attachments and its raw original (bytes kept once each)."""
    message = Message(
        ticket_id=ticket_id, direction="in", kind=body.kind, public=body.public,
        message_id=mail.message_id, message_key=key, content_hash=fingerprint,
        in_reply_to=" ".join(mail.in_reply_to) or None,
        references=" ".join(mail.references) or None,
        from_address=mail.sender, from_name=body.from_name, from_raw=mail.from_raw[:2000],
        to=json.dumps([a.address for a in mail.to]),
        cc=json.dumps([a.address for a in mail.cc]),
        subject=mail.subject, text=body.text, html=body.html,
        classification=classification, defects="\n".join(mail.defects)[:10000],
        delivery_status=json.dumps([r.as_dict() for r in mail.delivery_reports[:100]],
                                   ensure_ascii=False),
        mailbox=raw.mailbox, created_at=now,
        original=_original(session, raw, mail, packing),
    )
    session.add(message)
    session.flush()
    assert message.id is not None
    if not mail.attachments:  # nobody needs to ask the database for its files
        session.info.setdefault("without_files", set()).add(message.id)
    insert_rows(session, Attachment, [
        {"message_id": message.id, "filename": item.filename,
         "content_type": item.content_type[:255], "size": item.size,
         "content_id": (item.content_id or None) and item.content_id[:255],
         "blob": blobs.put(session, item.data)}
        for item in mail.attachments])
    return message


def _original(session: Session, raw: RawMail, mail: ParsedMail,
              packing: Future[Packed] | None) -> str | None:
    """The digest of the stored raw mail (packed by the parse worker when it parsed the mail,
    or by the packing thread while it was parsed here)."""
    if not raw.data:
        return None
    if packing is not None:
        return blobs.put_packed(session, packing.result())
    packed = mail.packed_original
    if packed is not None and packed.size == len(raw.data):
        return blobs.put_packed(session, packed)
    return blobs.put(session, raw.data, compress=True)


def pack_ahead(engine: Engine, data: bytes) -> Future[Packed] | None:
    """Start packing a large raw mail in a thread now (the service does so as soon as a batch
    is fetched, while the mails before it are stored); None for a small one."""
    if len(data) < LARGE_VALUE:
        return None
    return _PACKER.submit(pack_to_file if engine.dialect.name == "sqlite" else pack, data)


@contextmanager
def packed_beside(engine: Engine, raw: RawMail, parsed: ParsedMail | None,
                  ahead: Future[Packed] | None = None) -> Iterator[Future[Packed] | None]:
    """A large raw mail packed in a thread while it is parsed and threaded (or since ahead was
    started): zlib and SHA-256 release the GIL, so that work runs on another core. The
    temporary file goes afterwards."""
    packing = ahead
    if packing is None and (parsed is None or parsed.packed_original is None):
        packing = pack_ahead(engine, raw.data)
    try:
        yield packing
    finally:
        if packing is not None:
            packing.add_done_callback(close_packed)  # at once, or when the thread is done


def close_packed(packing: Future[Packed]) -> None:
    """Remove a finished packing's temporary file (a callback: it may still be running)."""
    if not packing.cancelled() and packing.exception() is None:
        packing.result().close()


def add_copied_watchers(session: Session, config: Config, ticket_id: int, mail: ParsedMail,
                        message_id: int | None = None) -> list[str]:
    """People copied on a customer mail become watchers, up to the limits; our own never do.

    A stranger who copies hundreds of addresses gets at most limits.watchers_per_mail of them
    on the ticket, and no ticket grows past limits.watchers_per_ticket through copies; the
    rest is recorded on the ticket (a cap hit) and named in the returned note.
    """
    own = config.own_addresses()
    if mail.from_ is not None:
        contact_for(session, mail.from_.address, mail.from_.name)
    limits = config.limits
    watching = watcher_addresses(session, ticket_id)
    by_ticket = limits.watchers_per_ticket - len(watching) < limits.watchers_per_mail
    room = min(limits.watchers_per_mail, limits.watchers_per_ticket - len(watching))
    held: list[str] = []
    seen: set[str] = set()
    for person in [*mail.to, *mail.cc]:
        address = person.address
        if address in own or person.domain in config.own_domains or address in watching \
                or address in seen:
            continue
        seen.add(address)
        if room <= 0:
            held.append(address)  # not validated: nothing is done with it but the record
            continue
        if valid_address(address) is None:
            continue
        contact_for(session, address, person.name)
        add_watcher(session, ticket_id, address, "cc")
        room -= 1
    if not held:
        return []
    limit = "watchers_per_ticket" if by_ticket else "watchers_per_mail"
    maximum = getattr(limits, limit)
    hold_back(session, None, ticket_id=ticket_id, message_id=message_id, limit=limit,
              maximum=maximum, addresses=held)
    return [f"{len(held)} copied address(es) not made watchers (limits.{limit} = {maximum})"]


def write_ledger(session: Session, raw: RawMail, key: str, outcome: str, number: str | None,
                 detail: str) -> None:
    """The ledger entry: this copy of the mail is handled, with what became of it."""
    insert_rows(session, LedgerEntry, [{
        "mailbox": raw.mailbox, "uidvalidity": raw.uidvalidity, "uid": raw.uid,
        "message_key": key, "outcome": outcome, "ticket_number": number,
        "detail": detail[:2000]}])
