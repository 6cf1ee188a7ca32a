"""Outbound throughput to one local aiosmtpd server: ticketgate's mailer against a bare aiosmtplib loop.

The same acknowledgements are queued once (``MAILS`` new tickets, SQLite) and each contender
starts from a copy of that database. The bare loop is the floor a mailer cannot beat on one
connection: the very messages ticketgate renders, prepared before the clock starts, sent
with aiosmtplib over one connection per 50 mails, no database. ticketgate is timed end to
end: claiming, rendering, sending and recording every outcome. The server runs in its own
process (as a real MTA would), counting mails and Message-IDs it saw twice.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib

from bench._report import write_section
from gateway.config import Config, parse_config
from gateway.outbound.flush import FlushResult, claim, flush_outbox_once, prepare
from gateway.outbound.render import Renderer
from gateway.outbound.smtp import SmtpSender
from gateway.pipeline import RawMail, process
from store.db import make_engine, migrate

MAILS = 1000
PER_CONNECTION = 50


class CountingHandler:
    """aiosmtpd handler: counts accepted mails and Message-IDs seen before."""

    def __init__(self, count: Synchronized[int], doubled: Synchronized[int],
                 contender: Synchronized[int]) -> None:
        self.count, self.doubled, self.contender = count, doubled, contender
        self.seen: set[tuple[int, bytes]] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content)
        start = data.find(b"Message-ID:")
        key = data[start:data.find(b"\r\n", start)] if start >= 0 else data[:200]
        mark = (self.contender.value, key)  # each contender sends the same mails once
        if mark in self.seen:
            self.doubled.value += 1
        self.seen.add(mark)
        self.count.value += 1
        return "250 OK"


def serve(port: int, count: Synchronized[int], doubled: Synchronized[int],
          contender: Synchronized[int], ready: Any, done: Any) -> None:
    """The server process: listen until told to stop."""
    from aiosmtpd.controller import Controller

    controller = Controller(CountingHandler(count, doubled, contender), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    done.wait()
    controller.stop()


@dataclass
class Sink:
    """The server process and its counters."""

    port: int
    count: Synchronized[int]
    doubled: Synchronized[int]
    contender: Synchronized[int]
    done: Any
    process: multiprocessing.Process

    def stop(self) -> None:
        self.done.set()
        self.process.join(10)


def start_sink() -> Sink:
    from tests.servers.smtp import free_port

    context = multiprocessing.get_context("spawn")
    count, doubled, contender = context.Value("i", 0), context.Value("i", 0), context.Value("i", 0)
    ready, done = context.Event(), context.Event()
    port = free_port()
    proc = context.Process(target=serve, args=(port, count, doubled, contender, ready, done), daemon=True)
    proc.start()
    if not ready.wait(30):
        raise RuntimeError("the SMTP sink did not start")
    return Sink(port, count, doubled, contender, done, proc)


def bench_config(database: Path, port: int, connections: int) -> Config:
    return parse_config({
        "database": {"url": f"sqlite:///{database}"},
        "channel": [{"name": "support", "address": "support@example.com"}],
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none"},
        "outbound": {"batch_size": PER_CONNECTION, "connections": connections,
                     "ack_limit_per_recipient_hour": 10},
    }, "<bench>")


def customer_mail(n: int) -> bytes:
    """A new customer mail; each one queues exactly one acknowledgement."""
    return (f"From: c{n}@acme.example\r\nTo: support@example.com\r\nSubject: Question {n}\r\n"
            f"Message-ID: <bench-{n}@acme.example>\r\n\r\nHello {n}\r\n").encode()


def queue(database: Path, port: int) -> None:
    """MAILS new tickets, so MAILS acknowledgements waiting in the outbox."""
    config = bench_config(database, port, 1)
    engine = make_engine(config.database_url)
    migrate(engine)
    now = datetime.now(UTC)
    for n in range(MAILS):
        process(engine, config, RawMail(customer_mail(n), "bench"), now=now)
    engine.dispose()  # the last connection's close folds the WAL into the file


async def bare_loop(database: Path, sink: Sink, as_bytes: bool = False) -> float:
    """Mails/s of aiosmtplib alone sending the prepared messages, one connection per 50.

    As the issue's loop does, ``send_message`` on each composed mail; as_bytes: ``sendmail``
    with the bytes ticketgate flattened beforehand (no serialising on the clock at all).
    """
    config = bench_config(database, sink.port, 1)
    engine = make_engine(config.database_url)
    now = datetime.now(UTC)
    ids: list[int] = []
    while batch := claim(engine, config, now):
        ids.extend(batch)
    mails = [p.mail for p in prepare(engine, config, Renderer(), ids, now, FlushResult())]
    engine.dispose()
    before = sink.count.value
    started = time.perf_counter()
    for first in range(0, len(mails), PER_CONNECTION):
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port)
        await client.connect()
        for mail in mails[first:first + PER_CONNECTION]:
            if as_bytes:
                await client.sendmail(mail.sender, mail.recipients, mail.data)
            else:
                await client.send_message(mail.message)
        await client.quit()
    elapsed = time.perf_counter() - started
    assert sink.count.value - before == MAILS
    return MAILS / elapsed


async def mailer(database: Path, sink: Sink, connections: int) -> float:
    """Mails/s of ticketgate's flush, claim to recorded outcome."""
    config = bench_config(database, sink.port, connections)
    engine = make_engine(config.database_url)
    smtp = config.smtp
    assert smtp is not None
    before = sink.count.value
    started = time.perf_counter()
    sent = 0
    while sent < MAILS:
        result = await flush_outbox_once(engine, config, lambda: SmtpSender(smtp), Renderer())
        assert result.failed == 0 and result.retried == 0 and result.sent
        sent += result.sent
    elapsed = time.perf_counter() - started
    engine.dispose()
    assert sink.count.value - before == MAILS
    return MAILS / elapsed


def main() -> None:
    """Every contender on its own copy of one queued outbox, one sink, in interleaved rounds
    (on a shared machine a single run of each drifts with the load); print and record."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender, interleaved")
    args = parser.parse_args()
    sink = start_sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            queued = Path(tmp) / "queued.db"
            queue(queued, sink.port)
            rates: dict[str, list[float]] = {}
            for round_ in range(args.rounds):
                for name, run in (("bare", lambda db: bare_loop(db, sink)),
                                  ("bytes", lambda db: bare_loop(db, sink, as_bytes=True)),
                                  ("one", lambda db: mailer(db, sink, 1)),
                                  ("default", lambda db: mailer(db, sink, 4))):
                    sink.contender.value += 1
                    copy = Path(tmp) / f"{name}-{round_}.db"
                    shutil.copy(queued, copy)
                    rates.setdefault(name, []).append(asyncio.run(run(copy)))
                    copy.unlink()
                    print(f"round {round_ + 1} {name}: {rates[name][-1]:.0f} mails/s", flush=True)
        doubled = sink.doubled.value
    finally:
        sink.stop()
    table = report(rates, doubled)
    print(table)
    if not args.no_write:
        command = "python bench/outbound_bench.py" + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
        write_section("outbound", command, table)


def report(rates: dict[str, list[float]], doubled: int) -> str:
    """The median of each contender's rounds; the goal on the medians, each round's ratio too."""
    median = {name: statistics.median(values) for name, values in rates.items()}
    bare = median["bare"]
    per_round = [d / b for d, b in zip(rates["default"], rates["bare"], strict=True)]
    goal = "met" if median["default"] >= 0.8 * bare else "not met"
    return (
        "| contender | mails/s (median) | each round | × bare loop |\n|---|---|---|---|\n"
        + "".join(
            f"| {label} | {median[name]:.0f} | {', '.join(f'{v:.0f}' for v in rates[name])} | "
            f"{median[name] / bare:.2f} |\n"
            for name, label in (
                ("bare", f"bare aiosmtplib loop, prepared messages, one connection per "
                         f"{PER_CONNECTION}"),
                ("bytes", "the same loop sending the bytes ticketgate prepared (`sendmail`, "
                          "nothing serialised on the clock)"),
                ("one", "ticketgate mailer, `connections = 1`"),
                ("default", "ticketgate mailer, default `connections = 4`")))
        + f"\n{MAILS} acknowledgements (Jinja text + HTML) to one aiosmtpd server in its own "
        f"process on loopback; each contender starts from a copy of the same queued SQLite "
        f"outbox, {len(per_round)} rounds with the contenders interleaved. The mailer's time "
        f"covers claiming, rendering, sending and recording each outcome; the bare loop's only "
        f"sending. Mails the server saw twice: {doubled}. Goal (issue #18): the mailer ≥ 0.8× "
        f"the bare loop: **{goal}** ({median['default'] / bare:.2f}× on the medians; per round "
        f"{min(per_round):.2f}–{max(per_round):.2f}×)."
    )


if __name__ == "__main__":
    main()
