"""Timed work on APScheduler: the outbox flush, and retries at the time they fall due."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from gateway.auth.signin import SignIns
from gateway.config import Config
from gateway.metrics import OUTBOX
from gateway.outbound.flush import FlushResult, flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import MailSender, SmtpSender

log = logging.getLogger("gateway.scheduler")


class OutboxWorker:
    """Flushes the outbox now and then, and exactly when the next retry is due."""

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
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._lock = asyncio.Lock()

    def start(self) -> None:
        """Begin the periodic flush (the service's event loop must be running)."""
        self.scheduler.add_job(self.flush, "interval", seconds=self.config.outbound.flush_seconds,
                               id="outbox-flush", max_instances=1, coalesce=True,
                               next_run_time=datetime.now(UTC))
        self.scheduler.start()

    def stop(self) -> None:
        """Stop scheduling; a flush in progress finishes."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def flush(self) -> FlushResult:
        """One pass; schedules the next retry at its due time."""
        async with self._lock:
            result = await flush_outbox_once(self.engine, self.config, self.sender, self.renderer)
        for outcome, count in (("sent", result.sent), ("retried", result.retried),
                               ("failed", result.failed)):
            OUTBOX.labels(outcome).inc(count)
        if result.sent or result.retried or result.failed:
            log.info("outbox: %d sent, %d to retry, %d failed", result.sent, result.retried,
                     result.failed)
        if result.next_due is not None and self.scheduler.running:
            self.scheduler.add_job(self.flush, "date", run_date=max(result.next_due, datetime.now(UTC)),
                                   id="outbox-retry", replace_existing=True)
        return result
