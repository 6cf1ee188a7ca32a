"""The mailer's loop: send while mail is due, then sleep until mail is queued or a retry is due.

``run`` wakes on the outbox bell (mail queued in this process), at the next retry, or every
``flush_seconds`` (mail queued by another process). On stop it ends after the mails in flight,
recorded; claimed mails not yet tried are released for the next start. ``drain`` is the
run-once form: pass after pass until nothing is due (``run --once``, ``outbox flush``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.auth.signin import SignIns
from gateway.config import Config
from gateway.metrics import OUTBOX
from gateway.outbound import bell
from gateway.outbound.backlog import BacklogWatch, OutboxBacklog, outbox_backlog
from gateway.outbound.flush import FlushResult, flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import MailSender, SmtpSender

log = logging.getLogger("gateway.mailer")

IDLE_FLOOR_SECONDS = 1.0  # due mail another process holds: look again after this, not at once
WATCH_SECONDS = 5.0  # how often the backlog is looked at while sending


class OutboxWorker:
    """Sends the outbox as it fills, over parallel connections, in each recipient's order."""

    def __init__(self, engine: Engine, config: Config,
                 sender: Callable[[], MailSender] | None = None,
                 signins: SignIns | None = None) -> None:
        if sender is None:
            smtp = config.smtp
            if smtp is None:
                raise ValueError("no [smtp] configured and no sender given")
            signin = (signins or SignIns(engine, config)).for_smtp(smtp)  # one token cache
            sender = lambda: SmtpSender(smtp, signin)  # noqa: E731
        self.engine, self.config, self.sender = engine, config, sender
        self.renderer = Renderer(config.templates_folder)
        self.watch = BacklogWatch()
        self._watched = 0.0
        self._outage: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until stop: send what is due, sleep until woken; a fault is logged, never fatal."""
        wake = bell.listen()
        try:
            while not stop.is_set():
                wake.clear()  # mail queued during the pass rings again
                try:
                    result = await self.flush(stop)
                except Exception as exc:  # database or SMTP trouble: try again later
                    self._failed(exc)
                    await _sleep(wake, stop, self.config.outbound.flush_seconds)
                    continue
                if not result.more:
                    await _sleep(wake, stop, self._pause(result))
        finally:
            bell.forget(wake)

    def _pause(self, result: FlushResult) -> float:
        """Until the next retry falls due, at most flush_seconds (all of it: the server is away)."""
        pause = self.config.outbound.flush_seconds
        if result.next_due is not None and not result.connection_lost:
            pause = min(pause, (result.next_due - datetime.now(UTC)).total_seconds())
        return max(pause, 0.0 if result.claimed else IDLE_FLOOR_SECONDS)

    async def flush(self, stop: asyncio.Event | None = None) -> FlushResult:
        """One pass (bounded): send what is due, count it, log it."""
        result = await flush_outbox_once(self.engine, self.config, self.sender, self.renderer,
                                         stop=stop)
        for outcome, count in (("sent", result.sent), ("retried", result.retried),
                               ("failed", result.failed)):
            OUTBOX.labels(outcome).inc(count)
        if result.sent or result.retried or result.failed:
            log.info("outbox: %d sent, %d to retry, %d failed", result.sent, result.retried,
                     result.failed)
        if self._outage is not None:
            log.warning("outbox recovered after: %s", self._outage)
            self._outage = None
        await self._look(result)
        return result

    async def drain(self, stop: asyncio.Event | None = None) -> FlushResult:
        """Pass after pass until nothing is due (retries fall due later): the run-once form."""
        total = FlushResult()
        while stop is None or not stop.is_set():
            result = await self.flush(stop)
            total.add(result)
            if result.claimed == result.released or result.connection_lost:
                break  # nothing (more) to send now, or the server is away: retries wait
        return total

    async def _look(self, result: FlushResult) -> None:
        """Log a growing backlog now and then (and once when it is caught up)."""
        if not result.more and time.monotonic() - self._watched < WATCH_SECONDS:
            return
        self._watched = time.monotonic()
        backlog = await asyncio.to_thread(self.backlog)
        said = self.watch.observe(backlog)
        if said is not None:
            log.log(said[0], "%s", said[1])

    def backlog(self) -> OutboxBacklog:
        """The outbox now (a blocking read: call it in a thread from async code)."""
        with Session(self.engine) as session:
            return outbox_backlog(session, datetime.now(UTC))

    def _failed(self, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if self._outage is None:
            log.error("outbox pass failed, trying again every %.0f s: %s",
                      self.config.outbound.flush_seconds, reason)
        self._outage = reason


async def _sleep(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Sleep until woken by the bell or stop, or for seconds."""
    if seconds <= 0:
        return
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED),
                                   seconds)
    finally:
        for waiter in waiters:
            waiter.cancel()
