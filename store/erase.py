"""Erase one person's data on request (GDPR Art. 17), leaving other people's tickets whole.

What goes: the contact; their watcher, suppression and cap-hit entries; the addresses, names
and content of the messages they wrote, with their files and raw originals; mails sent only
to them (the outbox row, the copy's text and files) and their place among other recipients;
ledger details. Then every text column is cleaned of the address (everywhere) and of the
local part and display name (on the tickets they took part in), and raw originals on those
tickets that still name them are dropped. Tickets stay, with their numbers and times, so
statistics and other people's threads hold together. An audit row records that an erasure
happened, never whom it concerned.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import String, Text
from sqlmodel import Session, SQLModel, col, delete, select

from store import blobs
from store.models import (
    Attachment,
    AuditEntry,
    CapHit,
    Contact,
    Message,
    OutboxMail,
    PortalLink,
    PortalSession,
    QuarantinedMail,
    Suppression,
    Ticket,
    Watcher,
    WebhookDelivery,
)

ERASED = "[erased]"
_MIN_WORD = 3  # shorter name parts and local parts are too common to search for


def erase_person(session: Session, address: str) -> Counter[str]:
    """Erase everything about address in this transaction; returns what changed, by table."""
    address = address.strip().lower()
    done: Counter[str] = Counter()
    contact = session.exec(select(Contact).where(func.lower(Contact.address) == address)).first()
    names = _names(session, address, contact)
    tickets = _tickets_of(session, address, contact)
    released: list[str] = []
    _about_them(session, address, released, done)
    _their_messages(session, address, released, done)
    _mails_to_them(session, address, released, done)
    _small_rows(session, address, contact, tickets, done)
    needles = [address, *_scoped_needles(address, names)]
    _scrub_all(session, [address], None, done)
    _scrub_all(session, needles[1:], tickets, done)
    _drop_originals(session, tickets, released, done)
    done["blob"] += blobs.release(session, released)
    session.add(AuditEntry(action="erase", detail="a person's data was erased on request"))
    return +done  # the kinds of rows that changed


def _has(column: Any, text: str) -> ColumnElement[bool]:
    """A text column contains text, in any case, with LIKE's wildcards taken literally."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def _names(session: Session, address: str, contact: Contact | None) -> set[str]:
    """The display names the person went by."""
    found = {contact.name} if contact and contact.name else set()
    found.update(n for n in session.exec(select(Message.from_name).where(
        Message.from_address == address, Message.direction == "in")).all() if n)
    return found


def _tickets_of(session: Session, address: str, contact: Contact | None) -> set[int]:
    """Tickets the person took part in: theirs, watched, written to, or mailed."""
    found: set[int] = set()
    if contact is not None:
        found.update(i for i in session.exec(select(Ticket.id).where(
            Ticket.customer_id == contact.id)).all() if i is not None)
    found.update(session.exec(select(Watcher.ticket_id).where(Watcher.address == address)).all())
    mentioned = or_(col(Message.from_address) == address, _has(Message.to, address),
                    _has(Message.cc, address))
    found.update(session.exec(select(Message.ticket_id).where(mentioned)).all())
    return found


def _about_them(session: Session, address: str, released: list[str], done: Counter[str]) -> None:
    """Mails about their messages (agent notifications quote them) and webhook events carrying
    them: the copies are emptied, queued ones dropped."""
    theirs = session.exec(select(Message.message_id).where(Message.from_address == address,
                                                           Message.direction == "in")).all()
    if not theirs:
        return
    for message in session.exec(select(Message).where(Message.direction == "out",
                                                      col(Message.in_reply_to).in_(theirs))).all():
        message.text = message.html = ""
        outbox = session.exec(select(OutboxMail).where(OutboxMail.message_row == message.id)).all()
        for row in outbox:
            if row.status in ("pending", "sending"):
                session.delete(row)
            else:
                row.context = json.dumps({"_meta": json.loads(row.context).get("_meta", {})})
            done["outbox"] += 1
        for item in session.exec(select(Attachment).where(Attachment.message_id == message.id)).all():
            released.append(item.blob)
            session.delete(item)
            done["attachment"] += 1
    mentions = or_(*(col(WebhookDelivery.payload).contains(mid, autoescape=True) for mid in theirs),
                   _has(WebhookDelivery.payload, address))
    for hook_row in session.exec(select(WebhookDelivery).where(mentions)).all():
        session.delete(hook_row)
        done["webhook_outbox"] += 1


def _their_messages(session: Session, address: str, released: list[str],
                    done: Counter[str]) -> None:
    """Messages they wrote: addresses, names, content, files and original gone."""
    for message in session.exec(select(Message).where(Message.from_address == address,
                                                      Message.direction == "in")).all():
        _blank(session, message, released, done)
        done["message"] += 1


def _blank(session: Session, message: Message, released: list[str], done: Counter[str]) -> None:
    """A message without content, addresses, files or original (its place in the thread stays)."""
    message.from_address = message.from_name = message.from_raw = ""
    message.subject = message.text = message.html = message.defects = ""
    message.to = message.cc = message.delivery_status = "[]"
    if message.original:
        released.append(message.original)
        message.original = None
    for item in session.exec(select(Attachment).where(Attachment.message_id == message.id)).all():
        released.append(item.blob)
        session.delete(item)
        done["attachment"] += 1


def _mails_to_them(session: Session, address: str, released: list[str],
                   done: Counter[str]) -> None:
    """Outbound mails: they leave the recipients; a mail to them alone is emptied."""
    rows = session.exec(select(OutboxMail).where(_has(OutboxMail.recipients, address))).all()
    for row in rows:
        left = [r for r in json.loads(row.recipients) if r.get("address", "").lower() != address]
        message = session.get(Message, row.message_row) if row.message_row else None
        if not left:
            if message is not None:
                _blank(session, message, released, done)
            session.delete(row)
            done["outbox"] += 1
            continue
        row.recipients = json.dumps(left)
        row.primary_address = left[0]["address"]
        if message is not None:
            message.to = _without(message.to, address)
            message.cc = _without(message.cc, address)
        done["outbox"] += 1
    for message in session.exec(select(Message).where(or_(
            _has(Message.to, address), _has(Message.cc, address)))).all():
        message.to, message.cc = _without(message.to, address), _without(message.cc, address)


def _without(addresses: str, address: str) -> str:
    """A JSON list of addresses without one."""
    return json.dumps([a for a in json.loads(addresses or "[]") if a.lower() != address])


def _small_rows(session: Session, address: str, contact: Contact | None, tickets: set[int],
                done: Counter[str]) -> None:
    """Watcher, suppression, portal sign-in and cap-hit entries; quarantined mails naming them;
    the contact."""
    for model, column in ((Watcher, Watcher.address), (Suppression, Suppression.address),
                          (PortalLink, PortalLink.address), (PortalSession, PortalSession.address)):
        result = session.execute(delete(model).where(func.lower(column) == address))
        done[str(model.__tablename__)] += result.rowcount or 0  # type: ignore[attr-defined]
    for hit in session.exec(select(CapHit).where(_has(CapHit.addresses, address))).all():
        hit.addresses = _without(hit.addresses, address)
        done["cap_hit"] += 1
    for entry in session.exec(select(QuarantinedMail)).all():
        if address.encode() in bytes(entry.raw).lower():
            session.delete(entry)
            done["quarantine"] += 1
    if contact is not None:
        session.execute(update(Ticket).where(col(Ticket.customer_id) == contact.id)
                        .values(customer_id=None))
        session.delete(contact)
        done["contact"] += 1
    session.flush()


def _scoped_needles(address: str, names: Iterable[str]) -> list[str]:
    """Local part and name words worth searching for on the person's tickets."""
    local = address.partition("@")[0]
    words = {local} if len(local) >= _MIN_WORD else set()
    for name in names:
        words.add(name)
        words.update(w for w in re.split(r"[\s,.\"'()<>]+", name) if len(w) >= _MIN_WORD)
    variants = {json.dumps(w)[1:-1] for w in words}  # as JSON with \\u escapes writes them
    return sorted(words | variants, key=len, reverse=True)


def _text_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if isinstance(c.type, String | Text)]


def _scope(table: Table, tickets: set[int] | None) -> ColumnElement[bool] | None:
    """Rows of a table that belong to the person's tickets (None: the whole table)."""
    if tickets is None:
        return None
    ids = sorted(tickets)
    if "ticket_id" in table.c:
        return table.c.ticket_id.in_(ids)
    if table.name == "ticket":
        return table.c.id.in_(ids)
    if table.name == "attachment":
        return table.c.message_id.in_(sa_select(col(Message.id)).where(col(Message.ticket_id).in_(ids)))
    if table.name == "ledgerentry":
        return table.c.ticket_number.in_(sa_select(col(Ticket.number)).where(col(Ticket.id).in_(ids)))
    return table.c[next(iter(table.primary_key.columns)).name].is_(None)  # no rows


def _scrub_all(session: Session, needles: list[str], tickets: set[int] | None,
               done: Counter[str]) -> None:
    """Replace needles in every text column (within the tickets' rows when tickets is given)."""
    if not needles:
        return
    pattern = re.compile("|".join(_word(n) for n in needles), re.IGNORECASE)
    for table in SQLModel.metadata.sorted_tables:
        columns, keys = _text_columns(table), [c.name for c in table.primary_key.columns]
        scope = _scope(table, tickets)
        for name in columns:
            column = table.c[name]
            hits = or_(*(func.lower(column).contains(n.lower(), autoescape=True) for n in needles))
            query = sa_select(*(table.c[k] for k in keys), column).where(hits)
            if scope is not None:
                query = query.where(scope)
            for row in session.execute(query).all():
                cleaned = pattern.sub(ERASED, row[-1])
                where = [table.c[k] == row[i] for i, k in enumerate(keys)]
                session.execute(update(table).where(*where).values({name: cleaned}))
                done[f"{table.name}.{name}"] += 1


def _word(needle: str) -> str:
    """A needle as a whole word (an address or name part, never inside a longer word)."""
    return rf"(?<![\w.+-]){re.escape(needle)}(?![\w-])"


def _drop_originals(session: Session, tickets: set[int], released: list[str],
                    done: Counter[str]) -> None:
    """Raw originals on their tickets: others' mails quote and copy them in forms (encoded
    headers, quoted-printable) no search finds for sure; the stored text stays."""
    if not tickets:
        return
    for message in session.exec(select(Message).where(col(Message.ticket_id).in_(sorted(tickets)),
                                                      col(Message.original).is_not(None))).all():
        assert message.original is not None
        released.append(message.original)
        message.original = None
        done["message.original"] += 1
