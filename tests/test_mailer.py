"""The mailer under load, against a real SMTP server: passes that keep going, parallel
connections in each recipient's order, waking on queued mail, SIGTERM mid-flush, run --once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from gateway.config import Config, parse_config
from gateway.errors import ConfigError
from gateway.outbound.backlog import outbox_backlog
from gateway.outbound.outbox import Recipient, enqueue
from gateway.outbound.worker import OutboxWorker
from gateway.pipeline import RawMail, process
from store.db import transaction
from store.models import Message, OutboxMail, Ticket
from tests.conftest import mail, start_service, write_config
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_outbound import T0, flush, ingest, outbound_config


def customers(engine: Engine, config: Config, count: int, now: datetime = T0) -> None:
    """count new tickets from count customers: an acknowledgement and a note to alice each."""
    for n in range(count):
        process(engine, config, RawMail(mail(f"load-{n}", f"Q{n}", f"c{n}@acme.example"), "in"),
                now=now)


def outbox_ids(engine: Engine) -> dict[str, tuple[int, str]]:
    """Message-ID (with brackets) -> (outbox row id, status) of every queued mail."""
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMail.id, OutboxMail.status, Message.message_id)
                            .join(Message, col(Message.id) == col(OutboxMail.message_row))).all()
    return {f"<{message_id}>": (row_id or 0, status) for row_id, status, message_id in rows}


def delivered_ids(smtp: SmtpServer, address: str | None = None) -> list[str]:
    found = smtp.handler.to(address) if address else list(smtp.handler.delivered)
    return [d.message["Message-ID"] for d in found]


def queue_again(engine: Engine, config: Config, address: str, now: datetime) -> None:
    """Another mail to address on its ticket, queued as the planner would (enqueue)."""
    with transaction(engine) as session:
        first = session.exec(select(OutboxMail).where(OutboxMail.primary_address == address)).first()
        assert first is not None
        ticket = session.get(Ticket, first.ticket_id)
        assert ticket is not None
        context = json.loads(first.context)
        meta = context.pop("_meta")
        enqueue(session, config, ticket, first.template, first.audience, [Recipient(address)],
                context, now=now, auto_submitted="auto-replied", in_reply_to=None, references=[],
                reply_to=meta["reply_to"], from_name=meta["from_name"],
                from_address=meta["from_address"])


async def test_one_pass_sends_more_than_one_batch(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp, batch_size=5)
    customers(engine, config, 12)  # 24 mails: five batches
    result = await flush(engine, config)
    assert (result.sent, result.claimed, result.more) == (24, 24, False)
    sent = delivered_ids(smtp)
    assert len(sent) == 24 and set(sent) == set(outbox_ids(engine))


async def test_a_recipients_mails_go_out_in_queue_order_over_parallel_connections(
        engine: Engine, smtp: SmtpServer) -> None:
    smtp.handler.pause = 0.02  # slow enough that the connections overlap
    config = outbound_config(smtp, batch_size=10, connections=4)
    customers(engine, config, 15)
    for n in range(15):
        queue_again(engine, config, f"c{n}@acme.example", T0)
    result = await flush(engine, config)
    assert result.sent == 45
    assert smtp.handler.most_busy > 1 and len(smtp.handler.sessions) >= 4
    queued = outbox_ids(engine)
    for address in ["alice@example.com", *(f"c{n}@acme.example" for n in range(15))]:
        order = [queued[m][0] for m in delivered_ids(smtp, address)]
        assert order == sorted(order) and len(order) == len(set(order)), address


async def test_a_later_mail_waits_while_the_earlier_one_to_that_address_is_retried(
        engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp)
    ingest(engine, config, mail(1, "Hi", "anna@acme.example"))
    queue_again(engine, config, "anna@acme.example", T0)  # the reply after the acknowledgement
    smtp.handler.defer.add("anna@acme.example")
    first = await flush(engine, config)
    assert (first.sent, first.retried, first.released) == (1, 1, 1)  # alice's note went out
    assert first.next_due is not None and first.next_due > T0
    early = await flush(engine, config, T0 + timedelta(seconds=1))
    assert early.claimed == 0  # the reply is not sent ahead of the acknowledgement
    smtp.handler.defer.clear()
    second = await flush(engine, config, first.next_due)
    assert second.sent == 2
    queued = outbox_ids(engine)
    order = [queued[m][0] for m in delivered_ids(smtp, "anna@acme.example")]
    assert len(order) == 2 and order == sorted(order)


async def test_queued_mail_wakes_the_mailer_at_once(engine: Engine, smtp: SmtpServer) -> None:
    config = outbound_config(smtp, flush_seconds=600)
    worker = OutboxWorker(engine, config)
    stop = asyncio.Event()
    running = asyncio.ensure_future(worker.run(stop))
    try:
        await asyncio.to_thread(customers, engine, config, 1, datetime.now(UTC))
        assert await asyncio.to_thread(smtp.handler.wait_for, 2, 10.0)  # not 600 s later
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_drain_sends_everything_due_and_leaves_retries_for_later(
        engine: Engine, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    config = outbound_config(smtp, batch_size=2, connections=2)
    customers(engine, config, 40, datetime.now(UTC))
    smtp.handler.defer.add("c3@acme.example")
    monkeypatch.setattr("gateway.outbound.flush.PASS_BATCHES", 3)  # several passes
    total = await OutboxWorker(engine, config).drain()
    assert (total.sent, total.retried) == (79, 1)
    with transaction(engine) as session:
        backlog = outbox_backlog(session, datetime.now(UTC))
    assert (backlog.due, backlog.retrying, backlog.sending) == (0, 1, 0)


def _service_config(tmp_path: Path, engine: Engine, dovecot: Dovecot, folder: str,
                    smtp: SmtpServer) -> Path:
    extra = (f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\n'
             "[outbound]\nbatch_size = 20\nconnections = 2\n")
    return write_config(tmp_path / "config.toml", engine, dovecot, folder, extra)


async def test_sigterm_during_a_long_flush_sends_nothing_twice_and_run_once_sends_the_rest(
        engine: Engine, smtp: SmtpServer, dovecot: Dovecot, folder: str, tmp_path: Path) -> None:
    config_file = _service_config(tmp_path, engine, dovecot, folder, smtp)
    config = outbound_config(smtp)
    customers(engine, config, 100, datetime.now(UTC))  # 200 mails
    dovecot.append(mail(f"{folder}-new", "Hello", "new@acme.example"), folder=folder)  # one more ack
    smtp.handler.pause = 0.05  # about 2.5 s per 100 mails on two connections
    proc = start_service(config_file, log=tmp_path / "service.log")
    try:
        assert await asyncio.to_thread(smtp.handler.wait_for, 30, 60.0), "the flush never began"
    finally:
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0 and time.monotonic() - started < 5  # not after the whole backlog
    sent_then = delivered_ids(smtp)
    queued = outbox_ids(engine)
    assert 30 <= len(sent_then) < 150 and len(set(sent_then)) == len(sent_then)
    # What the server accepted is recorded as sent; nothing is left claimed.
    assert {m for m, (_, status) in queued.items() if status == "sent"} == set(sent_then)
    assert {status for _, status in queued.values()} == {"sent", "pending"}
    smtp.handler.pause = 0.0
    once = start_service(config_file, "--once", log=tmp_path / "once.log")
    assert await asyncio.to_thread(once.wait, 60) == 0
    sent, queued = delivered_ids(smtp), outbox_ids(engine)
    assert len(sent) == len(queued) == 201 and set(sent) == set(queued)  # each once


@pytest.mark.parametrize("bad", [0, 33, "four"])
def test_connections_out_of_range_names_the_key(bad: Any) -> None:
    raw = {"channel": [{"name": "support", "address": "support@example.com"}],
           "outbound": {"connections": bad}}
    with pytest.raises(ConfigError, match=r"outbound\.connections"):
        parse_config(raw, "<test>")
