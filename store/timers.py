"""Timer rows, booked time and merged tickets: the writes and look-ups the stages share."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from store.models import Ticket, TimeEntry, Timer

MAX_MERGE_CHAIN = 20


def add_timer(session: Session, ticket_id: int, kind: str, due: datetime, *, note: str = "",
              created_by: str = "", now: datetime) -> Timer:
    """A pending timer, written in the caller's transaction."""
    timer = Timer(ticket_id=ticket_id, kind=kind, due_at=due, note=note[:2000],
                  created_by=created_by[:320], created_at=now)
    session.add(timer)
    return timer


def ticket_timers(session: Session, ticket_id: int, status: str | None = None) -> list[Timer]:
    """A ticket's timers (of one status), oldest due first."""
    query = select(Timer).where(Timer.ticket_id == ticket_id)
    if status is not None:
        query = query.where(Timer.status == status)
    return list(session.exec(query.order_by(col(Timer.due_at), col(Timer.id))).all())


def book_time(session: Session, ticket_id: int, agent: str, minutes: int, activity: str,
              now: datetime, message_id: int | None = None) -> TimeEntry:
    """One booking of an agent's time on a ticket."""
    entry = TimeEntry(ticket_id=ticket_id, agent=agent, minutes=minutes, activity=activity[:100],
                      message_id=message_id, created_at=now)
    session.add(entry)
    return entry


def booked_minutes(session: Session, ticket_id: int) -> int:
    """All time booked on a ticket, in minutes."""
    total = session.exec(select(func.sum(TimeEntry.minutes))
                         .where(TimeEntry.ticket_id == ticket_id)).one()
    return int(total or 0)


def merge_target(session: Session, ticket: Ticket) -> Ticket:
    """Where a ticket's mail goes: itself, or the ticket it was merged into (followed to the end)."""
    seen = {ticket.id}
    while ticket.merged_into_id is not None and len(seen) < MAX_MERGE_CHAIN:
        target = session.get(Ticket, ticket.merged_into_id)
        if target is None or target.id in seen:
            break
        seen.add(target.id)
        ticket = target
    return ticket
