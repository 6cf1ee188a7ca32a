"""What the ingest, memory and faults benchmarks share: configs, measured child processes, stored mail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlmodel import select

from store.db import make_engine, transaction
from store.keys import message_key
from store.models import Message, QuarantinedMail
from tests.servers.dovecot import Dovecot

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench"
TICKETGATE = ROOT / ".venv" / "bin" / "ticketgate"


@dataclass
class Usage:
    """Wall time, CPU seconds and peak RSS of one finished child process."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int


def start(cmd: list[str], log: Path, stdout: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a child with stderr (and stdout, unless given its own file) going to log files."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as err, (stdout or log).open("ab") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT)


# Linux keeps a process's ru_maxrss across exec, and a child starts with its parent's: a child
# of this (big) benchmark process would report at least our own RSS. So a small wrapper process
# forks the measured command and reports the wait4 rusage of that grandchild alone.
_WRAPPER = """
import json, os, signal, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, _f: os.kill(pid, s))
_, status, usage = os.wait4(pid, 0)
with open(out, "w") as handle:
    json.dump({"wall": time.perf_counter() - started, "cpu": usage.ru_utime + usage.ru_stime,
               "rss_kb": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status)}, handle)
"""


class Measured:
    """A child process whose own wall time, CPU seconds and peak RSS are measured."""

    def __init__(self, cmd: list[str], log: Path, stdout: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.report = log.with_name(f"{log.name}.{time.monotonic_ns()}.usage.json")
        self.started = time.perf_counter()
        with log.open("ab") as err, (stdout or log).open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-S", "-c", _WRAPPER, str(self.report), *cmd],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT,
                                         env=env, start_new_session=True)

    def wait(self, timeout: float = 3600) -> Usage:
        """Wait (killing the child's process group after timeout) and return its usage."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        try:
            data = json.loads(self.report.read_text())
            self.report.unlink()
        except (OSError, ValueError):
            return Usage(time.perf_counter() - self.started, float("nan"), float("nan"), -9)
        return Usage(data["wall"], data["cpu"], data["rss_kb"] / 1024, data["code"])  # KiB on Linux


def measure(cmd: list[str], log: Path, stdout: Path | None = None, timeout: float = 3600) -> Usage:
    """Run a child to the end and measure it."""
    return Measured(cmd, log, stdout).wait(timeout)


def toml_value(value: object) -> str:
    """A TOML literal for a str, bool, int or float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def write_config(path: Path, db: Path, dovecot: Dovecot | None = None, user: str = "support",
                 folder: str = "INBOX", rules: bool = False, max_bytes: int | None = None,
                 sanitizer: str | None = None, **mailbox: object) -> Path:
    """A ticketgate config: SQLite at db, one channel and agent, optionally one IMAP mailbox."""
    lines = ['own_domains = ["example.com"]', "[database]", f"url = {toml_value(f'sqlite:///{db}')}"]
    if rules:
        lines += ["[rules]", f"folder = {toml_value(ROOT / 'rules')}"]
    if sanitizer is not None:
        lines += ["[html]", f"sanitizer = {toml_value(sanitizer)}"]
    if max_bytes is not None:
        lines += ["[limits]", f"max_message_bytes = {max_bytes}"]
    lines += ["[[channel]]", 'name = "support"', 'address = "support@example.com"']
    if rules:  # the example rules route to this channel
        lines += ["[[channel]]", 'name = "hotline"', 'address = "hotline@example.com"']
    lines += ["[[agent]]", 'address = "alice@example.com"', 'name = "alice"', 'display_name = "Alice"']
    if dovecot is not None:
        table: dict[str, object] = {
            "name": f"bench-{user}", "host": dovecot.host, "port": dovecot.port, "security": "none",
            "username": user, "password": dovecot.password, "folder": folder,
            "processed_folder": f"{folder}/Processed" if folder != "INBOX" else "Processed",
            "failed_folder": f"{folder}/Failed" if folder != "INBOX" else "Failed",
            "batch_size": 100, "timeout_seconds": 60, "poll_seconds": 1,
        }
        table.update(mailbox)
        lines += ["[[mailbox]]", *(f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Stored:
    """What ticketgate's database holds of the inbound mail."""

    message_ids: Counter[str]  # Message-ID (no brackets) -> how many inbound rows
    quarantined_keys: Counter[str]  # message_key -> how many quarantine rows

    def accounting(self, expected: list[str]) -> tuple[int, int]:
        """(lost, doubled) against the Message-IDs that were delivered (without brackets)."""
        lost = doubled = 0
        for mid in expected:
            rows = self.message_ids.get(mid, 0) + self.quarantined_keys.get(message_key(mid), 0)
            lost += rows == 0
            doubled += max(rows - 1, 0)
        return lost, doubled


def stored(db: Path) -> Stored:
    """Inbound messages and quarantined mails in a ticketgate SQLite database."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with transaction(engine) as session:
            ids = session.exec(select(Message.message_id).where(Message.direction == "in")).all()
            keys = session.exec(select(QuarantinedMail.message_key)).all()
    finally:
        engine.dispose()
    return Stored(Counter(ids), Counter(keys))


def bare_ids(raws: list[bytes]) -> list[str]:
    """The Message-IDs of raw mails, without angle brackets (every generated mail has one)."""
    found = []
    for raw in raws:
        head = raw.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                found.append(line.split(b":", 1)[1].strip().strip(b"<>").decode())
                break
    return found
