"""The sending pass: claim due outbox rows, render them, send them, record every outcome.

``flush_outbox_once`` claims due rows in batches (``SKIP LOCKED`` on PostgreSQL), renders
them and sends each batch over up to ``[outbound] connections`` SMTP connections at once
(``gateway.outbound.lanes``), recording each outcome as it comes: sent, retry later
(backoff), failed, or released untried at shutdown. It goes on while mail is due, up to
``PASS_BATCHES`` batches, and stops early (after the mails in flight) when told to stop.
A mail is claimed only when no earlier mail to the same address is still waiting for a retry
or in flight elsewhere: one recipient's mails go out in the order they were queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, exists, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, select

from gateway.config import Config
from gateway.outbound.compose import compose
from gateway.outbound.events import message_sent
from gateway.outbound.files import files_for
from gateway.outbound.lanes import RELEASE, Lane, Outcome, Prepared, Recorder, split
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import MailSender, outgoing
from gateway.retry import backoff
from store.db import transaction
from store.models import Message, OutboxMail, Ticket

log = logging.getLogger("gateway.mailer")

CLAIM_SECONDS = 600
T = TypeVar("T", Message, Ticket)
PASS_BATCHES = 40  # then the pass ends and the worker starts the next one at once
UNFINISHED = ("pending", "sending")


@dataclass
class FlushResult:
    """What one pass over the outbox did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # claimed but left untried (shutdown, or behind a retry): due again
    claimed: int = 0
    more: bool = False  # the pass ended at its bound, not because nothing was due
    connection_lost: bool = False  # the server went away: what is left waits for its retry
    next_due: datetime | None = None

    def add(self, other: FlushResult) -> None:
        """Totals over several passes (the last pass says what is due next)."""
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.released += other.released
        self.claimed += other.claimed
        self.more, self.next_due = other.more, other.next_due
        self.connection_lost = other.connection_lost


def aware(moment: datetime) -> datetime:
    """Times read back from SQLite lack their zone: they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def retry_delay(config: Config, attempts: int) -> timedelta:
    """Delay before the next try: doubling from retry_base_seconds, at most an hour."""
    return timedelta(seconds=backoff(attempts, config.outbound.retry_base_seconds, 3600.0))


def _due(table: type[OutboxMail], now: datetime) -> ColumnElement[bool]:
    """Pending and due, or claimed by a sender whose claim ran out (it died mid-send)."""
    return or_(
        and_(col(table.status) == "pending", col(table.next_attempt_at) <= now),
        and_(col(table.status) == "sending", col(table.claimed_until) < now),
    )


def _waits(now: datetime) -> ColumnElement[bool]:
    """An earlier row to the same address is unfinished and not due: this one waits its turn."""
    earlier = aliased(OutboxMail)
    return exists().where(
        col(earlier.status).in_(UNFINISHED),
        col(earlier.primary_address) == col(OutboxMail.primary_address),
        col(earlier.id) < col(OutboxMail.id), ~_due(earlier, now))


def claim(engine: Engine, config: Config, now: datetime) -> list[int]:
    """Take due rows (and rows whose sender died mid-send) for this process, in queue order.

    A row waits while an earlier row to the same address is unfinished and not ours: due
    later (a retry), in flight in another process, or locked by another claim right now.
    """
    with transaction(engine) as session:
        query = (select(OutboxMail).where(_due(OutboxMail, now), ~_waits(now))
                 .order_by(col(OutboxMail.id)).limit(config.outbound.batch_size))
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=OutboxMail)
        rows = _in_turn(session, list(session.exec(query).all()))
        # Held long enough for a whole batch to time out mail by mail on one connection.
        hold = max(CLAIM_SECONDS, config.outbound.batch_size * _timeout(config) + 60)
        for row in rows:
            row.status = "sending"
            row.claimed_until = now + timedelta(seconds=hold)
        return [row.id for row in rows if row.id is not None]


def _in_turn(session: Session, rows: list[OutboxMail]) -> list[OutboxMail]:
    """The rows no earlier unfinished row outside this claim precedes (another claim's locks)."""
    if not rows:
        return rows
    ours = {row.id for row in rows}
    earlier = session.exec(
        select(OutboxMail.id, OutboxMail.primary_address).where(
            col(OutboxMail.status).in_(UNFINISHED),
            col(OutboxMail.primary_address).in_({row.primary_address for row in rows}),
            col(OutboxMail.id) < max(row.id or 0 for row in rows))).all()
    first_other: dict[str, int] = {}
    for row_id, address in earlier:
        if row_id not in ours and row_id is not None:
            first_other[address] = min(first_other.get(address, row_id), row_id)
    return [row for row in rows
            if (row.id or 0) < first_other.get(row.primary_address, (row.id or 0) + 1)]


def _timeout(config: Config) -> float:
    return config.smtp.timeout_seconds if config.smtp else 30.0


def prepare(engine: Engine, config: Config, renderer: Renderer, ids: list[int],
            now: datetime, result: FlushResult) -> list[Prepared]:
    """Render the claimed rows ready for the wire; a template that fails is recorded as failed.

    Four reads for the whole batch (and one per file), one write of what each mail said (its Message row).
    """
    failed_renders: dict[int, Outcome] = {}
    prepared: list[Prepared] = []
    said: list[dict[str, object]] = []
    with transaction(engine) as session, session.no_autoflush:
        rows = session.exec(select(OutboxMail).where(col(OutboxMail.id).in_(ids))
                            .order_by(col(OutboxMail.id))).all()
        messages = _by_id(session, Message, {row.message_row for row in rows})
        tickets = _by_id(session, Ticket, {row.ticket_id for row in rows})
        files = files_for(session, messages)
        for row in rows:
            assert row.id is not None and row.message_row is not None
            message, ticket = messages[row.message_row], tickets[row.ticket_id]
            try:
                composed = compose(row, message, ticket, renderer, files.get(row.message_row, ()))
                prepared.append(Prepared(row.id, row.primary_address, outgoing(
                    composed.mail, composed.sender, composed.recipients)))
            except Exception as exc:  # a broken (admin) template: record it, never crash
                failed_renders[row.id] = ("failed", f"render failed: {type(exc).__name__}: {exc}")
                continue
            said.append({"id": message.id, "subject": composed.subject, "text": composed.text,
                         "html": composed.html})
        if said:
            session.execute(update(Message), said)
    record(engine, config, failed_renders, now, result)
    return prepared


def _by_id(session: Session, table: type[T], ids: set[int | None]) -> dict[int, T]:
    """Rows of a table by primary key, in one query."""
    rows = session.exec(select(table).where(col(table.id).in_(ids))).all()
    return {row.id: row for row in rows if row.id is not None}


class _Batches:
    """Claims and prepares the next batch (in worker threads) while the lanes send this one."""

    def __init__(self, engine: Engine, config: Config, renderer: Renderer,
                 now: datetime | None, result: FlushResult) -> None:
        self.engine, self.config, self.renderer = engine, config, renderer
        self.now, self.result = now, result
        self.next: asyncio.Future[list[Prepared] | None] | None = None

    async def _fetch(self) -> list[Prepared] | None:
        moment = self.now or _utcnow()
        ids = await asyncio.to_thread(claim, self.engine, self.config, moment)
        if not ids:
            return None
        self.result.claimed += len(ids)
        return await asyncio.to_thread(prepare, self.engine, self.config, self.renderer, ids,
                                       moment, self.result)

    def ahead(self) -> None:
        """Start on the next batch."""
        self.next = asyncio.ensure_future(self._fetch())

    async def take(self) -> list[Prepared] | None:
        """The next batch (None: nothing was due)."""
        upcoming, self.next = self.next, None
        return await upcoming if upcoming is not None else None

    async def settle(self, recorder: Recorder, outcome: Outcome) -> None:
        """A batch claimed ahead but not sent: give each mail this outcome."""
        for mail in await self.take() or []:
            recorder.add(mail.row_id, outcome)


async def flush_outbox_once(engine: Engine, config: Config, sender: Callable[[], MailSender],
                            renderer: Renderer, now: datetime | None = None,
                            stop: asyncio.Event | None = None) -> FlushResult:
    """Send what is due, batch after batch over parallel connections; return what happened.

    Ends when nothing is due, at a lost connection (the server is down: retry later), after
    PASS_BATCHES batches (``more``), or once stop is set: the mails in flight finish and are
    recorded, the rest of the claimed ones are released at once.
    """
    result = FlushResult()
    lanes = [Lane(sender, config.outbound.batch_size) for _ in range(config.outbound.connections)]
    recorder = Recorder(lambda outcomes: record(engine, config, outcomes, now or _utcnow(), result))
    batches = _Batches(engine, config, renderer, now, result)
    batches.ahead()
    try:
        for number in range(1, PASS_BATCHES + 1):
            prepared = await batches.take()
            if prepared is None and number > 1:  # claimed while mail to the same people was in flight
                await recorder.written()
                batches.ahead()
                prepared = await batches.take()
            if prepared is None:
                break
            if (stop is not None and stop.is_set()) or any(lane.lost for lane in lanes):
                batches.next = asyncio.ensure_future(_ready(prepared))
                break
            if number < PASS_BATCHES:
                batches.ahead()
            await asyncio.gather(*(lane.send_all(mails, recorder, stop) for lane, mails
                                   in zip(lanes, split(prepared, len(lanes)), strict=False)))
        else:
            result.more = True
    finally:
        lost = next((lane.lost for lane in lanes if lane.lost), "")
        await batches.settle(recorder, ("retry", f"not attempted: {lost}") if lost else RELEASE)
        await recorder.written()
        await asyncio.gather(*(lane.close() for lane in lanes), return_exceptions=True)
    result.connection_lost = bool(lost)
    result.next_due = await asyncio.to_thread(next_due, engine, now)
    return result


async def _ready(prepared: list[Prepared]) -> list[Prepared] | None:
    return prepared


def _utcnow() -> datetime:
    return datetime.now(UTC)


def record(engine: Engine, config: Config, outcomes: dict[int, Outcome],
           now: datetime, result: FlushResult) -> None:
    """Write outcomes in one transaction: sent, retry with backoff, failed, or released."""
    if not outcomes:
        return
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMail).where(col(OutboxMail.id).in_(list(outcomes)))).all()
        for row in rows:
            assert row.id is not None
            _apply(session, config, row, outcomes[row.id], now, result)


def _apply(session: Session, config: Config, row: OutboxMail, outcome: Outcome,
           now: datetime, result: FlushResult) -> None:
    state, detail = outcome
    row.claimed_until = None
    if state == "release":  # never tried: due again as it was, no attempt counted
        row.status = "pending"
        result.released += 1
        return
    row.attempts += 1
    if state == "sent":
        row.status, row.sent_at, row.last_error = "sent", now, ""
        result.sent += 1
        message_sent(session, config, row.message_row, now)  # webhook, same transaction
        return
    row.last_error = detail[:2000]
    if state == "retry" and row.attempts < config.outbound.retry_max_attempts:
        row.status = "pending"
        row.next_attempt_at = now + retry_delay(config, row.attempts)
        result.retried += 1
        log.warning("outbox %s %s: retry in %s: %s", row.id, row.template,
                    retry_delay(config, row.attempts), detail)
    else:
        row.status = "failed"
        result.failed += 1
        log.error("outbox %s %s failed for good: %s", row.id, row.template, detail)


def next_due(engine: Engine, now: datetime | None = None) -> datetime | None:
    """When the earliest pending mail that is not waiting behind another is due."""
    now = now or _utcnow()
    with Session(engine) as session:
        due = session.exec(
            select(func.min(OutboxMail.next_attempt_at))
            .where(OutboxMail.status == "pending", ~_waits(now))
        ).one()
    return aware(due) if due is not None else None
