"""Retention: purge what is older than the configured days; the service runs it on a schedule.

``purge_once`` is the whole decision, in batches of its own transactions: whole tickets
resolved or closed and untouched for ``closed_ticket_days`` (with their messages, files,
watchers, outbox and webhook rows, timers), quarantine entries resolved ``quarantine_resolved_days``
ago, outbox rows of mail sent ``outbox_sent_days`` ago (the message itself stays), and raw
originals older than ``originals_days``. A blob goes only when nothing refers to it any more.
``dry_run`` does the same in one transaction and rolls it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from gateway.config import Config
from gateway.errors import TemporaryError, store_errors
from gateway.statuses import DONE
from store import blobs
from store.models import (
    Attachment,
    AuditEntry,
    CapHit,
    Message,
    OutboxMail,
    QuarantinedMail,
    RuleHit,
    Suppression,
    Ticket,
    TimeEntry,
    Timer,
    Watcher,
    WebhookDelivery,
)

log = logging.getLogger("gateway.retention")

BATCH = 200  # tickets or originals per transaction
_TICKET_ROWS: tuple[type[SQLModel], ...] = (Watcher, RuleHit, OutboxMail, WebhookDelivery, CapHit,
                                            Timer, TimeEntry)


def purge_once(engine: Engine, config: Config, now: datetime, *, dry_run: bool = False) -> Counter[str]:
    """Purge everything past its retention now; returns how many rows of each kind went."""
    days = config.retention
    done: Counter[str] = Counter()
    steps: list[tuple[int, Callable[[Session, datetime, Counter[str]], bool]]] = [
        (days.closed_ticket_days, _closed_tickets), (days.quarantine_resolved_days, _quarantine),
        (days.outbox_sent_days, _sent_outbox), (days.originals_days, _originals)]
    with store_errors(), Session(engine, expire_on_commit=False) as session:
        for limit, step in steps:
            if not limit:
                continue
            cutoff = now - timedelta(days=limit)
            while step(session, cutoff, done):  # batch by batch: a commit each, a dry run none
                if not dry_run:
                    session.commit()
            if not dry_run:
                session.commit()
        session.rollback()  # a dry run's deletions; nothing otherwise
    done = +done  # the kinds of rows that went
    if done and not dry_run:
        with store_errors(), Session(engine) as session:
            summary = ", ".join(f"{n} {k}" for k, n in sorted(done.items()))
            session.add(AuditEntry(action="purge", detail=f"retention: {summary}"))
            session.commit()
    return done


def _closed_tickets(session: Session, cutoff: datetime, done: Counter[str]) -> bool:
    """One batch of done tickets untouched since cutoff, whole; True when more may be left."""
    ids = [i for i in session.exec(select(Ticket.id).where(
        col(Ticket.status).in_([s.value for s in DONE]), col(Ticket.updated_at) < cutoff)
        .order_by(col(Ticket.id)).limit(BATCH)).all() if i is not None]
    if not ids:
        return False
    for name in ("linked_ticket_id", "merged_into_id"):  # other tickets may point here
        session.execute(update(Ticket).where(getattr(Ticket, name).in_(ids)).values({name: None}))
    session.execute(update(Suppression).where(col(Suppression.ticket_id).in_(ids))
                    .values(ticket_id=None))
    for table in _TICKET_ROWS:
        result = session.execute(delete(table).where(table.ticket_id.in_(ids)))  # type: ignore[attr-defined]
        done[str(table.__tablename__)] += result.rowcount or 0  # type: ignore[attr-defined]
    _delete_messages(session, ids, done)
    result = session.execute(delete(Ticket).where(col(Ticket.id).in_(ids)))
    done["ticket"] += result.rowcount or 0  # type: ignore[attr-defined]
    return len(ids) == BATCH


def _delete_messages(session: Session, ticket_ids: list[int], done: Counter[str]) -> None:
    """The tickets' messages with their files; blobs nothing else refers to go too."""
    message_ids = select(Message.id).where(col(Message.ticket_id).in_(ticket_ids))
    shas = list(session.exec(select(Attachment.blob)
                             .where(col(Attachment.message_id).in_(message_ids))).all())
    shas += [s for s in session.exec(select(Message.original).where(
        col(Message.ticket_id).in_(ticket_ids))).all() if s]
    result = session.execute(delete(Attachment).where(col(Attachment.message_id).in_(message_ids)))
    done["attachment"] += result.rowcount or 0  # type: ignore[attr-defined]
    result = session.execute(delete(Message).where(col(Message.ticket_id).in_(ticket_ids)))
    done["message"] += result.rowcount or 0  # type: ignore[attr-defined]
    done["blob"] += blobs.release(session, shas)


def _quarantine(session: Session, cutoff: datetime, done: Counter[str]) -> bool:
    """Quarantine entries resolved before cutoff (unresolved ones wait for an admin)."""
    result = session.execute(delete(QuarantinedMail).where(
        col(QuarantinedMail.resolved_at).is_not(None), col(QuarantinedMail.resolved_at) < cutoff))
    done["quarantine"] += result.rowcount or 0  # type: ignore[attr-defined]
    return False


def _sent_outbox(session: Session, cutoff: datetime, done: Counter[str]) -> bool:
    """Outbox rows of mail sent before cutoff; the message row (the thread's record) stays."""
    result = session.execute(delete(OutboxMail).where(
        col(OutboxMail.status) == "sent", col(OutboxMail.sent_at) < cutoff))
    done["outbox"] += result.rowcount or 0  # type: ignore[attr-defined]
    return False


def _originals(session: Session, cutoff: datetime, done: Counter[str]) -> bool:
    """One batch of raw originals of mails stored before cutoff."""
    rows = session.exec(select(Message).where(col(Message.original).is_not(None),
                                              col(Message.created_at) < cutoff)
                        .order_by(col(Message.id)).limit(BATCH)).all()
    shas = [m.original for m in rows if m.original]
    for message in rows:
        message.original = None
    done["message.original"] += len(rows)
    done["blob"] += blobs.release(session, shas)
    return len(rows) == BATCH


class RetentionWorker:
    """Runs purge_once every [retention] interval_minutes while the service runs."""

    def __init__(self, engine: Engine, config: Config, clock: Callable[[], datetime]) -> None:
        self.engine, self.config, self.clock = engine, config, clock
        self.passed = asyncio.Event()  # set after each pass (tests await it)

    async def run(self, stop: asyncio.Event) -> None:
        """Until stop: purge, then wait an interval (an outage or a bug waits and tries again)."""
        while not stop.is_set():
            try:
                done = await asyncio.to_thread(purge_once, self.engine, self.config, self.clock())
                if done:
                    log.info("retention purged %s", ", ".join(f"{n} {k}" for k, n in sorted(done.items())))
            except TemporaryError as exc:
                log.warning("retention purge postponed, database unavailable: %s", exc)
            except Exception:  # never stop the service over a purge
                log.exception("retention purge failed")
            self.passed.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.retention.interval_minutes * 60)
