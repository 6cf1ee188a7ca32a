"""Parallel sending: one lane per SMTP connection, each recipient's mail in one lane, in order.

A batch of claimed mails is split by recipient (``split``): every mail to one address goes
down the same lane in queue order, so a reply never overtakes the acknowledgement before it.
Each ``Lane`` keeps its connection for the whole pass (a new one after ``batch_size`` mails)
and stops taking mail once the stop event is set: the mail in flight finishes and is
recorded, the rest is released. The ``Recorder`` writes outcomes as they arrive, the ones
that came in meanwhile together in one transaction, while the lanes go on sending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import PermanentSendError, TemporarySendError
from gateway.outbound.smtp import MailSender, Outgoing

log = logging.getLogger("gateway.mailer")

Outcome = tuple[str, str]  # (sent | failed | retry | release, detail)
SENT: Outcome = ("sent", "")
RELEASE: Outcome = ("release", "")
RECORD_TRIES = 8  # a store outage while recording: about a minute of tries before giving up


@dataclass(frozen=True)
class Prepared:
    """One claimed mail, rendered, with the address its order is kept for."""

    row_id: int
    address: str
    mail: Outgoing


def split(mails: list[Prepared], lanes: int) -> list[list[Prepared]]:
    """Mails in lanes: one address's mails all in one lane, in order; lanes about even.

    >>> from email.message import EmailMessage
    >>> def p(i, a): return Prepared(i, a, Outgoing("us@example.com", [a], b"", EmailMessage()))
    >>> [[m.row_id for m in lane] for lane in split([p(1, "a"), p(2, "b"), p(3, "a"), p(4, "c")], 2)]
    [[1, 3], [2, 4]]
    """
    groups: dict[str, list[Prepared]] = {}
    for mail in mails:
        groups.setdefault(mail.address.lower(), []).append(mail)
    buckets: list[list[Prepared]] = [[] for _ in range(max(1, min(lanes, len(groups))))]
    for group in sorted(groups.values(), key=len, reverse=True):
        min(buckets, key=len).extend(group)
    for bucket in buckets:
        bucket.sort(key=lambda m: m.row_id)
    return [bucket for bucket in buckets if bucket]


class Recorder:
    """Writes outcomes soon after each send; a write in progress collects the next ones."""

    def __init__(self, write: Callable[[dict[int, Outcome]], None]) -> None:
        self.write = write
        self.waiting: dict[int, Outcome] = {}
        self.task: asyncio.Future[None] | None = None

    def add(self, row_id: int, outcome: Outcome) -> None:
        """Queue one outcome for writing."""
        self.waiting[row_id] = outcome
        if self.task is None:
            self.task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, {}
                await self._write(batch)
        finally:
            self.task = None

    async def _write(self, batch: dict[int, Outcome]) -> None:
        """Write, retrying a store outage: an unrecorded sent mail would be sent again."""
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await asyncio.to_thread(self.write, batch)
                return
            except Exception as exc:
                if attempt == RECORD_TRIES:
                    raise
                log.warning("outbox: recording %d outcome(s) failed, trying again: %s",
                            len(batch), exc)
                await asyncio.sleep(min(0.25 * 2 ** attempt, 15.0))

    async def written(self) -> None:
        """Return once every outcome so far is written, even while the pass is being cancelled."""
        while self.task is not None or self.waiting:
            if self.task is None:
                self.task = asyncio.ensure_future(self._drain())
            await asyncio.shield(self.task)


class Lane:
    """One SMTP connection of a pass and the mails it sends in order."""

    def __init__(self, sender: Callable[[], MailSender], per_connection: int) -> None:
        self.sender, self.per_connection = sender, per_connection
        self.connection: MailSender | None = None
        self.used = 0
        self.lost = ""  # why the server went away (then the pass ends after this batch)

    async def send_all(self, mails: list[Prepared], recorder: Recorder,
                       stop: asyncio.Event | None) -> None:
        """Send in order; an address with a mail to retry gets nothing more this pass."""
        held: set[str] = set()
        for index, item in enumerate(mails):
            if stop is not None and stop.is_set():
                for rest in mails[index:]:
                    recorder.add(rest.row_id, RELEASE)
                return
            if self.lost:
                recorder.add(item.row_id, ("retry", f"not attempted: {self.lost}"))
                continue
            if item.address.lower() in held:
                recorder.add(item.row_id, RELEASE)  # waits behind the earlier mail's retry
                continue
            outcome = await self._send(item.mail)
            recorder.add(item.row_id, outcome)
            if outcome[0] == "retry":
                held.add(item.address.lower())

    async def _send(self, mail: Outgoing) -> Outcome:
        """One mail over this lane's connection (opened or renewed as needed)."""
        try:
            connection = await self._connection()
            await connection.send(mail)
            self.used += 1
            return SENT
        except PermanentSendError as exc:
            return ("failed", str(exc))
        except TemporarySendError as exc:
            if exc.connection_lost:
                self.lost = str(exc) or "connection lost"
                await self.close()
            return ("retry", str(exc))
        except Exception as exc:  # never resend a mail over an error we do not know
            await self.close()
            return ("failed", f"{type(exc).__name__}: {exc}")

    async def _connection(self) -> MailSender:
        if self.connection is not None and self.used >= self.per_connection:
            await self.close()
        if self.connection is None:
            fresh = self.sender()
            await fresh.__aenter__()
            self.connection, self.used = fresh, 0
        return self.connection

    async def close(self) -> None:
        """Say goodbye to the server (a broken connection is just dropped)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.__aexit__(None, None, None)
