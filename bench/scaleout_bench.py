"""Scale-out on PostgreSQL: several mailboxes drained by one ticketgate instance, then by two.

Each run gets a fresh database and freshly seeded mailboxes (the same generated mails, dealt
round-robin): one instance configured with every mailbox, then two instances started together,
each configured with half of them (the mailbox lease keeps two instances off one mailbox, so
the work is shared by mailbox). Throughput is all mails over the wall time until the last
instance exits; the database is checked for lost and doubled mails afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench._harness import TICKETGATE, WORK, Measured, Usage, bare_ids, toml_value
from bench._report import write_section
from bench.corpus import generate_mails
from store.db import make_engine, migrate
from store.keys import message_key
from tests.servers import postgres
from tests.servers.dovecot import Dovecot

BASE = WORK / "scaleout"
ON_PAPER = """\
**What limits it on more cores** (on paper; this machine has two, shared):

1. *One Python process per instance.* An instance runs the store stages of all its mailboxes
   in one process: whatever its mailbox count, one mail's stages run at a time (the GIL), so
   an instance tops out near one core, plus one per parse-ahead worker. Scale by instances
   (each with its share of the mailboxes), not by mailboxes per instance. Here two instances
   and PostgreSQL share two cores: they cannot beat one instance on this machine.
2. *One holder per mailbox.* The lease lets one process drain a mailbox, so a single very busy
   mailbox gets one core's rate however many instances run; split such a mailbox's mail over
   several folders (server-side rules) to spread it.
3. *Shared rows.* A new ticket's number comes from the day's `counter` row, drawn in a
   transaction of its own on a side pool (`store.queries.next_counter`) so its row lock lasts
   one statement; until 2026-11-30 it was held to the mail's commit and new-ticket
   transactions of every instance and mailbox queued on that row (95% of the sampled active
   sessions waited on it; two instances reached 0.71x one). Contacts, organisations and
   Message-IDs still serialise mails of the same sender, domain or Message-ID.
4. *Commits.* One transaction and one WAL flush per mail; PostgreSQL's group commit shares
   flushes between concurrent instances, so this grows slowly with instances.
5. *The IMAP server.* A FETCH per 100 mails and a MOVE after each batch's commits: small
   beside the pipeline's CPU.
"""


@dataclass
class Run:
    """One arrangement of instances over the mailboxes, and what it did."""

    label: str
    instances: int
    wall_s: float
    usages: list[Usage]
    lost: int
    doubled: int
    outcomes: dict[str, int]
    waits: dict[str, int]

    @property
    def cpu_s(self) -> float:
        """CPU seconds of all instances together."""
        return sum(u.cpu_s for u in self.usages)


def config_text(url: str, dovecot: Dovecot, users: list[str], workers: int | None) -> str:
    """One instance's config: the database, one channel and agent, these mailboxes."""
    lines = ['own_domains = ["example.com"]']
    if workers is not None:
        lines += ["[performance]", f"parse_workers = {workers}"]
    lines += ["[database]",
             f"url = {toml_value(url)}", "[[channel]]", 'name = "support"',
             'address = "support@example.com"', "[[agent]]", 'address = "alice@example.com"',
             'name = "alice"', 'display_name = "Alice"']
    for user in users:
        table = {"name": user, "host": dovecot.host, "port": dovecot.port, "security": "none",
                 "username": user, "password": dovecot.password, "folder": "INBOX",
                 "processed_folder": "Processed", "failed_folder": "Failed", "batch_size": 100,
                 "timeout_seconds": 120, "poll_seconds": 1}
        lines += ["[[mailbox]]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def accounting(url: str, expected: list[str]) -> tuple[int, int, dict[str, int]]:
    """(lost, doubled, outcomes) of the delivered Message-IDs in the database."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored = Counter(r[0] for r in conn.execute(text(
                "SELECT message_id FROM message WHERE direction = 'in'")))
            held = Counter(r[0] for r in conn.execute(text("SELECT message_key FROM quarantine")))
            outcomes = {str(outcome): int(count) for outcome, count in conn.execute(text(
                "SELECT outcome, count(*) FROM ledgerentry GROUP BY outcome"))}
    finally:
        engine.dispose()
    lost = doubled = 0
    for mid in expected:
        rows = stored.get(mid, 0) + held.get(message_key(mid), 0)
        lost += rows == 0
        doubled += max(rows - 1, 0)
    return lost, doubled, outcomes


def run(label: str, dovecot: Dovecot, boxes: list[list[bytes]], prefix: str, instances: int,
        workers: int | None, expected: list[str]) -> Run:
    """Seed the mailboxes, start the instances together, wait for all, count."""
    users = [f"{prefix}{i}" for i in range(len(boxes))]
    for user, mails in zip(users, boxes, strict=True):
        dovecot.seed(mails, user=user)
    url = postgres.create_database("ticketgate_scaleout")
    try:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        shares = [users[i::instances] for i in range(instances)]
        started = time.perf_counter()
        children = []
        for n, share in enumerate(shares):
            path = BASE / f"{prefix}-{n}.toml"
            path.write_text(config_text(url, dovecot, share, workers), encoding="utf-8")
            children.append(Measured([str(TICKETGATE), "--config", str(path), "run", "--once"],
                                     BASE / f"{prefix}-{n}.log", stdout=BASE / f"{prefix}-{n}.out"))
        waits = sample_waits(url, children)
        usages = [child.wait() for child in children]
        wall = time.perf_counter() - started
        lost, doubled, outcomes = accounting(url, expected)
    finally:
        postgres.drop_database(url)
    return Run(label, instances, wall, usages, lost, doubled, outcomes, waits)


def sample_waits(url: str, children: list[Measured]) -> dict[str, int]:
    """While the instances run, sample what their transactions wait on (pg_stat_activity)."""
    engine = make_engine(url)
    seen: Counter[str] = Counter()
    try:
        with engine.connect() as conn:
            while any(child.proc.poll() is None for child in children):
                rows = conn.execute(text(
                    "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running'), "
                    "wait_event_type = 'Lock', left(regexp_replace(query, '\\s+', ' ', 'g'), 40) "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state = 'active'")).all()
                seen.update(r[0] for r in rows)
                seen.update(f"waiting in: {r[2]}" for r in rows if r[1])
                seen["samples"] += 1
                conn.commit()
                time.sleep(0.05)
    finally:
        engine.dispose()
    return dict(seen)


def table(runs: list[Run], mails: int, mailboxes: int) -> str:
    """The figures of each run."""
    lines = ["| instances | mailboxes each | wall s | mails/s | × one instance | CPU ms/mail (all) "
             "| peak RSS MB (each) | lost | doubled |", "|---|---|---|---|---|---|---|---|---|"]
    base = mails / runs[0].wall_s
    for r in runs:
        rate = mails / r.wall_s
        rss = ", ".join(f"{u.peak_rss_mb:.0f}" for u in r.usages)
        lines.append(f"| {r.label} | {mailboxes // r.instances} | {r.wall_s:.1f} | "
                     f"{rate:.1f} | {rate / base:.2f} | {1000 * r.cpu_s / mails:.1f} | {rss} | "
                     f"{r.lost} | {r.doubled} |")
    return "\n".join(lines)


def waits_note(runs: list[Run]) -> str:
    """What the active database sessions were doing, as shares of the samples."""
    parts = []
    for r in runs:
        samples = r.waits.get("samples", 0) or 1
        busy = sorted(((k, v) for k, v in r.waits.items() if k != "samples"
                       and not k.startswith("waiting in")), key=lambda kv: -kv[1])
        shown = ", ".join(f"`{k}` {v / samples:.2f}" for k, v in busy[:4]) or "none"
        blocked = sorted(((k[12:], v) for k, v in r.waits.items() if k.startswith("waiting in")),
                         key=lambda kv: -kv[1])
        where = "; ".join(f"`{k}…` {v / samples:.2f}" for k, v in blocked[:3])
        parts.append(f"{r.label}: {shown}" + (f" (the waiting statements: {where})" if where else ""))
    return "; ".join(parts)


def main() -> None:
    """Seed, run one and two instances, print, record in bench/README.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--mails", type=int, default=800, help="mails over all mailboxes")
    parser.add_argument("--mailboxes", type=int, default=4)
    parser.add_argument("--parse-workers", type=int, default=None,
                        help="[performance] parse_workers of each instance (default: its default)")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    if (why := postgres.ensure_running()) is not None:
        sys.exit(f"PostgreSQL unavailable: {why}")
    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    mails = [m.raw for m in generate_mails(args.mails, args.seed)]
    boxes = [mails[i::args.mailboxes] for i in range(args.mailboxes)]
    expected = bare_ids(mails)
    users = [f"{p}{i}" for p in ("one", "two") for i in range(args.mailboxes)]
    load = os.getloadavg()[0]
    dovecot = Dovecot.start(BASE / "dovecot", users=users)
    try:
        runs = [run("one instance", dovecot, boxes, "one", 1, args.parse_workers, expected)]
        print(f"one: {runs[0]}", flush=True)
        runs.append(run("two instances", dovecot, boxes, "two", 2, args.parse_workers, expected))
        print(f"two: {runs[1]}", flush=True)
    finally:
        dovecot.kill()
    one, two = runs
    speedup = one.wall_s / two.wall_s
    body = "\n".join([
        f"{len(mails)} generated mails (`bench/corpus.py`, seed {args.seed}) dealt round-robin into "
        f"{args.mailboxes} mailboxes of a private Dovecot; PostgreSQL (loopback, fresh database per "
        f"run); `ticketgate run --once` children measured with `wait4`; `parse_workers` "
        f"{'default (1 on 2+ cores)' if args.parse_workers is None else args.parse_workers}. "
        f"Two instances: each configured with half of the mailboxes, "
        f"started together; the wall time runs until the last one exits. Load average at start: "
        f"{load:.2f} (other jobs share this 2-core machine).", "",
        table(runs, len(mails), args.mailboxes), "",
        f"Two instances reach **{speedup:.2f}×** the throughput of one "
        f"({json.dumps(one.outcomes)} in both runs' ledgers: "
        f"{'same' if one.outcomes == two.outcomes else json.dumps(two.outcomes)}).", "",
        f"What the active database sessions were doing (share of 50 ms samples with a session in "
        f"that state; `CPU:running` is a statement executing): {waits_note(runs)}.", "",
        ON_PAPER,
    ])
    print(body)
    write_section("scaleout", "python bench/scaleout_bench.py", body)


if __name__ == "__main__":
    main()
