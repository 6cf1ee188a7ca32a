"""Webhook delivery: claim due events from the webhook outbox, sign them, POST them, record each.

Rows are written by ``gateway.outbound.events`` in the transaction of the event itself, and
claimed here the way the mailer claims mail (``SKIP LOCKED`` on PostgreSQL, a claim that
expires if the sender dies, ``gateway.retry`` backoff). Each subscriber gets its events in
order: a later event waits while an earlier one is being retried. A receiver answers 2xx to
acknowledge; anything else, or no answer, is retried until ``retry_max_attempts``.

Signature (header ``Ticketgate-Signature: t=<unix seconds>,v1=<hex>``): HMAC-SHA256 with the
subscriber's secret over ``<t>.<raw body>``. The event id (``Ticketgate-Event-Id``, also the
body's ``id``) is the same on every retry, so a receiver drops repeats by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from gateway.config import Config, WebhookConfig
from gateway.errors import TemporaryError, store_errors
from gateway.metrics import WEBHOOKS
from gateway.outbound.flush import aware
from gateway.retry import backoff
from store.db import transaction
from store.models import WebhookDelivery

if TYPE_CHECKING:  # httpx (and the CLI it pulls in) is loaded where webhooks are sent
    import httpx

log = logging.getLogger("gateway.webhooks")

SIGNATURE = "Ticketgate-Signature"
CLAIM_SECONDS = 300
BATCH = 100


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at timestamp.

    >>> sign("s3cret", 1764400000, b'{"id":"evt_1"}')
    't=1764400000,v1=a10deecc03b676d7be7e51721ea8a2270798f0694603126ee33c4e63195be3f9'
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent (no replays)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    expected = sign(secret, int(parts["t"]), body).split("v1=", 1)[1]
    return abs(now - int(parts["t"])) <= tolerance and hmac.compare_digest(expected, parts["v1"])


@dataclass
class DeliveryResult:
    """What one pass did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    next_due: datetime | None = None


def claim(engine: Engine, now: datetime, limit: int = BATCH) -> list[int]:
    """Take due rows for this process, in order per subscriber (a waiting retry holds later ones)."""
    with transaction(engine) as session:
        query = (select(WebhookDelivery)
                 .where(col(WebhookDelivery.status).in_(("pending", "sending")))
                 .order_by(col(WebhookDelivery.id)).limit(limit * 4))
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        blocked: set[str] = set()
        taken: list[WebhookDelivery] = []
        for row in session.exec(query).all():
            due = (row.status == "pending" and aware(row.next_attempt_at) <= now) or (
                row.status == "sending" and row.claimed_until is not None
                and aware(row.claimed_until) < now)
            if row.webhook in blocked or not due:
                blocked.add(row.webhook)
                continue
            if len(taken) < limit:
                taken.append(row)
        for row in taken:
            row.status, row.claimed_until = "sending", now + timedelta(seconds=CLAIM_SECONDS)
        return [row.id for row in taken if row.id is not None]


async def deliver_once(engine: Engine, config: Config, client: httpx.AsyncClient,
                       now: datetime | None = None) -> DeliveryResult:
    """Send every due event now (subscribers side by side, each in order); record each outcome."""
    now = now or datetime.now(UTC)
    result = DeliveryResult()
    with store_errors():
        ids = await asyncio.to_thread(claim, engine, now)
        rows = await asyncio.to_thread(_load, engine, ids)
    by_hook: dict[str, list[tuple[int, str, str, str]]] = {}
    for row_id, hook, event_id, event, payload in rows:
        by_hook.setdefault(hook, []).append((row_id, event_id, event, payload))
    hooks = {h.name: h for h in config.webhooks}
    await asyncio.gather(*(_send_all(engine, hooks.get(name), name, items, client, now, result)
                           for name, items in by_hook.items()))
    with store_errors():
        result.next_due = await asyncio.to_thread(next_due, engine)
    return result


def _load(engine: Engine, ids: list[int]) -> list[tuple[int, str, str, str, str]]:
    if not ids:
        return []
    with transaction(engine) as session:
        rows = session.exec(select(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids))
                            .order_by(col(WebhookDelivery.id))).all()
        return [(r.id or 0, r.webhook, r.event_id, r.event, r.payload) for r in rows]


async def _send_all(engine: Engine, hook: WebhookConfig | None, name: str,
                    items: list[tuple[int, str, str, str]], client: httpx.AsyncClient,
                    now: datetime, result: DeliveryResult) -> None:
    """One subscriber's events in order; once one fails, the rest wait with it."""
    for index, (row_id, event_id, event, payload) in enumerate(items):
        if hook is None:
            await _record(engine, None, name, row_id, "failed", "no [[webhook]] of this name any more",
                          now, result)
            continue
        error = await _post(client, hook, row_id, event_id, event, payload.encode("utf-8"))
        if error is None:
            await _record(engine, hook, name, row_id, "sent", "", now, result)
            continue
        await _record(engine, hook, name, row_id, "retry", error, now, result)
        for later, *_ in items[index + 1:]:
            await _record(engine, hook, name, later, "wait", f"waiting for event {row_id}", now, result)
        return


async def _post(client: httpx.AsyncClient, hook: WebhookConfig, row_id: int, event_id: str,
                event: str, body: bytes) -> str | None:
    """POST one event; None when the receiver acknowledged it (2xx), else why not."""
    import httpx
    headers = {"Content-Type": "application/json", "User-Agent": "ticketgate-webhooks/1",
               "Ticketgate-Event": event, "Ticketgate-Event-Id": event_id,
               "Ticketgate-Delivery": str(row_id), SIGNATURE: sign(hook.secret, int(time.time()), body)}
    try:
        answer = await client.post(hook.url, content=body, headers=headers,
                                   timeout=hook.timeout_seconds)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}: {answer.text[:200]}"


async def _record(engine: Engine, hook: WebhookConfig | None, name: str, row_id: int, state: str,
                  detail: str, now: datetime, result: DeliveryResult) -> None:
    """Record one outcome at once: a crash later never sends an acknowledged event again."""
    with store_errors():
        await asyncio.to_thread(_write, engine, hook, row_id, state, detail, now, result)
    if state in ("sent", "retry", "failed"):
        WEBHOOKS.labels(name, {"retry": "retried"}.get(state, state)).inc()


def _write(engine: Engine, hook: WebhookConfig | None, row_id: int, state: str, detail: str,
           now: datetime, result: DeliveryResult) -> None:
    with transaction(engine) as session:
        row = session.get(WebhookDelivery, row_id)
        assert row is not None
        row.claimed_until = None
        if state == "wait":  # not attempted: goes when the one before it goes
            row.status = "pending"
            return
        row.attempts += 1
        if state == "sent":
            row.status, row.sent_at, row.last_error = "sent", now, ""
            result.sent += 1
            return
        row.last_error = detail[:2000]
        if state == "retry" and hook is not None and row.attempts < hook.retry_max_attempts:
            delay = backoff(row.attempts, hook.retry_base_seconds, 3600.0)
            row.status, row.next_attempt_at = "pending", now + timedelta(seconds=delay)
            result.retried += 1
            log.warning("webhook %s %s %s: retry in %.0f s: %s", row.webhook, row.event_id,
                        row.event, delay, detail)
            return
        row.status = "failed"
        result.failed += 1
        log.error("webhook %s %s %s failed for good: %s", row.webhook, row.event_id, row.event, detail)


def next_due(engine: Engine) -> datetime | None:
    """When the earliest pending event is due."""
    with Session(engine) as session:
        due = session.exec(select(func.min(WebhookDelivery.next_attempt_at))
                           .where(WebhookDelivery.status == "pending")).one()
    return aware(due) if due is not None else None


class WebhookWorker:
    """Delivers webhook events while the service runs: every flush_seconds, and when a retry is due."""

    def __init__(self, engine: Engine, config: Config) -> None:
        self.engine, self.config = engine, config
        self.outage: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until stop is set; a database outage is logged once and waited out."""
        import httpx  # loaded by the first delivery: most runs of the CLI send none

        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                wait = self.config.outbound.flush_seconds
                try:
                    result = await deliver_once(self.engine, self.config, client)
                    self._recovered()
                    if result.next_due is not None:
                        wait = min(wait, max(0.05, (result.next_due - datetime.now(UTC)).total_seconds()))
                except TemporaryError as exc:
                    self._outage(str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)

    async def flush(self) -> DeliveryResult:
        """One pass (run --once)."""
        import httpx  # loaded by the first delivery: most runs of the CLI send none

        async with httpx.AsyncClient() as client:
            return await deliver_once(self.engine, self.config, client)

    def _outage(self, reason: str) -> None:
        if self.outage is None:
            log.warning("webhooks paused, database unavailable: %s", reason)
        self.outage = reason

    def _recovered(self) -> None:
        if self.outage is not None:
            log.warning("webhooks resumed after: %s", self.outage)
        self.outage = None
