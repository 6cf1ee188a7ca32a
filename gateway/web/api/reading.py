"""Reading tickets: the viewer a request acts for, and the public views as response documents."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session

from gateway.config import Config
from gateway.intake.addresses import valid_address
from gateway.views.public import message_views, ticket_view
from gateway.views.visibility import Viewer, public_messages
from gateway.web.api.models import AttachmentOut, MessageOut, TicketDetail, TicketOut
from gateway.web.problems import Problem
from store.models import Message, Ticket
from store.queries import find_contact

BASE = "/api/v1"


def viewer_from(customer: str | None, organisation: str | None) -> Viewer:
    """Exactly one of customer (an address) and organisation (a domain), checked."""
    if (customer is None) == (organisation is None):
        raise Problem(422, "validation", "give exactly one of customer (an address) and "
                      "organisation (a mail domain): whose view of the tickets", field="customer")
    if customer is not None:
        address = valid_address(customer)
        if address is None:
            raise Problem(422, "validation", "customer: is not a valid mail address", field="customer")
        return Viewer(customer=address)
    return Viewer(organisation=(organisation or "").strip().lower())


def language(session: Session, config: Config, viewer: Viewer, lang: str | None) -> str:
    """The label language: asked for, else the customer's, else the default."""
    if lang:
        return lang
    contact = find_contact(session, viewer.customer) if viewer.customer else None
    return (contact.language if contact else None) or config.outbound.language


def query(viewer: Viewer) -> str:
    """The viewer as a query string, so links keep acting for the same viewer."""
    if viewer.customer is not None:
        return urlencode({"customer": viewer.customer})
    return urlencode({"organisation": viewer.organisation})


def ticket_out(session: Session, config: Config, ticket: Ticket, lang: str, viewer: Viewer) -> TicketOut:
    """A ticket's public view with its API link."""
    view = ticket_view(session, config, ticket, lang)
    return TicketOut(**view, href=f"{BASE}/tickets/{ticket.number}?{query(viewer)}")


def messages_out(session: Session, ticket: Ticket, messages: list[Message],
                 viewer: Viewer) -> list[MessageOut]:
    """Public messages with download links for their files."""
    out = []
    for view in message_views(session, messages):
        files: list[dict[str, Any]] = view.pop("attachments")
        for item in files:
            item["href"] = f"{BASE}/tickets/{ticket.number}/attachments/{item['id']}?{query(viewer)}"
        out.append(MessageOut(**view, attachments=[AttachmentOut(**item) for item in files]))
    return out


def detail_out(session: Session, config: Config, ticket: Ticket, lang: str,
               viewer: Viewer) -> TicketDetail:
    """A ticket with its public messages."""
    assert ticket.id is not None
    head = ticket_out(session, config, ticket, lang, viewer)
    return TicketDetail(**head.model_dump(),
                        messages=messages_out(session, ticket, public_messages(session, ticket.id), viewer))
