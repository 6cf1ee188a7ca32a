"""Merging a duplicate ticket into another: its mail, people, files and time move over.

The merged ticket is closed with a link to the target; its token and Message-IDs keep
threading into the target (``gateway.thread.index`` follows the link), so a reply to
either ticket lands in one place.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, delete, select

from gateway.statuses import Status, move
from store.models import Contact, Message, Ticket, TimeEntry, Timer, Watcher
from store.queries import add_watcher, ticket_by_number
from store.timers import merge_target


def merge_problem(session: Session, source: Ticket, number: str) -> tuple[Ticket | None, str]:
    """The ticket to merge source into, or why there is none (in words for the agent)."""
    found = ticket_by_number(session, number)
    if found is None:
        return None, f"no ticket {number}"
    target = merge_target(session, found)
    if target.id == source.id:
        return None, ("a ticket cannot be merged into itself" if found.id == source.id
                      else f"{number} was merged into this ticket already")
    if source.merged_into_id is not None:
        return None, "this ticket was merged already"
    if target.type == "internal" and source.type != "internal":
        return None, f"{target.number} is an internal ticket: its customer would hear nothing"
    return target, ""


def merge(session: Session, source: Ticket, target: Ticket, now: datetime) -> None:
    """Move source's messages, watchers, booked time and reminders to target; close source."""
    assert source.id is not None and target.id is not None
    session.flush()
    for table in (Message, TimeEntry):
        session.execute(update(table).where(col(table.ticket_id) == source.id)
                        .values(ticket_id=target.id))
    session.execute(update(Timer).where(col(Timer.ticket_id) == source.id,
                                        col(Timer.kind) == "reminder",
                                        col(Timer.status) == "pending")
                    .values(ticket_id=target.id))
    customer = session.get(Contact, target.customer_id) if target.customer_id else None
    for address, role in session.exec(select(Watcher.address, Watcher.role)
                                      .where(Watcher.ticket_id == source.id)
                                      .order_by(col(Watcher.id))).all():
        keep = "cc" if role == "customer" and (customer is None or address != customer.address) \
            else role
        add_watcher(session, target.id, address, keep)
    session.execute(delete(Watcher).where(col(Watcher.ticket_id) == source.id))
    session.info.setdefault("watchers", {}).pop(source.id, None)
    session.expire_all()  # rows moved behind the session's back
    source.merged_into_id = target.id
    move(source, Status.CLOSED, now)
    target.updated_at = now
