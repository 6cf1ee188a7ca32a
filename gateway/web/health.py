"""Health: is the database reachable, is every mailbox drained, how long are the queues.

The service tells ``Health`` when each mailbox last completed a pass and when it is in an
outage; the lease table says which process holds a mailbox. ``check`` answers 503 when the
database cannot be reached or a mailbox has gone without a good pass for too long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, func, select

from gateway.config import Config, MailboxConfig
from gateway.outbound.events import backlog
from gateway.outbound.flush import aware
from gateway.views.public import stamp
from store.models import MailboxLease, OutboxMail


@dataclass
class MailboxState:
    """What this process knows about one mailbox."""

    last_good_poll: datetime | None = None
    outage: str | None = None


@dataclass
class Health:
    """The service's own view of its mailboxes, written by the workers, read by /healthz."""

    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    mailboxes: dict[str, MailboxState] = field(default_factory=dict)

    def polled(self, name: str, now: datetime | None = None) -> None:
        """A pass over the mailbox completed."""
        state = self.mailboxes.setdefault(name, MailboxState())
        state.last_good_poll, state.outage = now or datetime.now(UTC), None

    def failed(self, name: str, reason: str) -> None:
        """The mailbox is unreachable (the worker retries with backoff)."""
        self.mailboxes.setdefault(name, MailboxState()).outage = reason


def allowed_gap(box: MailboxConfig) -> timedelta:
    """How long a mailbox may go without a good pass: three polls and a command timeout."""
    return timedelta(seconds=3 * box.poll_seconds + box.timeout_seconds + 60)


def probe_engine(engine: Engine) -> Engine:
    """An engine that opens a fresh connection per check: a pooled one may outlive the database."""
    args: dict[str, Any] = {"timeout": 2} if engine.dialect.name == "sqlite" else {"connect_timeout": 3}
    return create_engine(engine.url, poolclass=NullPool, connect_args=args)


def check(probe: Engine, config: Config, health: Health | None,
          now: datetime | None = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): the database, each mailbox, the mail and webhook backlogs."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    report: dict[str, Any] = {"checked_at": stamp(now)}
    try:
        with Session(probe) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            leases = {row.mailbox: row for row in session.exec(select(MailboxLease)).all()}
            report["outbox"] = _outbox(session)
            waiting, failed, oldest = backlog(session)
            report["webhooks"] = {"waiting": waiting, "failed": failed, "oldest_waiting": stamp(oldest)}
        report["database"] = {"ok": True, "seconds": round(time.perf_counter() - started, 4)}
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        report["database"] = {"ok": False, "error": reason}
        leases = {}
    boxes = [_mailbox(box, health, leases.get(box.name), now) for box in config.mailboxes]
    report["mailboxes"] = boxes
    healthy = report["database"]["ok"] and all(b["ok"] for b in boxes)
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report


def _outbox(session: Session) -> dict[str, Any]:
    waiting = col(OutboxMail.status).in_(("pending", "sending"))
    count = session.exec(select(func.count()).select_from(OutboxMail).where(waiting)).one()
    failed = session.exec(select(func.count()).select_from(OutboxMail)
                          .where(OutboxMail.status == "failed")).one()
    oldest = session.exec(select(func.min(OutboxMail.created_at)).where(waiting)).one()
    return {"waiting": int(count), "failed": int(failed), "oldest_waiting": stamp(oldest)}


def _mailbox(box: MailboxConfig, health: Health | None, lease: MailboxLease | None,
             now: datetime) -> dict[str, Any]:
    """One mailbox: drained recently (here, or by the process holding its lease)?"""
    state = health.mailboxes.get(box.name) if health else None
    gap = allowed_gap(box)
    renewed = aware(lease.renewed_at) if lease else None
    if state is not None:  # drained by this process
        since = state.last_good_poll or (health.started if health else now)
        ok = now - since <= gap
    else:  # another process should hold it and renew its lease each pass
        ok = renewed is not None and now - renewed <= gap
        if not ok and health is not None and now - health.started <= gap:
            ok = True  # just started: give the holder time to show up
    return {"name": box.name, "ok": ok,
            "last_good_poll": stamp(state.last_good_poll) if state else None,
            "outage": state.outage if state else None,
            "lease_holder": lease.holder if lease else None,
            "lease_renewed_at": stamp(renewed)}
