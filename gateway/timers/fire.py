"""The firing pass: take each due timer under a row lock and carry it out in one transaction.

``fire_due_timers_once`` is the run-once form (tests call it with any ``now`` to travel in
time; the service only schedules it). Each timer is claimed with ``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL (SQLite: the write lock every transaction takes), and its status
changes in the transaction that queues its mails: a crash before the commit leaves it
pending, a commit marks it fired. Two instances never fire one timer twice, and the pass
never waits for a lock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.errors import StoreUnavailable, store_errors
from gateway.retry import backoff
from gateway.rules.model import Rule
from gateway.statuses import DONE
from gateway.timers.effects import fire
from gateway.timers.policy import aware, sync_timers
from store.db import transaction
from store.models import Ticket, Timer

log = logging.getLogger("gateway.timers")

MAX_ATTEMPTS = 5  # a timer whose effect keeps failing is marked failed, with the error


@dataclass
class TimerCounts:
    """What one pass did: timers fired (by kind), failed, and when the next one is due."""

    fired: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    next_due: datetime | None = None

    @property
    def total(self) -> int:
        """All timers fired in the pass."""
        return sum(self.fired.values())


def fire_due_timers_once(engine: Engine, config: Config, now: datetime | None = None, *,
                         rules: Sequence[Rule] = ()) -> TimerCounts:
    """Fire every timer due at now (at most [timers] batch_size); return what happened."""
    now = now or datetime.now(UTC)
    counts = TimerCounts()
    busy: set[int] = set()  # tickets another transaction holds: tried again next pass
    with store_errors():
        for _ in range(config.timers.batch_size):
            if not _fire_next(engine, config, now, rules, counts, busy):
                break
        counts.next_due = next_due(engine)
    return counts


def _claim(session: Session, engine: Engine, now: datetime, busy: set[int]) -> Timer | None:
    """The earliest due pending timer (of a ticket not found busy), locked for this transaction."""
    query = (select(Timer).where(Timer.status == "pending", col(Timer.due_at) <= now,
                                 col(Timer.ticket_id).not_in(busy))
             .order_by(col(Timer.due_at), col(Timer.id)).limit(1))
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Timer)
    return session.exec(query).first()


def _lock_ticket(session: Session, engine: Engine, ticket_id: int) -> Ticket | None:
    """The timer's ticket, locked; None while another transaction holds it (never waits).

    A mail's transaction locks the ticket before its timers; this pass holds a timer and
    only tries the ticket, so the two can never deadlock.
    """
    query = select(Ticket).where(Ticket.id == ticket_id)
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).first()


def _fire_next(engine: Engine, config: Config, now: datetime, rules: Sequence[Rule],
               counts: TimerCounts, busy: set[int]) -> bool:
    """Fire one due timer in its own transaction; False when none is due (or all are busy)."""
    claimed: int | None = None
    try:
        with transaction(engine) as session:
            timer = _claim(session, engine, now, busy)
            if timer is None:
                return False
            claimed = timer.id
            ticket = _lock_ticket(session, engine, timer.ticket_id)
            if ticket is None:  # being changed right now: its timers wait for the next pass
                busy.add(timer.ticket_id)
                return True
            session.refresh(timer)  # as committed now that the ticket is ours
            if timer.status != "pending":
                return True
            if timer.kind != "reminder":
                sync_timers(session, config, ticket, now)  # still wanted, and still due?
                if timer.status != "pending" or aware(timer.due_at) > now:
                    return True
            notes = fire(session, config, timer, ticket, now, rules)
            timer.status, timer.fired_at = "fired", now
            sync_timers(session, config, ticket, now)
            counts.fired[timer.kind] = counts.fired.get(timer.kind, 0) + 1
            log.info("%s timer %s (%s) fired%s", ticket.number, timer.id, timer.kind,
                     f": {'; '.join(notes)}" if notes else "")
        return True
    except StoreUnavailable:
        raise
    except Exception as exc:  # one broken timer never stops the others
        if claimed is None:
            raise
        log.exception("timer %s failed", claimed)
        _failed(engine, claimed, f"{type(exc).__name__}: {exc}", now)
        counts.failed += 1
        return True


def _failed(engine: Engine, timer_id: int, error: str, now: datetime) -> None:
    """Try a failed timer again later; after MAX_ATTEMPTS keep it as failed, with the error."""
    with transaction(engine) as session:
        timer = session.get(Timer, timer_id)
        if timer is None:
            return
        timer.attempts += 1
        timer.last_error = error[:2000]
        if timer.attempts >= MAX_ATTEMPTS:
            timer.status = "failed"
        else:
            timer.due_at = now + timedelta(seconds=backoff(timer.attempts, 60.0, 3600.0))


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending timer falls due."""
    with Session(engine) as session:
        due = session.exec(select(func.min(Timer.due_at)).where(Timer.status == "pending")).one()
    return aware(due) if due is not None else None


def sync_open_tickets(engine: Engine, config: Config, now: datetime | None = None,
                      chunk: int = 500) -> int:
    """Bring every open ticket's timers in line with the configuration (after a change).

    In short transactions of chunk tickets each, so mail intake never waits long for them.
    """
    now = now or datetime.now(UTC)
    count, after = 0, 0
    while True:
        with store_errors(), transaction(engine) as session:
            tickets = session.exec(select(Ticket).where(col(Ticket.status).not_in(DONE),
                                                        col(Ticket.id) > after)
                                   .order_by(col(Ticket.id)).limit(chunk)).all()
            for ticket in tickets:
                sync_timers(session, config, ticket, now)
        if not tickets:
            return count
        count += len(tickets)
        after = tickets[-1].id or after
