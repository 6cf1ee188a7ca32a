"""Crash safety: SIGKILL at random points, Dovecot restarts, two services at once: every mail once."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import func, select

from store.db import transaction
from store.models import Message
from tests.conftest import mail, start_service, write_config
from tests.servers.dovecot import Dovecot

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


def test_sigkill_at_random_points_loses_and_doubles_nothing(
    engine: Engine, dovecot: Dovecot, folder: str, tmp_path: Path
) -> None:
    expected = _seed(dovecot, folder, 400)
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder)
    rng = random.Random(os.environ.get("TICKETGATE_CRASH_SEED", "20261123"))
    kills = 0
    for _round in range(6):
        before = _stored(engine)[0]
        if before == len(expected):
            break
        proc = start_service(config, log=tmp_path / "service.log")
        # Kill only once it is ingesting: after it stored something, at a random moment.
        _wait_for(lambda b=before, p=proc: _stored(engine)[0] > b or p.poll() is not None,
                  60, "the service to store a mail")
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 3, "the service finished too fast to be killed mid-run"
    final = start_service(config, "--once", log=tmp_path / "service.log")
    assert final.wait(timeout=120) == 0, (tmp_path / "service.log").read_text()[-3000:]
    _assert_exactly_once(engine, dovecot, folder, expected)


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
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, (tmp_path / "service.log").read_text()[-3000:]
    _assert_exactly_once(engine, dovecot, folder, expected)
    log = (tmp_path / "service.log").read_text()
    assert log.count("unavailable, retrying") <= 2 * 2  # one line per outage, not per attempt


def test_two_services_on_one_mailbox_store_each_mail_once(
    engine: Engine, dovecot: Dovecot, folder: str, tmp_path: Path
) -> None:
    expected = _seed(dovecot, folder, 300)
    config = write_config(tmp_path / "config.toml", engine, dovecot, folder)
    first = start_service(config, "--once", log=tmp_path / "a.log")
    second = start_service(config, "--once", log=tmp_path / "b.log")
    assert first.wait(timeout=180) == 0, (tmp_path / "a.log").read_text()[-3000:]
    assert second.wait(timeout=180) == 0, (tmp_path / "b.log").read_text()[-3000:]
    # A mail one process had fetched when the other moved it is picked up by the next pass.
    last = start_service(config, "--once", log=tmp_path / "c.log")
    assert last.wait(timeout=120) == 0
    _assert_exactly_once(engine, dovecot, folder, expected)


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
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    assert time.monotonic() - started < 10  # not poll_seconds later
    _assert_exactly_once(engine, dovecot, folder, expected)
