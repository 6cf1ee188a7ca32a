"""Webhook events: queued in the webhook outbox inside the transaction of the event itself.

An event exists exactly when what it reports was stored: a rolled-back mail leaves no event,
a committed one always has its rows, one per subscribed ``[[webhook]]``, sharing one event id
(``gateway.web.webhooks`` sends them). Payloads carry the public views of
``gateway.views.public``: nothing internal ever leaves through a webhook.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.statuses import customer_status
from gateway.views.public import message_views, stamp, ticket_view
from store.models import Message, Ticket, WebhookDelivery


def emit(session: Session, config: Config, event: str, ticket: Ticket, now: datetime, *,
         message: Message | None = None, extra: dict[str, Any] | None = None) -> str | None:
    """Queue one event for every subscriber that wants it; its id, or None when nobody does."""
    hooks = [hook for hook in config.webhooks if hook.wants(event)]
    if not hooks:
        return None
    assert ticket.id is not None
    session.flush()  # the ticket's and message's current state, ids included
    event_id = f"evt_{uuid.uuid4().hex}"
    data: dict[str, Any] = {"ticket": ticket_view(session, config, ticket, config.outbound.language)}
    if message is not None:
        data["message"] = message_views(session, [message])[0]
    data.update(extra or {})
    payload = json.dumps({"id": event_id, "type": event, "created_at": stamp(now), "data": data},
                         ensure_ascii=False, separators=(",", ":"))
    for hook in hooks:
        session.add(WebhookDelivery(webhook=hook.name, event_id=event_id, event=event,
                                    ticket_id=ticket.id, payload=payload, next_attempt_at=now,
                                    created_at=now))
    return event_id


def status_changed(session: Session, config: Config, ticket: Ticket, before: str,
                   now: datetime) -> str | None:
    """ticket.status_changed, with the status before in the portal vocabulary and internally."""
    previous = customer_status(before, config.outbound.language)
    return emit(session, config, "ticket.status_changed", ticket, now,
                extra={"previous_status": previous})


def message_sent(session: Session, config: Config, message_row: int | None,
                 now: datetime) -> str | None:
    """message.sent for an outbound mail to a customer or watcher (agent-only mail: none)."""
    if not config.webhooks or message_row is None:
        return None
    message = session.get(Message, message_row)
    if message is None or not message.public:
        return None
    ticket = session.get(Ticket, message.ticket_id)
    return emit(session, config, "message.sent", ticket, now, message=message) if ticket else None


def backlog(session: Session) -> tuple[int, int, datetime | None]:
    """Webhook rows waiting (pending or being sent), failed for good, and the oldest waiting one."""
    waiting = col(WebhookDelivery.status).in_(("pending", "sending"))
    oldest = session.exec(select(WebhookDelivery.created_at).where(waiting)
                          .order_by(col(WebhookDelivery.id)).limit(1)).first()
    count = session.exec(select(func.count()).select_from(WebhookDelivery).where(waiting)).one()
    failed = session.exec(select(func.count()).select_from(WebhookDelivery)
                          .where(WebhookDelivery.status == "failed")).one()
    return int(count), int(failed), oldest
