"""Pickup latency over IMAP IDLE: APPEND to committed ticket, against the bare IDLE push delay."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import imaplib
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aioimaplib
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bench._report import write_section
from store.keys import message_key
from store.models import Message
from tests.servers.dovecot import Dovecot

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench" / "latency"
USER = "support"
FLOOR_FOLDER = "Floor"  # the floor client's own folder: ticketgate's MOVEs never touch it
POLL_SECONDS = 3600.0  # only IDLE can explain a pickup faster than this
TARGET_S = 1.0
_EXISTS = re.compile(rb"(\d+) EXISTS")


@dataclass
class Probe:
    """One mail: when its APPEND completed and when its ticket was seen committed."""

    message_id: str
    key: str
    appended: float = math.nan
    committed: float = math.nan


@dataclass
class Floor:
    """An aioimaplib client of our own idling on FLOOR_FOLDER, timestamping every EXISTS push."""

    host: str
    port: int
    password: str
    pushes: list[tuple[float, int]] = field(default_factory=list)  # (time, EXISTS count)
    idling: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the client in its own thread and event loop."""
        self._thread = threading.Thread(target=self._main, name="idle-floor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End IDLE, log out, and join the thread (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def delay(self, nth: int, appended: float) -> float:
        """Seconds from an APPEND to the first push counting at least nth mails in the folder."""
        return next((t - appended for t, count in self.pushes if count >= nth), math.nan)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by the caller
            self.error = exc
            self.idling.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = aioimaplib.IMAP4(host=self.host, port=self.port, timeout=30)
        await client.wait_hello_from_server()
        await client.login(USER, self.password)
        await client.select(FLOOR_FOLDER)
        while not self._stop.is_set():
            idle = await client.idle_start(timeout=300)
            self.idling.set()
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    lines = await client.wait_server_push(timeout=0.05)
                    now = time.perf_counter()
                    if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                        break  # IDLE timed out: start it again
                    for line in lines:
                        found = _EXISTS.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
                        if found:
                            self.pushes.append((now, int(found.group(1))))
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(idle, 30)
        await client.logout()


def check_commits(engine: Engine, probes: dict[str, Probe]) -> None:
    """One query: timestamp every pending probe whose inbound message is committed now."""
    pending = [key for key, p in probes.items() if math.isnan(p.committed)]
    if not pending:
        return
    with engine.connect() as conn:
        rows = conn.execute(select(Message.message_id, Message.message_key).where(
            Message.direction == "in", col(Message.message_key).in_(pending))).all()
    now = time.perf_counter()
    for message_id, key in rows:
        probe = probes[key]
        if message_id == probe.message_id and math.isnan(probe.committed):
            probe.committed = now


def commit_watcher(engine: Engine, probes: list[Probe], done: threading.Event, every: float) -> None:
    """Poll the database every `every` seconds until every probe is committed (or done is set)."""
    by_key = {p.key: p for p in probes}
    while not done.is_set() and any(math.isnan(p.committed) for p in probes):
        check_commits(engine, by_key)
        time.sleep(every)


def committed_now(engine: Engine, probes: list[Probe]) -> bool:
    """One database check (no table yet counts as not committed)."""
    try:
        check_commits(engine, {p.key: p for p in probes})
    except Exception:
        return False
    return not any(math.isnan(p.committed) for p in probes)


def idle_pids() -> list[int]:
    """Dovecot imap processes in IDLE right now (their verbose_proctitle says so)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"dovecot/imap ") and b" IDLE]" in title:
            found.append(int(entry.name))
    return found


def title(pid: int) -> bytes:
    """The process title of one imap process (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll check() until true, or fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


def mail(run: str, label: str) -> tuple[str, bytes]:
    """A small customer mail with a unique Message-ID."""
    mid = f"lat-{run}-{label}@bench.example"
    raw = (f"From: Customer {label} <c{label}@acme.example>\r\nTo: support@example.com\r\n"
           f"Subject: Latency probe {label}\r\nDate: {formatdate(localtime=False)}\r\n"
           f"Message-ID: <{mid}>\r\n\r\nHello, this is probe {label}.\r\n").encode()
    return mid, raw


def probe_for(run: str, label: str) -> tuple[Probe, bytes]:
    """A probe and the raw mail it tracks."""
    mid, raw = mail(run, label)
    return Probe(mid, message_key(mid)), raw


def append(conn: imaplib.IMAP4, folder: str, raw: bytes) -> float:
    """APPEND over an open connection; the time its tagged OK arrived."""
    typ, data = conn.append(folder, "", "", raw)
    done = time.perf_counter()
    if typ != "OK":
        raise RuntimeError(f"APPEND to {folder} failed: {data!r}")
    return done


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def row(label: str, values: list[float]) -> str:
    """A table row of p50/p90/p99/max in ms."""
    ms = [v * 1000 for v in values]
    return (f"| {label} | {len(ms)} | {percentile(ms, 0.5):.0f} | {percentile(ms, 0.9):.0f} | "
            f"{percentile(ms, 0.99):.0f} | {max(ms):.0f} |")


def write_config(server: Dovecot, db: Path) -> Path:
    """A config with one IDLE mailbox on the private Dovecot and SQLite under var/bench."""
    cfg = WORK / "ticketgate.toml"
    cfg.write_text(f"""\
own_domains = ["example.com"]

[database]
url = "sqlite:///{db}"

[[channel]]
name = "support"
address = "support@example.com"

[[mailbox]]
name = "bench"
host = "{server.host}"
port = {server.port}
security = "none"
username = "{USER}"
password = "{server.password}"
folder = "INBOX"
processed_folder = "Processed"
idle = true
poll_seconds = {POLL_SECONDS}
timeout_seconds = 30
""", encoding="utf-8")
    return cfg


def ticketgate_bin() -> str:
    """The console script next to this interpreter, else the repository's venv."""
    here = Path(sys.executable).parent / "ticketgate"
    return str(here if here.exists() else REPO / ".venv" / "bin" / "ticketgate")


def schedule(kind: str, mails: int, rate: float, seed: int) -> list[float]:
    """APPEND times in seconds from the start: evenly spaced, or a Poisson process of that rate."""
    if kind == "steady":
        return [n / rate for n in range(mails)]
    rng = random.Random(seed)
    times, now = [], 0.0
    for _ in range(mails):
        times.append(now)
        now += rng.expovariate(rate)
    return times


def phase(conn: imaplib.IMAP4, reader: Engine, floor: Floor, run: str, offsets: list[float],
          floor_base: int, poll_s: float) -> tuple[list[float], list[float]]:
    """APPEND on a schedule (each mail to INBOX, then to the floor folder); both delays per mail."""
    probes, raws = zip(*(probe_for(run, str(n)) for n in range(len(offsets))), strict=True)
    floor_appended: list[float] = []
    done = threading.Event()
    watcher = threading.Thread(target=commit_watcher, args=(reader, list(probes), done, poll_s),
                               name="commit-watcher", daemon=True)
    watcher.start()
    started = time.perf_counter()
    for offset, probe, raw in zip(offsets, probes, raws, strict=True):
        delay = started + offset - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        probe.appended = append(conn, "INBOX", raw)
        floor_appended.append(append(conn, FLOOR_FOLDER, raw))
    watcher.join(60)
    done.set()
    time.sleep(1.0)  # late pushes
    missing = [p.message_id for p in probes if math.isnan(p.committed)]
    if missing:
        raise RuntimeError(f"{len(missing)} mails never became tickets within 60 s, e.g. {missing[0]}")
    pickup = [p.committed - p.appended for p in probes]
    floor_delays = [floor.delay(floor_base + n + 1, t) for n, t in enumerate(floor_appended)]
    return pickup, [d for d in floor_delays if not math.isnan(d)]


def stranded(conn: imaplib.IMAP4, reader: Engine, run: str, service_pid: int, trials: int,
             wait: float) -> list[float]:
    """Mail B arriving while ticketgate handles mail A: seconds until B committed (nan: not in wait)."""
    results = []
    for trial in range(trials):
        wait_for("ticketgate in IDLE", lambda: b" IDLE]" in title(service_pid), 30)
        first, raw_a = probe_for(run, f"a{trial}")
        second, raw_b = probe_for(run, f"b{trial}")
        first.appended = append(conn, "INBOX", raw_a)
        # Out of IDLE, past UID SEARCH: B lands while A is fetched, stored and moved.
        deadline = time.perf_counter() + 5
        left_idle = math.nan
        while time.perf_counter() < deadline:
            now_title = title(service_pid)
            if b" IDLE]" not in now_title and math.isnan(left_idle):
                left_idle = time.perf_counter()
            if b"FETCH" in now_title or time.perf_counter() - left_idle > 0.02:
                break
        second.appended = append(conn, "INBOX", raw_b)
        end = second.appended + wait
        while time.perf_counter() < end and not committed_now(reader, [second]):
            time.sleep(0.005)
        results.append(second.committed - second.appended)
        wait_for(f"probe a{trial}", functools.partial(committed_now, reader, [first]), 30)
    return results


def main() -> None:
    """Measure, print, and record in bench/README.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=100, help="mails to append (default 100)")
    parser.add_argument("--rate", type=float, default=2.0, help="APPENDs per second (default 2)")
    parser.add_argument("--arrivals", default="steady,poisson",
                        help="comma-separated: steady (evenly spaced), poisson (random, same mean rate)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the Poisson arrivals")
    parser.add_argument("--poll-ms", type=float, default=5.0, help="database poll interval (default 5)")
    parser.add_argument("--trials", type=int, default=5,
                        help="mail-during-processing trials (default 5)")
    parser.add_argument("--trial-wait", type=float, default=10.0,
                        help="seconds such a mail may take before it counts as stranded (default 10)")
    parser.add_argument("--term-wait", type=float, default=10.0,
                        help="seconds to wait for exit after SIGTERM before waking IDLE with a mail")
    parser.add_argument("--no-report", action="store_true", help="do not write bench/README.md")
    args = parser.parse_args()

    if (WORK / "dovecot" / "state.json").exists():  # a run that died: stop its server first
        with contextlib.suppress(Exception):
            Dovecot.attach(WORK / "dovecot").stop()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    load = os.getloadavg()[0]
    db = WORK / "latency.db"
    run = f"{os.getpid()}-{int(time.time())}"
    server = Dovecot.start(WORK / "dovecot")
    # Process titles then show "IDLE" while a session idles: how we know ticketgate waits.
    with server.config_path.open("a") as conf:
        conf.write("verbose_proctitle = yes\n")
    server.restart()
    cfg = write_config(server, db)
    log_path = WORK / "ticketgate.log"
    floor = Floor(server.host, server.port, server.password)
    # A plain reader: store.db.make_engine would take SQLite's write lock on every poll.
    reader = create_engine(f"sqlite:///{db}", connect_args={"timeout": 60})
    service: subprocess.Popen[bytes] | None = None
    conn: imaplib.IMAP4 | None = None
    exit_code: int | None = None
    nudged = False
    results: dict[str, tuple[list[float], list[float]]] = {}
    try:
        with log_path.open("wb") as log:
            service = subprocess.Popen([ticketgate_bin(), "--config", str(cfg), "run"], cwd=REPO,
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        conn = imaplib.IMAP4(server.host, server.port, timeout=30)
        conn.login(USER, server.password)
        conn.create(FLOOR_FOLDER)
        # Warm up: one mail through the whole path, then ticketgate back in IDLE, alone.
        warm, raw = probe_for(run, "warm")
        append(conn, "INBOX", raw)
        wait_for("the warm-up ticket", lambda: db.exists() and committed_now(reader, [warm]), 60)
        wait_for("ticketgate to enter IDLE", lambda: len(idle_pids()) == 1, 30)
        service_imap = idle_pids()[0]
        floor.start()
        floor.idling.wait(30)
        if floor.error is not None:
            raise RuntimeError(f"IDLE floor client failed: {floor.error!r}")
        wait_for("both IDLE sessions", lambda: len(idle_pids()) == 2, 30)
        time.sleep(1.0)

        kinds = [k.strip() for k in args.arrivals.split(",") if k.strip()]
        if not kinds or any(k not in ("steady", "poisson") for k in kinds):
            raise SystemExit(f"--arrivals: steady and/or poisson, not {args.arrivals!r}")
        for kind in kinds:
            offsets = schedule(kind, args.mails, args.rate, args.seed)
            results[kind] = phase(conn, reader, floor, f"{run}-{kind}", offsets,
                                  len(results) * args.mails, args.poll_ms / 1000)
        floor.stop()
        trials = stranded(conn, reader, run, service_imap, args.trials, args.trial_wait)

        wait_for("ticketgate in IDLE", lambda: b" IDLE]" in title(service_imap), 30)
        service.send_signal(signal.SIGTERM)
        signalled = time.perf_counter()
        try:
            exit_code = service.wait(args.term_wait)
        except subprocess.TimeoutExpired:
            # Still idling? One more mail wakes IDLE: if it exits then, IDLE ignored the signal.
            append(conn, "INBOX", mail(run, "nudge")[1])
            nudged = True
            with contextlib.suppress(subprocess.TimeoutExpired):
                exit_code = service.wait(30)
        exit_s = time.perf_counter() - signalled
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.logout()
        try:
            if service is not None and service.poll() is None:
                service.kill()
                service.wait()
            floor.stop()
        finally:
            server.stop()
            reader.dispose()

    all_pickups = [t for pickup, _ in results.values() for t in pickup]
    p99 = percentile(all_pickups, 0.99)
    over = sum(1 for p in all_pickups if p >= TARGET_S)
    verdicts = "; ".join(f"{kind} p99 {percentile(pickup, 0.99) * 1000:.0f} ms"
                         for kind, (pickup, _) in results.items())
    lost = [t for t in trials if math.isnan(t)]
    caught = sorted(t for t in trials if not math.isnan(t))
    if exit_code is None:
        stopped = f"did NOT exit, even after a mail woke IDLE ({exit_s:.0f} s; killed)"
    elif nudged:
        stopped = (f"did NOT exit within {args.term_wait:g} s while in IDLE; it exited {exit_code} "
                   f"only after one more APPEND woke IDLE ({exit_s:.1f} s after the signal)")
    else:
        stopped = f"exited {exit_code} after {exit_s:.2f} s"
    table = (
        "| APPEND → | mails | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n"
        + "".join(f"{row(f'{kind}: ticket committed (`ticketgate run`, IDLE)', pickup)}\n"
                  f"{row(f'{kind}: floor, EXISTS push to a bare aioimaplib IDLE client', floors)}\n"
                  for kind, (pickup, floors) in results.items())
        + f"\nPer arrival pattern {args.mails} mails APPENDed one by one at {args.rate:g}/s to a private "
        "Dovecot (steady: evenly spaced; poisson: random arrivals at the same mean rate, "
        f"seed {args.seed}) "
        f"(`mail_fsync = never`); SQLite (WAL) under `var/bench/`; `poll_seconds = {POLL_SECONDS:g}` "
        f"so only IDLE explains a pickup; commits seen by polling the database every {args.poll_ms:g} ms "
        "(`message.direction = 'in'` and the probe's Message-ID). Floor: each mail is also APPENDed to "
        f"a folder `{FLOOR_FOLDER}` on the same server where our own aioimaplib client idles (the EXISTS "
        "count maps each push to its mail; ticketgate's MOVEs out of INBOX never disturb it). Dovecot "
        "batches IDLE notifications for about 0.5 s after the first change, so the floor is 0–0.5 s "
        "(a mail arriving inside an open batch window rides along).\n\n"
        f"**Target p99 < {TARGET_S:g} s: {'met' if p99 < TARGET_S else 'NOT met'}** "
        f"({verdicts}; {over} of {len(all_pickups)} at or over {TARGET_S:g} s).\n\n"
        f"**Mail arriving while a mail is being handled** ({len(trials)} trials: B APPENDed as soon "
        "as ticketgate left IDLE and fetched A, then nothing else arrives): "
        + (f"{len(lost)} of {len(trials)} NOT committed within {args.trial_wait:g} s (stranded until the "
           "next mail or the next poll, `poll_seconds`)" if lost else "none stranded")
        + (f"; the others took {', '.join(f'{t * 1000:.0f}' for t in caught)} ms" if caught else "")
        + (". B's EXISTS reaches ticketgate while it runs FETCH/MOVE for A, where aioimaplib drops it "
           "(`ignored untagged response` in the log), and the service goes straight back to IDLE "
           "without searching again, so Dovecot has nothing new to announce" if lost else "")
        + ". The same race is behind the ≈1 s tail above: such a mail waits for the next mail's "
        "notification.\n\n"
        f"**SIGTERM while in IDLE:** {stopped}"
        + (": the IDLE wait does not watch the service's stop event" if nudged else "")
        + f".\n\nLoad average at start: {load:.2f} (other jobs share this machine)."
    )
    print(table)
    if not args.no_report:
        write_section("latency", "python bench/latency_bench.py", table)
    if exit_code != 0 or nudged:
        sys.exit(f"ticketgate did not stop cleanly on SIGTERM; log: {log_path}")


if __name__ == "__main__":
    main()
