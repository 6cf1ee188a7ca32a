"""Queries the pipeline and the CLI share; all take an open session."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlmodel import Session, col, select

from gateway.intake.parse import Address, message_key
from gateway.thread.followup import TicketRef
from store.models import Contact, LedgerEntry, Message, Organisation, Ticket, Watcher

FREEMAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.de", "hotmail.com", "hotmail.de",
    "outlook.com", "outlook.de", "live.com", "msn.com", "icloud.com", "me.com", "aol.com",
    "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de",
    "posteo.de", "mailbox.org", "protonmail.com", "proton.me", "yandex.ru", "mail.ru",
    "qq.com", "163.com", "126.com", "localhost",
})


def next_counter(session: Session, scope: str) -> int:
    """Atomically take the next value of a counter (row lock / write lock held to commit)."""
    row = session.execute(
        text(
            "INSERT INTO counter (scope, value) VALUES (:scope, 1) "
            "ON CONFLICT (scope) DO UPDATE SET value = counter.value + 1 RETURNING value"
        ),
        {"scope": scope},
    ).one()
    return int(row[0])


def _ref(ticket: Ticket) -> TicketRef:
    assert ticket.id is not None
    return TicketRef(ticket.id, ticket.number, ticket.status)


class SessionThreadIndex:
    """The thread stage's look-ups, answered from the database."""

    def __init__(self, session: Session, agent_addresses: frozenset[str]) -> None:
        self.session = session
        self.agents = agent_addresses

    def ticket_for_message_ids(self, message_ids: Sequence[str]) -> TicketRef | None:
        """The newest ticket holding a message with one of these Message-IDs."""
        keys = [message_key(m) for m in message_ids[:100]]
        ticket = self.session.exec(
            select(Ticket)
            .join(Message, col(Message.ticket_id) == col(Ticket.id))
            .where(col(Message.message_key).in_(keys))
            .order_by(col(Ticket.id).desc())
            .limit(1)
        ).first()
        return _ref(ticket) if ticket else None

    def ticket_by_number(self, number: str) -> TicketRef | None:
        """The ticket with this number."""
        ticket = self.session.exec(select(Ticket).where(Ticket.number == number)).first()
        return _ref(ticket) if ticket else None

    def is_participant(self, ticket: TicketRef, sender: Address) -> bool:
        """Customer, watcher, agent, or a colleague from the customer's organisation."""
        if sender.address in self.agents:
            return True
        watcher = self.session.exec(
            select(Watcher.id).where(Watcher.ticket_id == ticket.id,
                                     Watcher.address == sender.address)
        ).first()
        if watcher is not None:
            return True
        row = self.session.exec(
            select(Contact.address, Organisation.domain)
            .select_from(Ticket)
            .join(Contact, col(Contact.id) == col(Ticket.customer_id), isouter=True)
            .join(Organisation, col(Organisation.id) == col(Ticket.organisation_id),
                  isouter=True)
            .where(Ticket.id == ticket.id)
        ).first()
        if row is None:
            return False
        customer, org_domain = row
        return sender.address == customer or (org_domain is not None
                                              and sender.domain == org_domain)


def find_contact(session: Session, address: str) -> Contact | None:
    """The contact with this address, if known (looked up once per transaction)."""
    known: dict[str, Contact | None] = session.info.setdefault("contacts", {})
    if address not in known:
        known[address] = session.exec(select(Contact).where(Contact.address == address)).first()
    return known[address]


def contact_for(session: Session, sender: Address) -> Contact:
    """The contact for a sender, created on first sight; joins an organisation by domain."""
    known: dict[str, Contact | None] = session.info.setdefault("contacts", {})
    contact = find_contact(session, sender.address)
    if contact is None:
        org = organisation_for(session, sender.domain)
        contact = Contact(address=sender.address, name=sender.name,
                          organisation_id=org.id if org else None)
        session.add(contact)
        session.flush()
    elif sender.name and not contact.name:
        contact.name = sender.name
    known[sender.address] = contact
    return contact


def organisation_for(session: Session, domain: str) -> Organisation | None:
    """The organisation of a mail domain (none for freemail providers)."""
    if not domain or domain in FREEMAIL_DOMAINS or "." not in domain:
        return None
    org = session.exec(select(Organisation).where(Organisation.domain == domain)).first()
    if org is None:
        org = Organisation(name=domain, domain=domain)
        session.add(org)
        session.flush()
    return org


def watcher_addresses(session: Session, ticket_id: int) -> set[str]:
    """The ticket's watchers (read once per transaction, kept current by add_watcher)."""
    cache: dict[int, set[str]] = session.info.setdefault("watchers", {})
    if ticket_id not in cache:
        cache[ticket_id] = set(session.exec(
            select(Watcher.address).where(Watcher.ticket_id == ticket_id)).all())
    return cache[ticket_id]


def add_watcher(session: Session, ticket_id: int, address: str, role: str) -> bool:
    """Make address a watcher of the ticket unless it already is; True when added."""
    watching = watcher_addresses(session, ticket_id)
    if address in watching:
        return False
    session.add(Watcher(ticket_id=ticket_id, address=address, role=role))
    watching.add(address)
    return True


def ledger_has(session: Session, mailbox: str, uidvalidity: int | None, uid: int | None) -> bool:
    """Whether this mailbox copy of a mail was processed already."""
    if uid is None:
        return False
    return session.exec(
        select(LedgerEntry.id).where(
            LedgerEntry.mailbox == mailbox,
            LedgerEntry.uidvalidity == uidvalidity,
            LedgerEntry.uid == uid,
        )
    ).first() is not None


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
