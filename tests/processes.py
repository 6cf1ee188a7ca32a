"""Processes a test started, seen through /proc: crash tests prove that nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    """One process, told apart from a later one that reuses its pid by its start time."""

    pid: int
    started: int  # clock ticks after boot (/proc/PID/stat field 22)
    cmdline: str


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) of a process, or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and ")"
    return int(fields[1]), int(fields[19]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> set[Proc]:
    """Every live process below pid (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            children.setdefault(found[0], []).append(int(entry.name))
    result: set[Proc] = set()
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found = _stat(child)
        if found is not None and found[2] != "Z":
            result.add(Proc(child, found[1], _cmdline(child)))
        todo.extend(children.get(child, []))
    return result


def alive(proc: Proc) -> bool:
    """Whether this very process still runs (a zombie does not)."""
    found = _stat(proc.pid)
    return found is not None and found[1] == proc.started and found[2] != "Z"


def wait_gone(procs: Iterable[Proc], timeout: float) -> set[Proc]:
    """Wait until every process has exited (pidfd: woken by the exit itself); return the rest."""
    waiting: dict[int, Proc] = {}
    poller = select.poll()
    for proc in procs:
        try:
            fd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            continue
        if not alive(proc):  # the pid was reused, or it is a zombie already
            os.close(fd)
            continue
        waiting[fd] = proc
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        while waiting and (left := deadline - time.monotonic()) > 0:
            for fd, _event in poller.poll(left * 1000):
                poller.unregister(fd)
                os.close(fd)
                waiting.pop(fd)
    finally:
        for fd in waiting:
            os.close(fd)
    return {proc for proc in waiting.values() if alive(proc)}


def ignores(pid: int, sig: signal.Signals) -> bool:
    """Whether a running process ignores a signal (the SigIgn mask in /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE)[1], 16)  # type: ignore[index]
    return bool(mask >> (sig - 1) & 1)


def kill_all(procs: Iterable[Proc]) -> None:
    """SIGKILL what a test started and left behind (only these very processes)."""
    for proc in procs:
        if alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
