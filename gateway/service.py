"""The service: one task per mailbox, the mailer, the webhook sender and the HTTP door; graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from gateway.auth.signin import SignIn, SignIns
from gateway.config import Config, MailboxConfig
from gateway.errors import SourceError, TemporaryError, TemporarySourceError, store_errors
from gateway.intake.imap import ImapMailbox, uid_set
from gateway.intake.parsepool import ParsePool
from gateway.metrics import IMAP_RECONNECTS
from gateway.outbound.worker import OutboxWorker
from gateway.pipeline import Disposition, RawMail, process
from gateway.record import close_packed, pack_ahead
from gateway.retry import backoff
from gateway.rules.loader import RuleBook, vocabulary
from gateway.rules.model import Rule
from gateway.timers.retention import RetentionWorker
from gateway.timers.worker import TimerWorker, utc_now
from gateway.views.visibility import apply_config_organisations
from gateway.web.app import create_app
from gateway.web.health import Health
from gateway.web.portal.mailer import LinkMailer
from gateway.web.server import HttpServer
from gateway.web.webhooks import WebhookWorker
from store.db import transaction
from store.lease import Lease
from store.queries import copy_marks, last_uid, note_copy, processed_uids

log = logging.getLogger("gateway.service")

BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
ONCE_ATTEMPTS = 4  # run --once gives a mailbox this many retries before it reports failure
ONCE_CONNECT_ATTEMPTS = 1  # ... but only this many when the server was never reached


@dataclass
class PollResult:
    """What one pass over a mailbox did."""

    fetched: int = 0
    settled_again: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    error: str = ""  # run --once: why this mailbox gave up (the others still ran)
    mails: list[tuple[str, Disposition]] = field(default_factory=list)  # "box:UID", what became of it


async def poll_once(box: ImapMailbox, engine: Engine, config: Config,
                    rules: RuleBook | None = None, parser: ParsePool | None = None,
                    stop: asyncio.Event | None = None) -> PollResult:
    """Process every mail waiting in the folder now; flag or move each only after it committed.

    Once stop is set, the pass ends after the batch in flight: shutdown waits for one batch,
    not for a whole backlog.
    """
    cfg = box.config
    result = PollResult()
    move_mode = bool(cfg.processed_folder)
    first: int | None = None
    if not move_mode:
        with transaction(engine) as session:
            first = last_uid(session, cfg.name, box.uidvalidity) + 1
    uids = await box.search(first)
    if parser is not None:
        parser.warm_up(len(uids))
    for start in range(0, len(uids), cfg.batch_size):
        if stop is not None and stop.is_set():
            break
        batch = uids[start:start + cfg.batch_size]
        with transaction(engine) as session:
            done = processed_uids(session, cfg.name, box.uidvalidity, batch)
        if done and move_mode:  # committed earlier, not yet moved (crash or lost connection)
            failed_before = sorted(u for u, outcome in done.items() if outcome == "quarantined")
            await _file(box, engine, sorted(set(done) - set(failed_before)), cfg.processed_folder,
                        refile=True)
            await _file(box, engine, failed_before, cfg.failed_folder or cfg.processed_folder,
                        refile=True)
            result.settled_again += len(done)
        todo = [u for u in batch if u not in done]
        if not todo:
            continue
        in_force = rules.current() if rules is not None else []
        fetched = await box.fetch(todo)
        if fetched:  # which process fetched which mail: the record two services are judged by
            log.info("%s fetched %d mail(s): UIDs %s", cfg.name, len(fetched),
                     uid_set([uid for uid, _ in fetched]))
        ok, failed = await _store_batch(box, engine, config, fetched, in_force, parser, result)
        await _file(box, engine, ok, cfg.processed_folder)
        await _file(box, engine, failed, cfg.failed_folder or cfg.processed_folder)
    return result


async def _store_batch(box: ImapMailbox, engine: Engine, config: Config,
                       fetched: list[tuple[int, bytes]], rules: Sequence[Rule],
                       parser: ParsePool | None, result: PollResult) -> tuple[list[int], list[int]]:
    """Run a fetched batch through the pipeline in order; the UIDs stored and quarantined."""
    cfg = box.config
    ok: list[int] = []
    failed: list[int] = []
    ahead = parser.parse_ahead([data for _, data in fetched]) if parser else [None] * len(fetched)
    # Large mails left to the pipeline: their originals are packed meanwhile, in a thread.
    packings = [pack_ahead(engine, data) if parsing is None else None
                for (_, data), parsing in zip(fetched, ahead, strict=True)]
    try:
        for (uid, data), parsing, packing in zip(fetched, ahead, packings, strict=True):
            raw = RawMail(data, cfg.name, box.uidvalidity, uid, cfg.channel, cfg.source)
            parsed = await parser.result(parsing) if parser else None
            disposition: Disposition = await asyncio.to_thread(functools.partial(
                process, engine, config, raw, rules=rules, parsed=parsed, packing=packing))
            result.fetched += 1
            result.mails.append((f"{cfg.name}:{uid}", disposition))
            result.outcomes[disposition.outcome] = result.outcomes.get(disposition.outcome, 0) + 1
            (failed if disposition.outcome == "quarantined" else ok).append(uid)
    finally:
        for packing in filter(None, packings):  # those never used too (an outage)
            packing.add_done_callback(close_packed)
    return ok, failed


async def _file(box: ImapMailbox, engine: Engine, uids: list[int], folder: str | None,
                refile: bool = False) -> None:
    """Settle committed mails; without MOVE, never COPY a mail twice across a crash.

    The target's UIDNEXT is noted in the ledger before each COPY; a mail filed again whose
    earlier COPY may have happened is looked for in the target from that UID on first.
    """
    if not uids or not folder or box.moves:
        await box.settle(uids, folder)
        return
    name, validity = box.config.name, box.uidvalidity
    copied: set[int] = set()
    if refile:
        with transaction(engine) as session:
            marks = copy_marks(session, name, validity, uids)
        if marks:
            copied = await box.already_copied(sorted(marks), folder, min(marks.values()))
        if copied:
            log.info("%s: %d mail(s) were copied to %s before a crash: not copying them again",
                     name, len(copied), folder)
    to_copy = [uid for uid in uids if uid not in copied]
    if to_copy:
        uidnext = await box.uidnext(folder)
        with transaction(engine) as session:
            note_copy(session, name, validity, to_copy, uidnext)
    await box.settle(uids, folder, copied)


class MailboxWorker:
    """Keeps one mailbox connected and drained; reconnects with backoff on any fault."""

    def __init__(self, cfg: MailboxConfig, engine: Engine, config: Config,
                 stop: asyncio.Event, rules: RuleBook, parser: ParsePool | None = None,
                 health: Health | None = None, signin: SignIn | None = None) -> None:
        self.cfg, self.engine, self.config, self.stop = cfg, engine, config, stop
        self.rules, self.parser = rules, parser
        self.health = health or Health()
        self.signin = signin if signin is not None else SignIns(engine, config).for_mailbox(cfg)
        self.uidvalidity: int | None = None
        self.outage: str | None = None
        self.failures = 0  # in a row; sets the backoff
        self.connects = 0
        self.reached = False  # this attempt got as far as a selected folder

    async def run(self, once: bool = False) -> PollResult:
        """Drain the mailbox (once: then return); otherwise wait for mail and repeat."""
        lease = Lease(self.engine, self.cfg.name, stale_after=max(120.0, 3 * self.cfg.poll_seconds))
        try:
            return await self._run(lease, once)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(lease.release)

    async def _run(self, lease: Lease, once: bool) -> PollResult:
        total = PollResult()
        while not self.stop.is_set():
            box = ImapMailbox(self.cfg, self.signin)
            self.reached = False
            try:
                with store_errors((DBAPIError,)):  # the database, outside a mail's transaction
                    if not await self._drain(box, lease, once, total):
                        return total
                continue
            except (TemporaryError, OSError) as exc:
                reason = str(exc)
            except SourceError as exc:  # refused (password, folder): retrying the same won't do
                if once:
                    raise
                reason = str(exc)
            finally:
                await box.close()
            self.failures += 1
            # run --once: a server never reached gets one more try, a dropped connection more
            allowed = ONCE_ATTEMPTS if self.reached else ONCE_CONNECT_ATTEMPTS
            if once and self.failures > allowed:
                self.outage = reason
                raise TemporarySourceError(
                    f"{self.cfg.name}: gave up after {self.failures} attempts: {reason}")
            delay = backoff(self.failures, BACKOFF_START, BACKOFF_MAX)
            self._outage(reason, delay)
            await self._pause(delay)
        return total

    async def _drain(self, box: ImapMailbox, lease: Lease, once: bool, total: PollResult) -> bool:
        """Connect and drain until stopped; False when the worker is done (once, or not ours)."""
        if not await asyncio.to_thread(lease.hold):
            log.info("%s is held by another process", self.cfg.name)
            if once:
                return False
            await self._pause(self.cfg.poll_seconds)
            return True
        await box.connect()
        self.reached = True
        self.connects += 1
        if self.connects > 1:
            IMAP_RECONNECTS.labels(self.cfg.name).inc()
        self._recovered()
        if self.uidvalidity not in (None, box.uidvalidity):
            log.warning("%s UIDVALIDITY changed %s -> %s: every mail looks new; "
                        "Message-ID dedupe keeps them from doubling", self.cfg.name,
                        self.uidvalidity, box.uidvalidity)
        self.uidvalidity = box.uidvalidity
        while not self.stop.is_set() and await asyncio.to_thread(lease.hold):
            result = await poll_once(box, self.engine, self.config, self.rules, self.parser,
                                     self.stop)
            _add(total, result, keep_mails=once)  # the service keeps counts only
            self.health.polled(self.cfg.name)
            self.failures = 0
            if once:
                return False
            left = _seconds_until(box.renew_at)
            if left is not None and left <= 0:
                log.info("%s access token due for renewal: signing in again", self.cfg.name)
                return True  # a clean reconnect between passes: nothing in flight
            if result.fetched:
                continue  # mail that came in meanwhile: its IDLE notice may be lost
            wait = self.cfg.poll_seconds if left is None else min(self.cfg.poll_seconds, left)
            await box.wait_for_mail(wait, self.stop)
        return True

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once on shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    def _outage(self, reason: str, delay: float) -> None:
        """One line per retry: the reason first (again when it changes), then when the next try is."""
        self.health.failed(self.cfg.name, reason)
        at = (datetime.now().astimezone() + timedelta(seconds=delay)).strftime("%H:%M:%S")
        when = f"next attempt at {at} (in {delay:.0f} s)"
        if self.outage != reason:
            log.warning("%s unavailable, retrying: %s; %s", self.cfg.name, reason, when)
        else:
            log.info("%s still unavailable (attempt %d failed); %s", self.cfg.name,
                     self.failures, when)
        self.outage = reason

    def _recovered(self) -> None:
        if self.outage is not None:
            log.warning("%s recovered after: %s", self.cfg.name, self.outage)
        self.outage = None


def _seconds_until(when: datetime | None) -> float | None:
    """Seconds from now until when (None stays None)."""
    return None if when is None else (when - datetime.now(UTC)).total_seconds()


def _add(total: PollResult, result: PollResult, keep_mails: bool) -> None:
    total.fetched += result.fetched
    if keep_mails:
        total.mails.extend(result.mails)
    total.settled_again += result.settled_again
    for key, value in result.outcomes.items():
        total.outcomes[key] = total.outcomes.get(key, 0) + value


async def run_service(engine: Engine, config: Config, once: bool = False) -> dict[str, PollResult]:
    """Run every mailbox, the mailer, webhooks and the HTTP door until SIGTERM/SIGINT (or one pass)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    book = RuleBook(config.rules_folder, vocabulary(config))
    book.current()  # load now: errors are logged at start, not with the first mail
    with store_errors(), transaction(engine) as session:
        apply_config_organisations(session, config.organisations)
    health = Health()
    parser = ParsePool(config.parse_workers, config.html_sanitizer, config.limits.max_message_bytes)
    signins = SignIns(engine, config)  # one token cache per grant, shared by IMAP and SMTP
    workers = [MailboxWorker(m, engine, config, stop, book, parser, health, signins.for_mailbox(m))
               for m in config.mailboxes]
    mailer = OutboxWorker(engine, config, signins=signins) if config.smtp is not None else None
    hooks = WebhookWorker(engine, config) if config.webhooks else None
    if mailer is None:
        log.warning("no [smtp] configured: outbound mail stays in the outbox")
    timers = TimerWorker(engine, config, book)
    jobs: list[Coroutine[Any, Any, object]] = [_mailbox(w, once) for w in workers]
    if not once:
        jobs.append(timers.run(stop))
    if not once and hooks is not None:
        jobs.append(hooks.run(stop))
    if not once and mailer is not None:
        jobs.append(mailer.run(stop))  # on SIGTERM: the mails in flight finish and are recorded
    if not once and config.retention.enabled:
        jobs.append(RetentionWorker(engine, config, utc_now).run(stop))
    if not once and config.http is not None:
        links = LinkMailer(engine, config, signins=signins) if config.portal is not None else None
        server = HttpServer(create_app(engine, config, health=health, rules=book, mailer=links),
                            config.http)
        jobs.append(server.serve(stop))
        log.info("HTTP API on http://%s/api/v1 (health /healthz, metrics /metrics)", config.http.listen)
        if config.portal is not None:
            log.info("customer portal on http://%s/portal, linked as %s", config.http.listen,
                     config.portal.url)
    log.info("ticketgate running: %d mailbox(es)%s", len(workers), " (once)" if once else "")
    try:
        results = await _all_or_stop(jobs, stop)
        if once:
            await timers.pass_once()
        if mailer is not None and once:
            await mailer.drain(stop)  # everything due, not one batch
        if hooks is not None and once:
            await hooks.flush()
    finally:
        parser.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return {w.cfg.name: r for w, r in zip(workers, results, strict=False)
            if isinstance(r, PollResult)}


async def _all_or_stop(jobs: list[Coroutine[Any, Any, object]], stop: asyncio.Event) -> list[object]:
    """Run the jobs to their end; when one fails, stop the others gracefully, then raise."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _mailbox(worker: MailboxWorker, once: bool) -> PollResult:
    """run --once: a mailbox that gives up reports why in its result; the others still drain."""
    try:
        return await worker.run(once)
    except (SourceError, TemporaryError) as exc:
        if not once:
            raise
        return PollResult(error=str(exc))
