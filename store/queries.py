"""Queries the pipeline and the CLI share; all take an open session."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pydantic_core import PydanticUndefined
from sqlalchemy import CursorResult, Insert, Table, bindparam, func, insert, text
from sqlmodel import Session, SQLModel, col, select

from store.db import counter_engine
from store.models import CapHit, Contact, LedgerEntry, Message, Organisation, Ticket, Watcher, utcnow

FREEMAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.de", "hotmail.com", "hotmail.de",
    "outlook.com", "outlook.de", "live.com", "msn.com", "icloud.com", "me.com", "aol.com",
    "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de",
    "posteo.de", "mailbox.org", "protonmail.com", "proton.me", "yandex.ru", "mail.ru",
    "qq.com", "163.com", "126.com", "localhost",
})


LARGE_VALUE = 1024 * 1024
"""Bytes from this size on go into SQLite by incremental blob I/O (``_insert_streamed``)."""
_CHUNK = 1024 * 1024


def insert_rows(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """Rows nothing reads back in this transaction, written in one statement (no ORM objects:
    building and flushing those costs more than the insert). created_at defaults to now."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    stamp = _stamp(table)
    filled = [{**stamp, **row} for row in rows]
    if session.get_bind().dialect.name == "sqlite" and any(map(_large_values, filled)):
        for row in filled:  # one by one, in order: the large ones are streamed
            _insert_streamed(session, table, row)
        return
    session.execute(_insert(table), filled)


def insert_one(session: Session, model: type[SQLModel], **values: Any) -> int:
    """One row written at once, without an ORM object, with the model's defaults; its id."""
    table = model.__table__  # type: ignore[attr-defined]
    row = {**_defaults(model), **_stamp(table), **values}
    result = cast("CursorResult[Any]", session.execute(_insert(table), row))
    inserted = result.inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def _stamp(table: Table) -> dict[str, Any]:
    """created_at = now, for a table that has that column."""
    return {"created_at": utcnow()} if "created_at" in table.c else {}


@functools.cache
def _insert(table: Table) -> Insert:
    """A table's plain insert, built once (its compiled form is cached by the statement)."""
    return insert(table)


@functools.cache
def _defaults(model: type[SQLModel]) -> dict[str, Any]:
    """The plain default of each of a model's columns (not the factories: created_at)."""
    columns = model.__table__.c  # type: ignore[attr-defined]
    return {name: info.default for name, info in model.model_fields.items()
            if name in columns and info.default is not PydanticUndefined
            and not columns[name].primary_key}


def _large_values(row: dict[str, Any]) -> dict[str, bytes]:
    return {key: value for key, value in row.items()
            if isinstance(value, bytes) and len(value) >= LARGE_VALUE}


def _insert_streamed(session: Session, table: Any, row: dict[str, Any]) -> None:
    """One row whose large values are written into place after the insert, a chunk at a time.

    Bound as a parameter, SQLite copies a value twice (the binding, then the record it
    builds): a 25 MB attachment would cost 50 MB more. A zero-filled blob of the right size
    is inserted instead and filled through the connection's blob handle.
    """
    large = _large_values(row)
    values = {**row, **{key: func.zeroblob(len(value)) for key, value in large.items()}}
    session.flush()  # the rows it refers to first: this bypasses the unit of work
    inserted = session.connection().execute(insert(table).values(**values)).inserted_primary_key
    assert inserted is not None
    for column, data in large.items():
        fill_blob(session, table.name, column, inserted[0], data)


def fill_blob(session: Session, table: str, column: str, rowid: int,
              data: bytes | Iterable[bytes]) -> None:
    """Write data (bytes, or pieces in order) into a SQLite row's zero-filled blob of the same size."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.blobopen(table, column, rowid) as blob:
        for piece in [data] if isinstance(data, bytes) else data:
            view = memoryview(piece)
            for start in range(0, len(view), _CHUNK):
                blob.write(view[start:start + _CHUNK])


_NEXT_VALUE = text("INSERT INTO counter (scope, value) VALUES (:scope, 1) "
                   "ON CONFLICT (scope) DO UPDATE SET value = counter.value + 1 RETURNING value")


def next_counter(session: Session, scope: str) -> int:
    """Atomically take the next value of a counter.

    On PostgreSQL in a transaction of its own, committed at once: drawn in the mail's
    transaction, the counter row stayed locked until that mail's commit, and every new ticket
    of every instance and mailbox queued on the one row. A mail whose transaction then rolls
    back leaves a gap in the numbers. SQLite has one writer at a time anyway: there the value
    is drawn in the caller's transaction.
    """
    side = counter_engine(session.get_bind().engine)
    if side is None:
        return int(session.execute(_NEXT_VALUE, {"scope": scope}).scalar_one())
    with side.begin() as connection:
        return int(connection.execute(_NEXT_VALUE, {"scope": scope}).scalar_one())


def ticket_for_message_keys(session: Session, keys: Sequence[str]) -> Ticket | None:
    """The newest ticket holding a message with one of these Message-ID keys."""
    found: Ticket | None = session.execute(_TICKET_BY_KEYS, {"keys": list(keys)}).scalars().first()
    return found


# The look-ups every mail makes, built once: building a statement costs more than running it.
_MESSAGE_BY_KEY = select(Message).where(Message.message_key == bindparam("key")).limit(1)
_TICKET_BY_KEYS = (select(Ticket)
                   .join(Message, col(Message.ticket_id) == col(Ticket.id))
                   .where(col(Message.message_key).in_(bindparam("keys", expanding=True)))
                   .order_by(col(Ticket.id).desc())
                   .limit(1))
_CONTACT = select(Contact).where(Contact.address == bindparam("address")).limit(1)
_ORGANISATION = select(Organisation).where(Organisation.domain == bindparam("domain")).limit(1)
_WATCHERS = select(Watcher.address).where(Watcher.ticket_id == bindparam("ticket_id")).order_by(
    col(Watcher.id))
_LEDGER = select(LedgerEntry.id).where(
    LedgerEntry.mailbox == bindparam("mailbox"), LedgerEntry.uidvalidity == bindparam("uidvalidity"),
    LedgerEntry.uid == bindparam("uid")).limit(1)
_PARTICIPANTS = (select(Contact.address, Organisation.domain)
                 .select_from(Ticket)
                 .join(Contact, col(Contact.id) == col(Ticket.customer_id), isouter=True)
                 .join(Organisation, col(Organisation.id) == col(Ticket.organisation_id),
                       isouter=True)
                 .where(Ticket.id == bindparam("ticket_id")))


def message_by_key(session: Session, key: str) -> Message | None:
    """The stored message with this Message-ID key."""
    found: Message | None = session.execute(_MESSAGE_BY_KEY, {"key": key}).scalars().first()
    return found


def ticket_by_number(session: Session, number: str) -> Ticket | None:
    """The ticket with this number."""
    return session.exec(select(Ticket).where(Ticket.number == number)).first()


def takes_part(session: Session, ticket_id: int, address: str) -> bool:
    """Whether address is the ticket's customer, a watcher, or from the customer's organisation."""
    if address in watcher_addresses(session, ticket_id):
        return True
    row = session.execute(_PARTICIPANTS, {"ticket_id": ticket_id}).first()
    if row is None:
        return False
    customer, org_domain = row
    return address == customer or (org_domain is not None
                                   and address.rpartition("@")[2] == org_domain)


def find_contact(session: Session, address: str) -> Contact | None:
    """The contact with this address, if known (looked up once per transaction)."""
    known: dict[str, Contact | None] = session.info.setdefault("contacts", {})
    if address not in known:
        known[address] = session.execute(_CONTACT, {"address": address}).scalars().first()
    return known[address]


def contact_for(session: Session, address: str, name: str = "") -> Contact:
    """The contact for an address, created on first sight; joins an organisation by domain."""
    known: dict[str, Contact | None] = session.info.setdefault("contacts", {})
    contact = find_contact(session, address)
    if contact is None:
        org = organisation_for(session, address.rpartition("@")[2] if "@" in address else "")
        contact = Contact(address=address, name=name, organisation_id=org.id if org else None)
        session.add(contact)
        session.flush()
    elif name and not contact.name:
        contact.name = name
    known[address] = contact
    return contact


def organisation_for(session: Session, domain: str) -> Organisation | None:
    """The organisation of a mail domain (none for freemail providers)."""
    if not domain or domain in FREEMAIL_DOMAINS or "." not in domain:
        return None
    org = find_organisation(session, domain)
    if org is None:
        org = Organisation(name=domain, domain=domain)
        session.add(org)
        session.flush()
        session.info["organisations"][domain] = org
    return org


def find_organisation(session: Session, domain: str) -> Organisation | None:
    """The organisation of a mail domain, if there is one (looked up once per transaction)."""
    known: dict[str, Organisation | None] = session.info.setdefault("organisations", {})
    if domain not in known:
        known[domain] = session.execute(_ORGANISATION, {"domain": domain}).scalars().first()
    return known[domain]


def watcher_addresses(session: Session, ticket_id: int) -> dict[str, None]:
    """The ticket's watchers in the order they came (read once per transaction, kept current
    by add_watcher; a ticket opened in this transaction starts with none)."""
    cache: dict[int, dict[str, None]] = session.info.setdefault("watchers", {})
    if ticket_id not in cache:
        rows = session.execute(_WATCHERS, {"ticket_id": ticket_id}).scalars()
        cache[ticket_id] = dict.fromkeys(rows)
    return cache[ticket_id]


def no_watchers_yet(session: Session, ticket_id: int) -> None:
    """A ticket just opened in this transaction: nobody to ask the database about."""
    session.info.setdefault("watchers", {})[ticket_id] = {}


def add_watcher(session: Session, ticket_id: int, address: str, role: str) -> bool:
    """Make address a watcher of the ticket unless it already is; True when added."""
    watching = watcher_addresses(session, ticket_id)
    if address in watching:
        return False
    insert_rows(session, Watcher, [{"ticket_id": ticket_id, "address": address, "role": role}])
    watching[address] = None
    return True


NAMED_HELD = 100  # addresses a cap hit names; the count covers all of them


def hold_back(session: Session, hit: CapHit | None, *, ticket_id: int, message_id: int | None,
              limit: str, maximum: int, addresses: Sequence[str]) -> CapHit:
    """Record on the ticket that a limit held addresses back (one row per limit and event)."""
    if hit is None:
        hit = CapHit(ticket_id=ticket_id, message_id=message_id, limit=limit, maximum=maximum,
                     left_out=0, addresses="[]")
        session.add(hit)
    named: list[str] = json.loads(hit.addresses)
    named.extend(addresses[: max(0, NAMED_HELD - len(named))])
    hit.addresses = json.dumps(named, ensure_ascii=False)
    hit.left_out += len(addresses)
    return hit


def ledger_has(session: Session, mailbox: str, uidvalidity: int | None, uid: int | None) -> bool:
    """Whether this mailbox copy of a mail was processed already."""
    if uid is None:
        return False
    if uidvalidity is None:  # "= NULL" matches nothing: this one needs IS NULL
        return session.exec(select(LedgerEntry.id).where(
            LedgerEntry.mailbox == mailbox, col(LedgerEntry.uidvalidity).is_(None),
            LedgerEntry.uid == uid)).first() is not None
    params = {"mailbox": mailbox, "uidvalidity": uidvalidity, "uid": uid}
    return session.execute(_LEDGER, params).first() is not None


def processed_uids(session: Session, mailbox: str, uidvalidity: int,
                   uids: Sequence[int]) -> dict[int, str]:
    """Which of these UIDs the ledger already holds, with their outcomes."""
    if not uids:
        return {}
    rows = session.exec(
        select(LedgerEntry.uid, LedgerEntry.outcome).where(
            LedgerEntry.mailbox == mailbox,
            LedgerEntry.uidvalidity == uidvalidity,
            col(LedgerEntry.uid).in_(list(uids)),
        )
    ).all()
    return {int(uid): outcome for uid, outcome in rows if uid is not None}


def note_copy(session: Session, mailbox: str, uidvalidity: int, uids: Sequence[int],
              uidnext: int) -> None:
    """Before a COPY: where in the target folder its copies will be, for a check after a crash."""
    entries = session.exec(select(LedgerEntry).where(
        LedgerEntry.mailbox == mailbox, LedgerEntry.uidvalidity == uidvalidity,
        col(LedgerEntry.uid).in_(list(uids)))).all()
    for entry in entries:
        entry.copy_uidnext = uidnext


def copy_marks(session: Session, mailbox: str, uidvalidity: int,
               uids: Sequence[int]) -> dict[int, int]:
    """The UIDs that may have been copied already, with the target's UIDNEXT before that COPY."""
    rows = session.exec(select(LedgerEntry.uid, LedgerEntry.copy_uidnext).where(
        LedgerEntry.mailbox == mailbox, LedgerEntry.uidvalidity == uidvalidity,
        col(LedgerEntry.uid).in_(list(uids)), col(LedgerEntry.copy_uidnext).is_not(None))).all()
    return {int(uid): int(mark) for uid, mark in rows if uid is not None and mark is not None}


def last_uid(session: Session, mailbox: str, uidvalidity: int) -> int:
    """The highest UID the ledger holds for a mailbox generation (0 when none)."""
    rows = session.exec(
        select(LedgerEntry.uid)
        .where(LedgerEntry.mailbox == mailbox, LedgerEntry.uidvalidity == uidvalidity,
               col(LedgerEntry.uid).is_not(None))
        .order_by(col(LedgerEntry.uid).desc())
        .limit(1)
    ).first()
    return int(rows) if rows is not None else 0


def set_organisation(session: Session, domain: str, *, name: str | None = None,
                     share_tickets: bool | None = None) -> Organisation | None:
    """Create or change the organisation of a domain (None for freemail providers)."""
    org = organisation_for(session, domain.strip().lower())
    if org is None:
        return None
    if name is not None:
        org.name = name
    if share_tickets is not None:
        org.share_tickets = share_tickets
    return org
