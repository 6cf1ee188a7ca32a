"""Crash safety: SIGKILL at random points, Dovecot restarts, two services at once: every mail
once, and no process left behind."""

from __future__ import annotations

import os
import random
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from store.db import transaction
from store.models import Message, Ticket
from tests.conftest import Stopped, mail, start_service, stop_service, wait_service, write_config
from tests.processes import Proc, ignores
from tests.servers.dovecot import Dovecot
from tests.servers.imapcut import CommandCut

pytestmark = pytest.mark.slow


def _stored(engine: Engine) -> tuple[int, set[str]]:
    with transaction(engine) as session:
        inbound = Message.direction == "in"
        count = session.exec(select(func.count()).select_from(Message).where(inbound)).one()
        ids = set(session.exec(select(Message.message_id).where(inbound)).all())
    return count, ids


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _assert_exactly_once(engine: Engine, dovecot: Dovecot, folder: str, expected: set[str]) -> None:
    count, ids = _stored(engine)
    assert ids == expected, f"missing {sorted(expected - ids)[:5]}, extra {sorted(ids - expected)[:5]}"
    assert count == len(expected)  # no message stored twice
    assert dovecot.count(folder=folder) == 0
    done = dovecot.message_ids(folder=f"{folder}/done")
    assert sorted(done) == sorted(f"<{m}>" for m in expected)  # moved once each, none lost


def _seed(dovecot: Dovecot, folder: str, n: int) -> set[str]:
    dovecot.seed((mail(f"{folder}-{i}") for i in range(n)), folder=folder)
    return {f"m-{folder}-{i}@example.org" for i in range(n)}


def _fetched_uids(log: Path, box: str) -> list[int]:
    """Every UID this process fetched, from its log ("BOX fetched N mail(s): UIDs 1:25,27")."""
    uids: list[int] = []
    for found in re.finditer(rf"^.*{re.escape(box)} fetched \d+ mail\(s\): UIDs (\S+)$",
                             log.read_text(), re.MULTILINE):
        for run in found.group(1).split(","):
            first, _, last = run.partition(":")
            uids.extend(range(int(first), int(last or first) + 1))
    return uids


def _is_parse_worker(proc: Proc) -> bool:
    return "multiprocessing.spawn" in proc.cmdline


@pytest.mark.parametrize("imap_server", ["move", "no-move"], indirect=True)
def test_sigkill_at_random_points_loses_and_doubles_nothing(
    engine: Engine, imap_server: Dovecot, folder: str, tmp_path: Path
) -> None:
    expected = _seed(imap_server, folder, 400)
    config = write_config(tmp_path / "config.toml", engine, imap_server, folder)
    rng = random.Random(os.environ.get("TICKETGATE_CRASH_SEED", "20261123"))
    killed: list[Stopped] = []
    for _round in range(6):
        before = _stored(engine)[0]
        if before == len(expected):
            break
        proc = start_service(config, log=tmp_path / "service.log")
        # Kill only once it is ingesting: after it stored something, at a random moment.
        _wait_for(lambda b=before, p=proc: _stored(engine)[0] > b or p.poll() is not None,
                  60, "the service to store a mail")
        time.sleep(rng.uniform(0.0, 0.6))
        killed.append(stop_service(proc, signal.SIGKILL))
    assert len(killed) >= 3, "the service finished too fast to be killed mid-run"
    # Services died with their parse worker (and resource tracker) running; none outlived it.
    assert any(_is_parse_worker(p) for k in killed for p in k.started), killed
    assert [k.left for k in killed] == [frozenset()] * len(killed)
    final = start_service(config, "--once", log=tmp_path / "service.log")
    assert wait_service(final) == 0, (tmp_path / "service.log").read_text()[-3000:]
    _assert_exactly_once(engine, imap_server, folder, expected)


@pytest.mark.parametrize("held", ["UID COPY", "UID STORE", "UID EXPUNGE"])
def test_sigkill_around_the_copy_without_move_files_each_mail_once(
    engine: Engine, dovecot_without_move: Dovecot, folder: str, tmp_path: Path, held: str
) -> None:
    """Killed just before its COPY, STORE or EXPUNGE reached the server: the restart files each
    mail once (a COPY that happened is not repeated), one ticket each."""
    server = dovecot_without_move
    expected = _seed(server, folder, 3)
    config = write_config(tmp_path / "config.toml", engine, server, folder)
    with CommandCut(server.host, server.port, rb"^\S+ " + held.encode() + rb" ") as cut:
        relayed = tmp_path / "relayed.toml"
        relayed.write_text(config.read_text().replace(f"port = {server.port}\n",
                                                      f"port = {cut.port}\n"))
        proc = start_service(relayed, log=tmp_path / "service.log")
        try:
            assert cut.held.wait(60), (tmp_path / "service.log").read_text()[-3000:]
        finally:
            killed = stop_service(proc, signal.SIGKILL)
    assert killed.left == frozenset()
    assert server.count(folder=folder) == 3  # the crash left every mail in the folder
    copies_before = server.message_ids(folder=f"{folder}/done")
    assert len(copies_before) == (0 if held == "UID COPY" else 3)
    final = start_service(config, "--once", log=tmp_path / "service.log")
    assert wait_service(final) == 0, (tmp_path / "service.log").read_text()[-3000:]
    _assert_exactly_once(engine, server, folder, expected)
    with transaction(engine) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 3


def test_dovecot_restarts_mid_run_lose_and_double_nothing(
    engine: Engine, dovecot: Dovecot, folder: str, tmp_path: Path
) -> None:
    expected = _seed(dovecot, folder, 300)
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder)
    proc = start_service(config, log=tmp_path / "service.log")
    try:
        for _restart in range(2):
            before = _stored(engine)[0]
            _wait_for(lambda b=before: _stored(engine)[0] > b, 60, "progress before a restart")
            dovecot.kill()  # the hard way: connections die mid-command
            dovecot.restart()
        _wait_for(lambda: _stored(engine)[0] >= len(expected), 120, "all mail after restarts")
        _wait_for(lambda: dovecot.count(folder=folder) == 0, 60, "all mail moved")
    finally:
        stopped = stop_service(proc)
    assert stopped.code == 0, (tmp_path / "service.log").read_text()[-3000:]
    assert stopped.left == frozenset()
    _assert_exactly_once(engine, dovecot, folder, expected)
    log = (tmp_path / "service.log").read_text()
    assert log.count("unavailable, retrying") <= 2 * 2  # one line per outage, not per attempt


@pytest.mark.parametrize("imap_server", ["move", "no-move"], indirect=True)
def test_two_services_at_once_never_fetch_the_same_mail(
    engine: Engine, imap_server: Dovecot, folder: str, tmp_path: Path
) -> None:
    """Both run at once on a large mailbox; the one draining it stops mid-way, the other takes
    over. Without MOVE the lease is all that keeps both from copying the same mails."""
    expected = _seed(imap_server, folder, 400)
    config = write_config(tmp_path / "config.toml", engine, imap_server, folder)
    box = f"box-{folder}"
    logs = {name: tmp_path / f"{name}.log" for name in "ab"}
    procs = {name: start_service(config, log=log) for name, log in logs.items()}  # together
    stopped: dict[str, Stopped] = {}
    try:
        _wait_for(lambda: _stored(engine)[0] >= 100, 60, "100 mails stored")
        fetching = [name for name, log in logs.items() if _fetched_uids(log, box)]
        assert len(fetching) == 1, "both services are fetching from the mailbox at once"
        first, other = fetching[0], ({"a", "b"} - set(fetching)).pop()
        _wait_for(lambda: "held by another process" in logs[other].read_text(), 60,
                  "the second service to find the mailbox taken")
        stopped[first] = stop_service(procs[first])  # mid-mailbox: ends after its batch
        left_over = len(expected) - _stored(engine)[0]
        _wait_for(lambda: _stored(engine)[0] == len(expected), 120, "the rest of the mailbox")
        _wait_for(lambda: imap_server.count(folder=folder) == 0, 60, "every mail moved")
    finally:
        for name, proc in procs.items():
            stopped.setdefault(name, stop_service(proc))
    assert [s.code for s in stopped.values()] == [0, 0]
    assert [s.left for s in stopped.values()] == [frozenset(), frozenset()]
    assert left_over > 0, "the first service had finished the mailbox before it was stopped"
    by_first, by_other = _fetched_uids(logs[first], box), _fetched_uids(logs[other], box)
    assert by_first and by_other  # each drained a part: the lease was handed over
    both = sorted(set(by_first) & set(by_other))
    assert both == [], f"{len(both)} mails fetched by both services, e.g. UIDs {both[:10]}"
    assert len(by_first) + len(by_other) == len(expected)  # and neither fetched one twice
    _assert_exactly_once(engine, imap_server, folder, expected)


def test_sigterm_while_idle_stops_at_once(engine: Engine, dovecot: Dovecot, folder: str,
                                           tmp_path: Path) -> None:
    expected = _seed(dovecot, folder, 1)
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder)
    text = config.read_text().replace("poll_seconds = 1", "poll_seconds = 300")
    config.write_text(text)
    proc = start_service(config, log=tmp_path / "service.log")
    try:
        _wait_for(lambda: _stored(engine)[0] == 1, 60, "the first mail")
        _wait_for(lambda: dovecot.count(folder=folder) == 0, 30, "the mail moved")
        # At its default, SIGPIPE would kill the service writing to a connection a server dropped.
        assert ignores(proc.pid, signal.SIGPIPE)
    finally:
        started = time.monotonic()
        stopped = stop_service(proc)
    assert stopped.code == 0 and stopped.left == frozenset()
    assert time.monotonic() - started < 10  # not poll_seconds later
    _assert_exactly_once(engine, dovecot, folder, expected)
