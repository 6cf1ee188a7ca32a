"""The timer loop of the service: fire what is due, sleep until the next due time or a pass."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from gateway.config import Config
from gateway.errors import TemporaryError
from gateway.rules.loader import RuleBook
from gateway.timers.fire import TimerCounts, fire_due_timers_once, sync_open_tickets

log = logging.getLogger("gateway.timers")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock (tests pass their own)."""
    return datetime.now(UTC)


class TimerWorker:
    """Schedules fire_due_timers_once; every decision lives in the run-once form."""

    def __init__(self, engine: Engine, config: Config, rules: RuleBook,
                 clock: Clock = utc_now) -> None:
        self.engine, self.config, self.rules, self.clock = engine, config, rules, clock
        self.outage: str | None = None

    async def pass_once(self) -> TimerCounts:
        """One pass now (the rules in force, the clock's time)."""
        counts = await asyncio.to_thread(fire_due_timers_once, self.engine, self.config,
                                         self.clock(), rules=self.rules.current())
        if counts.total or counts.failed:
            log.info("timers: %s fired, %d failed",
                     ", ".join(f"{n} {k}" for k, n in sorted(counts.fired.items())) or "none",
                     counts.failed)
        return counts

    async def run(self, stop: asyncio.Event) -> None:
        """Until stop: align open tickets with the config once, then fire as timers fall due."""
        interval = self.config.timers.interval_seconds
        started = False
        while not stop.is_set():
            wait = interval
            try:
                if not started:
                    await asyncio.to_thread(sync_open_tickets, self.engine, self.config, self.clock())
                    started = True
                counts = await self.pass_once()
                if counts.next_due is not None:
                    wait = min(interval, max(0.0, (counts.next_due - self.clock()).total_seconds()))
                if self.outage is not None:
                    log.warning("timers recovered after: %s", self.outage)
                    self.outage = None
            except TemporaryError as exc:
                if self.outage is None:
                    log.warning("timers paused, database unavailable: %s", exc)
                self.outage = str(exc)
            except Exception:  # a bug must not stop the timers for good: log it, try again
                log.exception("timer pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(wait, 0.05))
