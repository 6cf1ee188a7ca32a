"""Soak: `ticketgate run` under steady IMAP ingest for minutes, sending to a real SMTP server.

A private Dovecot gets mails APPENDed at a steady rate (new requests, replies to them,
out-of-office notices); ``ticketgate run`` (IDLE, SQLite, one agent) stores them and sends
the acknowledgements and agent notifications they cause to an aiosmtpd server in its own
process. Every few seconds the bench reads the outbox (due now, oldest due) and counts what
the server accepted. The question: does the outbox backlog stay bounded, i.e. not grow in
the second half of the run? Then the appends stop, the rest drains, and SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bench._report import write_section
from bench.outbound_bench import Sink, start_sink
from gateway.outbound.backlog import outbox_backlog
from store.models import Message, OutboxMail
from tests.servers.dovecot import Dovecot

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench" / "soak"
USER = "support"


@dataclass
class Sample:
    """The state at one moment of the run."""

    seconds: float
    appended: int
    stored: int
    queued: int
    accepted: int
    due: int
    oldest_due: float


def config_text(server: Dovecot, db: Path, sink: Sink) -> str:
    """One IDLE mailbox, one agent (so a new ticket causes two mails), SMTP to the sink."""
    return f"""\
own_domains = ["example.com"]

[database]
url = "sqlite:///{db}"

[[channel]]
name = "support"
address = "support@example.com"

[[agent]]
address = "alice@example.com"
name = "alice"

[outbound]
ack_limit_per_recipient_hour = 100

[smtp]
host = "127.0.0.1"
port = {sink.port}
security = "none"

[[mailbox]]
name = "soak"
host = "{server.host}"
port = {server.port}
security = "none"
username = "{USER}"
password = "{server.password}"
folder = "INBOX"
processed_folder = "Processed"
idle = true
poll_seconds = 30
timeout_seconds = 30
"""


def next_mail(n: int, rng: random.Random, customers: list[int]) -> bytes:
    """New request (60%), a customer's reply to their own earlier mail (30%), out of office."""
    roll = rng.random()
    if roll < 0.3 and customers:
        who = rng.choice(customers)
        return (f"From: c{who}@acme.example\r\nTo: support@example.com\r\nSubject: Re: Question {who}\r\n"
                f"Message-ID: <soak-{n}@acme.example>\r\nIn-Reply-To: <soak-new-{who}@acme.example>\r\n"
                f"\r\nOne more thing about {who}, mail {n}.\r\n").encode()
    if roll < 0.4:
        return (f"From: away{n}@acme.example\r\nTo: support@example.com\r\nSubject: Out of office\r\n"
                f"Message-ID: <soak-{n}@acme.example>\r\nAuto-Submitted: auto-replied\r\n"
                f"\r\nI am away until Monday.\r\n").encode()
    customers.append(n)
    return (f"From: Customer {n} <c{n}@acme.example>\r\nTo: support@example.com\r\n"
            f"Subject: Question {n}\r\nMessage-ID: <soak-new-{n}@acme.example>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\nPrinter {n} is broken.\r\n").encode()


class Appender(threading.Thread):
    """APPENDs mails at a steady rate until stopped."""

    def __init__(self, server: Dovecot, rate: float, seed: int) -> None:
        super().__init__(daemon=True)
        self.server, self.rate, self.rng = server, rate, random.Random(seed)
        self.appended = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        customers: list[int] = []
        try:
            conn = imaplib.IMAP4(self.server.host, self.server.port, timeout=30)
            conn.login(USER, self.server.password)
            started = time.monotonic()
            while not self.stop.is_set():
                due = started + self.appended / self.rate
                if (wait := due - time.monotonic()) > 0:
                    self.stop.wait(wait)
                    continue
                typ, data = conn.append("INBOX", "", "", next_mail(self.appended, self.rng, customers))
                if typ != "OK":
                    raise RuntimeError(f"APPEND failed: {data!r}")
                self.appended += 1
            conn.logout()
        except BaseException as exc:  # reported by main
            self.error = exc


def sample(reader: Engine, started: float, appender: Appender, sink: Sink) -> Sample:
    """One look at the database (read-only) and the server's count."""
    with Session(reader) as session:
        backlog = outbox_backlog(session, datetime.now(UTC))
        stored = session.exec(select(func.count()).select_from(Message)
                              .where(Message.direction == "in")).one()
        queued = session.exec(select(func.count()).select_from(OutboxMail)).one()
    return Sample(time.monotonic() - started, appender.appended, int(stored), int(queued),
                  sink.count.value, backlog.due + backlog.sending, backlog.oldest_due_seconds)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (per second) of (t, value) points."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var if var else 0.0


def run(args: argparse.Namespace) -> tuple[list[Sample], float, int, int]:
    """The soak itself; returns the samples, the drain time, doubled mails and exit code."""
    if (WORK / "dovecot" / "state.json").exists():  # a run that died: stop its server first
        with contextlib.suppress(Exception):
            Dovecot.attach(WORK / "dovecot").stop()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    server = Dovecot.start(WORK / "dovecot")
    sink = start_sink()
    db = WORK / "soak.db"
    cfg = WORK / "ticketgate.toml"
    cfg.write_text(config_text(server, db, sink), encoding="utf-8")
    service: subprocess.Popen[bytes] | None = None
    try:
        with (WORK / "ticketgate.log").open("wb") as log:
            service = subprocess.Popen([str(REPO / ".venv" / "bin" / "ticketgate"), "--config",
                                        str(cfg), "run"], cwd=REPO, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT)
        while not db.exists():
            time.sleep(0.2)
        reader = create_engine(f"sqlite:///{db}", connect_args={"timeout": 60})
        time.sleep(2)  # the service connects and enters IDLE
        appender = Appender(server, args.rate, args.seed)
        started = time.monotonic()
        appender.start()
        samples: list[Sample] = []
        while time.monotonic() - started < args.seconds:
            time.sleep(args.every)
            samples.append(sample(reader, started, appender, sink))
            print(samples[-1], flush=True)
        appender.stop.set()
        appender.join(30)
        if appender.error is not None:
            raise appender.error
        stopped = time.monotonic()
        while True:
            last = sample(reader, started, appender, sink)
            if (last.stored >= appender.appended and last.due == 0) or time.monotonic() - stopped > 120:
                break
            time.sleep(0.5)
        drain = time.monotonic() - stopped
        samples.append(last)
        service.send_signal(signal.SIGTERM)
        code = service.wait(60)
        return samples, drain, sink.doubled.value, code
    finally:
        if service is not None and service.poll() is None:
            service.kill()
        sink.stop()
        server.stop()


def report(args: argparse.Namespace, samples: list[Sample], drain: float, doubled: int,
           code: int) -> str:
    """The figures as markdown."""
    during = [s for s in samples if s.seconds <= args.seconds + 1]
    half = args.seconds / 2
    first = [s for s in during if s.seconds <= half]
    second = [s for s in during if s.seconds > half]
    growth = slope([(s.seconds, s.due) for s in second]) * 60
    end = during[-1]
    out_rate = (end.accepted - first[-1].accepted) / (end.seconds - first[-1].seconds)
    in_rate = (end.stored - first[-1].stored) / (end.seconds - first[-1].seconds)
    queued_rate = (end.queued - first[-1].queued) / (end.seconds - first[-1].seconds)
    bounded = max(s.due for s in second) <= max(2 * max(s.due for s in first), 50) \
        and growth < 0.05 * queued_rate * 60
    step = max(1, len(during) // 12)
    rows = "\n".join(f"| {s.seconds:.0f} | {s.appended} | {s.stored} | {s.queued} | {s.accepted} | "
                     f"{s.due} | {s.oldest_due:.1f} |" for s in during[::step])
    final = samples[-1]
    return (
        f"Steady ingest of {args.rate:g} mails/s over IMAP for {args.seconds:g} s (60% new "
        f"requests, 30% replies, 10% out-of-office; seed {args.seed}), `ticketgate run` with IDLE, "
        f"SQLite, one agent and the default `[outbound]` (4 connections, batches of 50), sending to "
        f"aiosmtpd in its own process on loopback. Load average at the start: {args.load:.1f}.\n\n"
        "| s | appended | stored | mails queued | accepted by SMTP | backlog (due + sending) | "
        "oldest due, s |\n|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"Second half: stored {in_rate:.1f} mails/s, queued {queued_rate:.1f} outbound mails/s, "
        f"the server accepted {out_rate:.1f}/s; the backlog changed by {growth:+.1f} mails/min "
        f"(max {max(s.due for s in first)} in the first half, {max(s.due for s in second)} in the "
        f"second). **Backlog bounded: {'yes' if bounded else 'no'}.** After the appends stopped the "
        f"rest was stored and sent in {drain:.1f} s ({final.stored} stored of {final.appended} "
        f"appended, {final.accepted} mails accepted for {final.queued} queued, {doubled} seen "
        f"twice by the server); SIGTERM exit code {code}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=10.0, help="mails APPENDed per second")
    parser.add_argument("--seconds", type=float, default=150.0, help="how long to append")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    args.load = os.getloadavg()[0]
    samples, drain, doubled, code = run(args)
    text = report(args, samples, drain, doubled, code)
    print(text)
    if not args.no_write:
        command = f"python bench/soak_bench.py --rate {args.rate:g} --seconds {args.seconds:g}"
        write_section("soak", command, text)


if __name__ == "__main__":
    main()
