"""Webhooks: signed events from the webhook outbox to a real receiver on loopback.

Events are queued in the transaction of what they report; a receiver that is down for a
while gets every event once it is back, and a repeat carries the same event id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.config import Config
from gateway.web.webhooks import SIGNATURE, DeliveryResult, deliver_once, sign, verify
from store.db import transaction
from store.models import WebhookDelivery
from tests.servers.receiver import Receiver
from tests.servers.smtp import SmtpServer
from tests.web_fixtures import Door, door_config, flush, serve

SECRET = "whsec-test-1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()  # not started: down until a test starts it
    yield hook
    hook.stop()


@pytest.fixture
def hooked(engine: Engine, smtp: SmtpServer, receiver: Receiver,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Door]:
    """The HTTP door with one subscriber to every event (secret from the environment)."""
    monkeypatch.setenv("TG_HOOK_SECRET", SECRET)
    config = door_config(engine.url.render_as_string(hide_password=False), smtp, webhook=[{
        "name": "crm", "url": receiver.url, "events": ["*"], "secret_env": "TG_HOOK_SECRET",
        "retry_base_seconds": 10, "retry_max_attempts": 50, "timeout_seconds": 5}])
    yield from serve(engine, config)


def rows(engine: Engine) -> list[WebhookDelivery]:
    with transaction(engine) as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all())


async def deliver(config: Config, engine: Engine, now: datetime) -> DeliveryResult:
    async with httpx.AsyncClient() as client:
        return await deliver_once(engine, config, client, now)


async def test_a_receiver_down_for_a_while_gets_every_signed_event_and_repeats_share_an_id(
        hooked: Door, receiver: Receiver) -> None:
    door = hooked
    number = door.create(key="k1").json()["ticket"]["number"]
    door.client.post(f"/api/v1/tickets/{number}/messages",
                     json={"customer": {"email": "anna@acme.example"}, "text": "Noch was"})
    door.client.post(f"/api/v1/tickets/{number}/close", json={"customer": {"email": "anna@acme.example"}})
    await flush(door)  # the mails to anna: message.sent
    queued = rows(door.engine)
    events = [(r.event, r.event_id) for r in queued]
    assert [e for e, _ in events] == [
        "ticket.created", "message.received", "message.received", "message.received",
        "ticket.status_changed", "message.sent", "message.sent"]
    assert len({i for _, i in events}) == len(events)
    now = datetime.now(UTC)
    for attempt in range(3):  # down: connection refused, every time
        result = await deliver(door.config, door.engine, now + timedelta(hours=attempt))
        assert (result.sent, result.retried) == (0, 1)  # the first fails, the rest wait in order
    assert receiver.received == []
    assert [r.attempts for r in rows(door.engine)] == [3, 0, 0, 0, 0, 0, 0]
    receiver.start()
    receiver.fail_once.add(events[2][1])  # processed, then answered 500: comes again
    early = await deliver(door.config, door.engine, now + timedelta(hours=2, seconds=1))
    assert (early.sent, receiver.received) == (0, [])  # the first is not due: the rest wait for it
    later = now + timedelta(days=1)
    for step in range(10):
        result = await deliver(door.config, door.engine, later + timedelta(hours=step))
        if not any(r.status != "sent" for r in rows(door.engine)):
            break
    assert {r.status for r in rows(door.engine)} == {"sent"}
    got = [r.event["id"] for r in receiver.received]
    assert got == [i for _, i in events[:3]] + [i for _, i in events[2:]]  # in order; one repeat
    assert got.count(events[2][1]) == 2
    first, repeat = [r for r in receiver.received if r.event["id"] == events[2][1]]
    assert first.body == repeat.body  # a repeat is the same event, byte for byte
    for item in receiver.received:
        assert verify(SECRET, item.headers[SIGNATURE], item.body, time.time())
        assert not verify("wrong", item.headers[SIGNATURE], item.body, time.time())
        assert item.headers["Ticketgate-Event"] == item.event["type"]
        assert item.headers["Ticketgate-Event-Id"] == item.event["id"]
    created = receiver.received[0].event
    assert created["data"]["ticket"]["number"] == number
    assert created["data"]["ticket"]["status"]["key"] == "in_progress"
    changed = next(r.event for r in receiver.received if r.event["type"] == "ticket.status_changed")
    assert changed["data"]["ticket"]["status"]["key"] == "closed"
    assert changed["data"]["previous_status"]["key"] == "in_progress"


async def test_webhooks_carry_no_internal_notes_and_a_rolled_back_event_is_never_sent(
        hooked: Door, receiver: Receiver) -> None:
    door = hooked
    receiver.start()
    bad = door.create(subject="")  # refused before the pipeline: no ticket, no event
    assert bad.status_code == 422
    door.create()
    await deliver(door.config, door.engine, datetime.now(UTC))
    assert [r.event["type"] for r in receiver.received] == ["ticket.created", "message.received"]
    for item in receiver.received:
        assert "alice@example.com" not in item.body.decode()  # agent mail is not an event


async def test_a_receiver_that_never_answers_2xx_gives_up_after_the_configured_attempts(
        engine: Engine, smtp: SmtpServer, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_HOOK_SECRET", SECRET)
    config = door_config(engine.url.render_as_string(hide_password=False), smtp, webhook=[{
        "url": receiver.url, "events": ["ticket.created"], "secret_env": "TG_HOOK_SECRET",
        "retry_base_seconds": 1, "retry_max_attempts": 2}])
    for door in serve(engine, config):
        door.create()
        now = datetime.now(UTC)
        await deliver(config, engine, now)
        result = await deliver(config, engine, now + timedelta(minutes=5))
        assert result.failed == 1
        (row,) = rows(engine)
        assert (row.status, row.attempts, row.event) == ("failed", 2, "ticket.created")
        assert "ConnectError" in row.last_error


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"s3cret", b"1764400000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1764400000, body) == f"t=1764400000,v1={expected}"
    assert verify("s3cret", f"t=1764400000,v1={expected}", body, 1764400000 + 299)
    assert not verify("s3cret", f"t=1764400000,v1={expected}", body, 1764400000 + 301)  # replayed
    assert not verify("s3cret", f"t=1764400000,v1={expected}", body + b" ", 1764400000)
    assert not verify("s3cret", "garbage", body, 1764400000)
