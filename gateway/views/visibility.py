"""Who may see which ticket and message: the one visibility rule of the API, portal and webhooks.

A customer sees the tickets they opened or were copied on, and every ticket of their
organisation when the organisation shares its tickets (``organisation.share_tickets``); an
organisation sees its tickets. Internal tickets are nobody's. Of a ticket's messages only the
public ones of customers and agents are shown: never internal notes, unproven mails that
claimed to be an agent's, automatic mails or anything written for agents alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_
from sqlmodel import Session, col, func, select

from gateway.config import OrganisationConfig
from store.models import Attachment, Contact, Message, Organisation, Ticket, Watcher
from store.queries import set_organisation

PUBLIC_KINDS = ("customer", "agent")  # inbound messages customers may read


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a customer by address, or an organisation by mail domain."""

    customer: str | None = None
    organisation: str | None = None

    def __post_init__(self) -> None:
        if (self.customer is None) == (self.organisation is None):
            raise ValueError("a viewer is a customer or an organisation, not both or neither")


def _condition(session: Session, viewer: Viewer) -> ColumnElement[bool]:
    """The SQL condition on Ticket that holds for exactly the tickets the viewer may see."""
    if viewer.organisation is not None:
        org = session.exec(select(Organisation).where(
            Organisation.domain == viewer.organisation.lower())).first()
        return col(Ticket.organisation_id) == org.id if org else false()
    address = (viewer.customer or "").lower()
    contact = session.exec(select(Contact).where(Contact.address == address)).first()
    copied = select(Watcher.ticket_id).where(Watcher.address == address,
                                             col(Watcher.role).in_(("customer", "cc")))
    seen: list[ColumnElement[bool]] = [col(Ticket.id).in_(copied)]
    if contact is not None:
        seen.append(col(Ticket.customer_id) == contact.id)
        org = session.get(Organisation, contact.organisation_id) if contact.organisation_id else None
        if org is not None and org.share_tickets:
            seen.append(col(Ticket.organisation_id) == org.id)
    return or_(*seen)


def visible_ticket(session: Session, viewer: Viewer, number: str) -> Ticket | None:
    """The ticket with this number, if the viewer may see it (else None: answer 404, never 403)."""
    return session.exec(select(Ticket).where(
        Ticket.number == number, Ticket.type != "internal", _condition(session, viewer))).first()


@dataclass(frozen=True)
class Page:
    """One page of tickets and how many match in all."""

    tickets: list[Ticket]
    total: int


ORDERS = ("updated", "oldest", "number")  # most recently updated first, least recently, by number


def _like(text: str) -> str:
    """A LIKE pattern that finds text anywhere, its wildcards taken literally.

    >>> print(_like("50%_off"))
    %50\\%\\_off%
    """
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def visible_tickets(session: Session, viewer: Viewer, *, statuses: Sequence[str] | None = None,
                    updated_since: datetime | None = None, limit: int = 20,
                    offset: int = 0, search: str | None = None, order: str = "updated") -> Page:
    """The viewer's tickets, filtered (status, time, words in subject or number), sorted, paged."""
    where: list[ColumnElement[bool]] = [col(Ticket.type) != "internal", _condition(session, viewer)]
    if statuses is not None:
        where.append(col(Ticket.status).in_(list(statuses)))
    if updated_since is not None:
        where.append(col(Ticket.updated_at) >= updated_since)
    if search:
        pattern = _like(search)
        where.append(or_(col(Ticket.subject).ilike(pattern, escape="\\"),
                         col(Ticket.number).ilike(pattern, escape="\\")))
    sort: tuple[Any, ...] = {"oldest": (col(Ticket.updated_at).asc(), col(Ticket.id).asc()),
            "number": (col(Ticket.number).desc(), col(Ticket.id).desc())}.get(
        order, (col(Ticket.updated_at).desc(), col(Ticket.id).desc()))  # "updated"
    total = session.exec(select(func.count()).select_from(Ticket).where(*where)).one()
    rows = session.exec(select(Ticket).where(*where).order_by(*sort).offset(offset).limit(limit)).all()
    return Page(list(rows), int(total))


def public_condition() -> ColumnElement[bool]:
    """Messages customers may read: public inbound mail of customers and agents."""
    return (col(Message.public).is_(True) & (col(Message.direction) == "in")
            & col(Message.kind).in_(PUBLIC_KINDS))


def public_messages(session: Session, ticket_id: int) -> list[Message]:
    """A ticket's public messages, oldest first."""
    return list(session.exec(select(Message).where(Message.ticket_id == ticket_id, public_condition())
                             .order_by(col(Message.id))).all())


def is_public(message: Message) -> bool:
    """The same rule as public_condition, for a message in hand (webhooks)."""
    return message.public and message.direction == "in" and message.kind in PUBLIC_KINDS


def public_attachment(session: Session, ticket_id: int, attachment_id: int) -> Attachment | None:
    """An attachment of a public message of this ticket (None for anything else)."""
    return session.exec(
        select(Attachment).join(Message, col(Message.id) == col(Attachment.message_id))
        .where(Attachment.id == attachment_id, Message.ticket_id == ticket_id, public_condition())
    ).first()


def apply_config_organisations(session: Session, organisations: Sequence[OrganisationConfig]) -> int:
    """Write the [[organisation]] entries of the config (at start): name and ticket sharing."""
    for entry in organisations:
        set_organisation(session, entry.domain, name=entry.name or None,
                         share_tickets=entry.share_tickets)
    return len(organisations)
