"""Outbound throughput to a local SMTP server: one reused connection per batch vs one per mail."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section
from gateway.config import Config, parse_config
from gateway.outbound.flush import flush_outbox_once
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.pipeline import RawMail, process
from store.db import make_engine, migrate
from tests.servers.smtp import SmtpServer

MAILS = 400


def customer_mail(n: int) -> bytes:
    """A new customer mail; each one queues exactly one acknowledgement."""
    return (f"From: c{n}@acme.example\r\nTo: support@example.com\r\nSubject: Question {n}\r\n"
            f"Message-ID: <bench-{n}@acme.example>\r\n\r\nHello {n}\r\n").encode()


async def run(batch_size: int, server: SmtpServer, folder: Path) -> float:
    """Mails per second sending MAILS acknowledgements in batches of batch_size."""
    config: Config = parse_config({
        "database": {"url": f"sqlite:///{folder}/bench-{batch_size}.db"},
        "channel": [{"name": "support", "address": "support@example.com"}],
        "smtp": {"host": server.host, "port": server.port, "security": "none"},
        "outbound": {"batch_size": batch_size, "ack_limit_per_recipient_hour": 10},
    }, "<bench>")
    engine = make_engine(config.database_url)
    migrate(engine)
    now = datetime.now(UTC)
    for n in range(MAILS):
        process(engine, config, RawMail(customer_mail(n), "bench"), now=now)
    smtp = config.smtp
    assert smtp is not None
    renderer = Renderer()
    before = len(server.handler.delivered)
    started = time.perf_counter()
    sent = 0
    while sent < MAILS:
        result = await flush_outbox_once(engine, config, lambda: SmtpSender(smtp), renderer, now)
        assert result.failed == 0 and result.retried == 0
        sent += result.sent
    elapsed = time.perf_counter() - started
    assert len(server.handler.delivered) - before == MAILS
    return MAILS / elapsed


def main() -> None:
    """Measure both ways in one run, print, and record in bench/README.md."""
    server = SmtpServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            reuse = asyncio.run(run(50, server, Path(tmp)))
            single = asyncio.run(run(1, server, Path(tmp)))
    finally:
        server.stop()
    table = (
        "| way | mails/s |\n|---|---|\n"
        f"| one connection per batch of 50 (what ticketgate does) | {reuse:.0f} |\n"
        f"| baseline: one connection per mail | {single:.0f} |\n\n"
        f"{MAILS} acknowledgements (rendered from the Jinja templates, text + HTML) to aiosmtpd "
        f"on loopback, SQLite outbox; reuse is {reuse / single:.1f}× the baseline."
    )
    print(table)
    write_section("outbound", "python bench/outbound_bench.py", table)


if __name__ == "__main__":
    main()
