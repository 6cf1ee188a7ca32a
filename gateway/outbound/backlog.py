"""How far behind the mailer is: rows due now, the oldest of them, retries, failures.

``outbox_backlog`` is one look at the outbox (``outbox list``, /metrics, the mailer's log);
``BacklogWatch`` decides when a growing backlog is worth a log line: when the oldest due mail
has waited past a threshold, each one twice the last, and once when it is caught up again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from store.models import OutboxMail

WARN_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class OutboxBacklog:
    """The outbox at one moment."""

    due: int  # pending and due now, or claimed by a sender that died
    oldest_due_seconds: float  # how long the longest-waiting due mail has been due (0: none)
    retrying: int  # pending, due later (a retry after a temporary failure)
    sending: int  # claimed by a sender right now
    failed: int

    def summary(self) -> str:
        """One line for people."""
        return (f"outbox: {self.due} due (oldest due {self.oldest_due_seconds:.0f} s ago), "
                f"{self.retrying} waiting to retry, {self.sending} being sent, {self.failed} failed")


def outbox_backlog(session: Session, now: datetime) -> OutboxBacklog:
    """Count the outbox by state (the status index keeps this cheap however much was sent)."""
    is_due = col(OutboxMail.next_attempt_at) <= now  # one expression, grouped by as selected
    rows = session.exec(
        select(OutboxMail.status, is_due, func.count(), func.min(OutboxMail.next_attempt_at))
        .where(col(OutboxMail.status).in_(("pending", "sending", "failed")))
        .group_by(col(OutboxMail.status), is_due)).all()
    counts: dict[tuple[str, bool], int] = {}
    oldest: datetime | None = None
    for status, due_now, count, earliest in rows:
        counts[(status, bool(due_now))] = int(count)
        if status == "pending" and due_now and earliest is not None:
            oldest = earliest
    age = (now - _aware(oldest, now)).total_seconds() if oldest is not None else 0.0
    return OutboxBacklog(
        due=counts.get(("pending", True), 0), oldest_due_seconds=max(age, 0.0),
        retrying=counts.get(("pending", False), 0),
        sending=counts.get(("sending", True), 0) + counts.get(("sending", False), 0),
        failed=counts.get(("failed", True), 0) + counts.get(("failed", False), 0))


def _aware(moment: datetime, like: datetime) -> datetime:
    """SQLite hands times back without their zone: they are UTC, like the clock's."""
    return moment if moment.tzinfo else moment.replace(tzinfo=like.tzinfo)


@dataclass
class BacklogWatch:
    """Says when the backlog deserves a log line (not on every pass).

    >>> watch = BacklogWatch()
    >>> [watch.observe(OutboxBacklog(n, age, 0, 0, 0)) is not None
    ...  for n, age in [(5, 3), (400, 70), (500, 90), (900, 150), (0, 0), (0, 0)]]
    [False, True, False, True, True, False]
    """

    threshold: float = WARN_AFTER_SECONDS
    warned_at: float = 0.0  # the age last warned about; 0: caught up

    def observe(self, backlog: OutboxBacklog) -> tuple[int, str] | None:
        """(log level, line): a warning past each threshold, a note once caught up."""
        age = backlog.oldest_due_seconds
        if backlog.due == 0 or age < self.threshold:
            if self.warned_at:
                self.warned_at = 0.0
                return logging.INFO, f"outbox caught up: {backlog.due} due"
            return None
        if age < max(self.threshold, 2 * self.warned_at):
            return None
        self.warned_at = age
        return logging.WARNING, f"outbox falling behind: {backlog.due} due, the oldest for {age:.0f} s"
