"""Parse-ahead in a worker process: the same result, a dead worker loses nothing, a dead service
leaves no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from gateway.intake.parse import parse_mail
from gateway.intake.parsepool import MIN_BATCH, ParsePool
from tests.conftest import ROOT, mail
from tests.processes import Proc, descendants, kill_all, wait_gone


async def test_worker_parses_like_the_main_process() -> None:
    mails = [mail(n, f"Frage {n}", body=f"Grüße {n}") for n in range(MIN_BATCH)]
    pool = ParsePool(1, "nh3", 10_000_000)
    try:
        ahead = pool.parse_ahead(mails)
        results = [await pool.result(job) for job in ahead]
    finally:
        pool.close()
    assert [r.subject if r else None for r in results] == [parse_mail(m).subject for m in mails]
    assert all(r is not None and r.text == parse_mail(m).text for r, m in zip(results, mails, strict=True))


async def test_small_batches_and_huge_mails_are_left_to_the_pipeline() -> None:
    pool = ParsePool(1, "nh3", 100)
    try:
        assert pool.parse_ahead([mail(1)]) == [None]  # the IDLE path: no added latency
        ahead = pool.parse_ahead([mail(n) for n in range(MIN_BATCH)])
        assert ahead == [None] * MIN_BATCH  # each is over max_bytes
    finally:
        pool.close()


def test_the_worker_starts_while_a_backlog_is_fetched_and_not_for_a_few_mails() -> None:
    pool = ParsePool(1, "nh3", 10_000_000)
    try:
        pool.warm_up(MIN_BATCH - 1)  # the IDLE path: no worker process for a mail or two
        assert pool._pool is None
        pool.warm_up(MIN_BATCH)
        assert pool._pool is not None and pool._pool._processes  # spawned before any parse
    finally:
        pool.close()


async def test_a_killed_worker_turns_parse_ahead_off() -> None:
    mails = [mail(n) for n in range(MIN_BATCH)]
    pool = ParsePool(1, "nh3", 10_000_000)
    try:
        await pool.result(pool.parse_ahead(mails)[0])  # the worker is up
        assert pool._pool is not None
        for pid in list(pool._pool._processes):  # simulate the OOM killer
            os.kill(pid, signal.SIGKILL)
        results = [await pool.result(job) for job in pool.parse_ahead(mails)]
    finally:
        pool.close()
    assert None in results  # those mails are parsed by the pipeline instead
    assert pool.workers == 0
    assert pool.parse_ahead(mails) == [None] * MIN_BATCH


SERVICE_WITH_A_WORKER = """
import asyncio, sys, time
from gateway.intake.parsepool import MIN_BATCH, ParsePool
from tests.conftest import mail

async def main():
    pool = ParsePool(1, "nh3", 10_000_000)
    [await pool.result(job) for job in pool.parse_ahead([mail(n) for n in range(MIN_BATCH)])]
    print("parsed", flush=True)
    time.sleep(600)  # until the test kills it

asyncio.run(main())
"""


def test_worker_and_resource_tracker_exit_when_the_service_is_killed() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    service = subprocess.Popen([sys.executable, "-c", SERVICE_WITH_A_WORKER], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE)
    below: set[Proc] = set()
    try:
        assert service.stdout is not None and service.stdout.readline() == b"parsed\n"
        below = descendants(service.pid)
        kinds = sorted("tracker" if "resource_tracker" in p.cmdline else "worker" for p in below)
        assert kinds == ["tracker", "worker"], below
        service.send_signal(signal.SIGKILL)
        assert service.wait(timeout=30) == -signal.SIGKILL
        left = wait_gone(below, timeout=30)
    finally:
        service.kill()
        service.wait()
        kill_all(below)  # reap what the test started, even when the assertion below fails
    assert left == set(), f"left behind after SIGKILL of the service: {left}"
