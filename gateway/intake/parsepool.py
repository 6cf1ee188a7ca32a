"""Parse ahead in a worker process, so parsing one mail overlaps storing the one before.

Parsing is pure CPU and needs no database, so on a machine with a second core a batch of
fetched mails is handed to a worker process while the main process stores them in order.
Small batches (the IDLE path: one mail at a time) are parsed in place: no latency is added.
The worker ends itself when the service dies, even by SIGKILL: no orphan keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor

from gateway.intake.htmltext import SANITIZERS
from gateway.intake.parse import ParsedMail, parse_mail
from store.packing import pack

log = logging.getLogger("gateway.parse")

MIN_BATCH = 8
MAX_AHEAD_BYTES = 4 * 1024 * 1024
"""Larger mails are parsed in place: their big parts are cut out before parsing anyway
(``spool.py``), and sending their files back from the worker would hold them twice."""


def exit_with_parent() -> None:
    """Worker initializer: a thread that ends the worker as soon as the service is gone.

    A spawned child holds a pipe whose other end only its parent keeps open
    (``multiprocessing.parent_process()``'s sentinel), so the thread wakes on the parent's
    death itself, however it died, with no polling. Unlike ``PR_SET_PDEATHSIG`` this is not
    Linux-only and does not fire when merely the parent *thread* that started the worker
    ends. With the worker gone, the resource tracker sees its pipe close and exits too.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: nothing to watch
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the sentinel pipe is closed
        os._exit(1)  # no cleanup to do: the parent that wanted the results is gone

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parse_in_worker(data: bytes, sanitizer: str) -> ParsedMail | None:
    """Runs in the worker; None on any failure (the main process re-parses and quarantines).

    The original is packed for the blob table here too: compressing it is the costliest
    part of storing a mail, and this process has a core of its own.
    """
    try:
        parsed = parse_mail(data, SANITIZERS[sanitizer])
        parsed.packed_original = pack(data)
        return parsed
    except Exception:  # the pipeline repeats the parse in its own try block and records why
        return None


class ParsePool:
    """A lazily started worker pool for parse-ahead."""

    def __init__(self, workers: int, sanitizer: str, max_bytes: int) -> None:
        self.workers, self.sanitizer, self.max_bytes = workers, sanitizer, max_bytes
        self._pool: ProcessPoolExecutor | None = None

    def parse_ahead(self, mails: list[bytes]) -> list[asyncio.Future[ParsedMail | None] | None]:
        """Start parsing a batch; None entries are left to the pipeline (small batch, huge mail)."""
        if self.workers <= 0 or len(mails) < MIN_BATCH:
            return [None] * len(mails)
        pool = self._started()
        futures: list[asyncio.Future[ParsedMail | None] | None] = []
        for data in mails:
            if len(data) > min(self.max_bytes, MAX_AHEAD_BYTES):
                futures.append(None)
                continue
            job: Future[ParsedMail | None] = pool.submit(parse_in_worker, data, self.sanitizer)
            futures.append(asyncio.wrap_future(job))
        return futures

    def warm_up(self, waiting: int) -> None:
        """Start the worker while the first batch is fetched, when that many mails wait that
        parse-ahead will be used (a spawned worker takes a while to import the parser)."""
        if self.workers > 0 and self._pool is None and waiting >= MIN_BATCH:
            self._started().submit(int)  # a first job: the executor spawns its worker now

    def _started(self) -> ProcessPoolExecutor:
        """The worker pool, made on first use (a service that never gets a batch has none)."""
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # no fork of a threaded process
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                             initializer=exit_with_parent)
        return self._pool

    async def result(self, parsing: asyncio.Future[ParsedMail | None] | None) -> ParsedMail | None:
        """The parsed mail, or None: then the pipeline parses it in place (and quarantines
        it with the reason if it fails there too). A dead worker turns parse-ahead off."""
        if parsing is None:
            return None
        try:
            return await parsing
        except Exception as exc:  # BrokenProcessPool and friends: never lose the mail over it
            if self.workers > 0:
                log.warning("parse worker failed (%s); parsing in the main process from now on",
                            exc)
                self.workers = 0
            return None

    def close(self) -> None:
        """Stop the worker (waits for running parses)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
