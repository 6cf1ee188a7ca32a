"""Which timers a ticket should have now: auto-close steps, SLA warnings and breaches, idle.

``wanted_timers`` is a pure function of a ticket and the configuration; ``sync_timers``
makes the stored timers agree with it inside the caller's transaction (the mail's, the
agent's, or the firing timer's), so a customer's reply cancels a pending auto-close in the
same commit that stores the reply. Reminders are the agents' own and never touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.outbound.flush import aware
from gateway.statuses import DONE, Status
from gateway.timers.businesshours import add_business_time, calendar_for
from store.models import Ticket, Timer
from store.timers import add_timer

WAITING_REMINDER, AUTO_CLOSE, IDLE = "waiting_reminder", "auto_close", "idle"
SLA_KINDS = {  # kind -> (target, what happens)
    "sla_first_response_warning": ("first_response", "warning"),
    "sla_first_response_breach": ("first_response", "breach"),
    "sla_resolution_warning": ("resolution", "warning"),
    "sla_resolution_breach": ("resolution", "breach"),
}
MANAGED = (WAITING_REMINDER, AUTO_CLOSE, IDLE, *SLA_KINDS)
# Built once: every mail syncs its ticket's timers.
_LIVE_TIMERS = select(Timer).where(Timer.ticket_id == bindparam("ticket_id"),
                                   col(Timer.kind).in_(MANAGED),
                                   col(Timer.status).in_(("pending", "fired")))
__all__ = ["MANAGED", "SLA_KINDS", "aware", "responded", "sync_timers", "wanted_timers"]


def wanted_timers(config: Config, ticket: Ticket) -> dict[str, datetime]:
    """The managed timers this ticket should have now, by kind, with their due times."""
    wanted: dict[str, datetime] = {}
    channel = config.channel(ticket.channel)
    if ticket.merged_into_id is not None or ticket.status in DONE or channel is None:
        return wanted
    since = aware(ticket.status_changed_at or ticket.created_at)
    if ticket.status == Status.WAITING_EXTERNAL and ticket.type != "internal":
        remind, close = channel.auto_close_remind_days, channel.auto_close_days
        if remind:
            wanted[WAITING_REMINDER] = since + timedelta(days=remind)
        if close:
            wanted[AUTO_CLOSE] = since + timedelta(days=(remind or 0) + close)
    if channel.idle_days:
        wanted[IDLE] = aware(ticket.updated_at) + timedelta(days=channel.idle_days)
    wanted.update(_sla_timers(config, ticket))
    return wanted


def _sla_timers(config: Config, ticket: Ticket) -> dict[str, datetime]:
    """Warning and breach times of the SLA that covers the ticket, in business hours."""
    sla = config.sla_for(ticket.channel, ticket.priority)
    if sla is None or ticket.type == "internal":
        return {}
    calendar = calendar_for(config.business_hours)
    created = aware(ticket.created_at)
    targets = {"resolution": sla.resolution_hours}
    if ticket.first_response_at is None:
        targets["first_response"] = sla.first_response_hours
    found = {}
    for kind, (target, step) in SLA_KINDS.items():
        hours = targets.get(target)
        if hours:
            share = sla.warn_percent / 100 if step == "warning" else 1.0
            found[kind] = add_business_time(calendar, created, timedelta(hours=hours * share))
    return found


def sync_timers(session: Session, config: Config, ticket: Ticket, now: datetime) -> None:
    """Create, move or cancel the ticket's managed timers to match wanted_timers."""
    assert ticket.id is not None
    wanted = wanted_timers(config, ticket)
    existing = _live_timers(session, ticket.id)
    for kind in MANAGED:
        due = wanted.get(kind)
        pending = [t for t in existing if t.kind == kind and t.status == "pending"]
        fired = due is not None and any(t.kind == kind and t.status == "fired"
                                        and aware(t.due_at) == due for t in existing)
        keep = None
        if due is not None and not fired:
            keep = pending[0] if pending else add_timer(session, ticket.id, kind, due, now=now)
            keep.due_at = due
        for timer in pending:
            if timer is not keep:
                timer.status = "cancelled"


def _live_timers(session: Session, ticket_id: int) -> Sequence[Timer]:
    """The ticket's managed timers, pending or fired; a ticket opened in this transaction has
    only those added to the session since, so the database is not asked."""
    if ticket_id not in session.info.get("opened", ()):
        return session.execute(_LIVE_TIMERS, {"ticket_id": ticket_id}).scalars().all()
    return [t for t in (*session.new, *session.identity_map.values())
            if isinstance(t, Timer) and t.ticket_id == ticket_id and t.kind in MANAGED
            and t.status in ("pending", "fired")]


def responded(ticket: Ticket, now: datetime) -> None:
    """An agent's first public reply: the first-response clock stops."""
    if ticket.first_response_at is None:
        ticket.first_response_at = now
