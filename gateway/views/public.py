"""Public views: a ticket and its messages as customers, portals and webhook subscribers see them.

The status is shown in the portal vocabulary with its traffic-light colour; agents appear by
their display name only, never by their address; nothing internal is included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.statuses import customer_status
from store.models import Attachment, Contact, Message, Organisation, Ticket


def stamp(moment: datetime | None) -> str | None:
    """An ISO 8601 time in UTC (SQLite hands times back without their zone)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def portal_link(config: Config, number: str) -> str | None:
    """The ticket's page in the customer portal ([outbound] portal_url), if configured."""
    url = config.outbound.portal_url
    return url.format(number=number) if url else None


def ticket_view(session: Session, config: Config, ticket: Ticket, language: str) -> dict[str, Any]:
    """The public fields of a ticket."""
    customer = session.get(Contact, ticket.customer_id) if ticket.customer_id else None
    org = session.get(Organisation, ticket.organisation_id) if ticket.organisation_id else None
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": customer_status(ticket.status, language),
        "source": ticket.source,
        "categories": json.loads(ticket.categories),
        "asset": ticket.asset,
        "organisation": org.domain if org else None,
        "customer": {"email": customer.address, "name": customer.name} if customer else None,
        "created_at": stamp(ticket.created_at),
        "updated_at": stamp(ticket.updated_at),
        "closed_at": stamp(ticket.closed_at),
        "url": portal_link(config, ticket.number),
    }


def message_view(message: Message, attachments: Sequence[Attachment]) -> dict[str, Any]:
    """A public message: who wrote it (an agent by display name only), text, files."""
    if message.direction == "out":
        author = {"role": "support", "name": message.from_name, "email": None}
    elif message.kind == "agent":
        author = {"role": "agent", "name": message.from_name, "email": None}
    else:
        author = {"role": "customer", "name": message.from_name, "email": message.from_address}
    return {
        "id": message.id,
        "author": author,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "created_at": stamp(message.created_at),
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type,
                         "size": a.size} for a in attachments],
    }


def message_views(session: Session, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Several messages with their attachments, read in one query."""
    ids = [m.id for m in messages]
    files: dict[int, list[Attachment]] = {}
    if ids:
        for item in session.exec(select(Attachment).where(col(Attachment.message_id).in_(ids))
                                 .order_by(col(Attachment.id))).all():
            files.setdefault(item.message_id, []).append(item)
    return [message_view(m, files.get(m.id or 0, [])) for m in messages]
