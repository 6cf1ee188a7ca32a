"""IMAP source: the only module that imports aioimaplib.

aioimaplib 2.0.3 dies on responses of ~1,000 lines (RecursionError; the awaited command
never returns), so every command runs under a timeout, fetches go in UID batches of at
most 200, and a timeout is treated as a dead connection: the caller reconnects and resumes
from the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import aioimaplib

from gateway.config import MailboxConfig
from gateway.errors import SourceError, TemporarySourceError

log = logging.getLogger("gateway.imap")

T = TypeVar("T")
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*?(?:UID (\d+))?.*\{(\d+)\}$")
_UID = re.compile(rb"UID (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


def uid_set(uids: Sequence[int]) -> str:
    """A compact IMAP sequence set.

    >>> uid_set([1, 2, 3, 7, 9, 10])
    '1:3,7,9:10'
    """
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid != prev + 1:
            runs.append(f"{start}:{prev}" if start != prev else str(start))
            start = uid
        prev = uid
    runs.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(runs)


def parse_fetch(lines: Sequence[Any]) -> list[tuple[int, bytes]]:
    """(UID, raw bytes) pairs from a UID FETCH (UID BODY.PEEK[]) response."""
    found: list[tuple[int, bytes]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        head = _FETCH_HEAD.match(bytes(line)) if isinstance(line, bytes | bytearray) else None
        if head is None or index + 1 >= len(lines):
            index += 1
            continue
        literal = bytes(lines[index + 1])
        uid_match = head.group(1)
        if uid_match is None and index + 2 < len(lines):  # UID after the literal
            tail = _UID.search(bytes(lines[index + 2]))
            uid_match = tail.group(1) if tail else None
        if uid_match is not None and len(literal) == int(head.group(2)):
            found.append((int(uid_match), literal))
        index += 2
    return found


class ImapMailbox:
    """One logged-in, selected IMAP folder."""

    def __init__(self, config: MailboxConfig) -> None:
        self.config = config
        self.uidvalidity = 0
        self._client: Any = None
        self._idle = False
        self._move = False

    async def _run(self, awaitable: Awaitable[T], what: str) -> T:
        try:
            return await asyncio.wait_for(awaitable, self.config.timeout_seconds)
        except TimeoutError:
            raise TemporarySourceError(f"{self.config.name}: {what} timed out") from None
        except (OSError, aioimaplib.Abort, aioimaplib.CommandTimeout) as exc:
            raise TemporarySourceError(f"{self.config.name}: {what} failed: {exc}") from exc

    async def _ok(self, awaitable: Awaitable[Any], what: str) -> Any:
        response = await self._run(awaitable, what)
        if response.result != "OK":
            detail = b" ".join(bytes(x) for x in response.lines[-1:]).decode("ascii", "replace")
            raise SourceError(f"{self.config.name}: {what} refused: {detail}")
        return response

    async def connect(self) -> None:
        """Connect, log in, select the folder and create the target folders."""
        cfg = self.config
        if cfg.security == "tls":
            client = aioimaplib.IMAP4_SSL(host=cfg.host, port=cfg.port,
                                          timeout=cfg.timeout_seconds)
        else:
            client = aioimaplib.IMAP4(host=cfg.host, port=cfg.port, timeout=cfg.timeout_seconds)
        self._client = client
        await self._run(client.wait_hello_from_server(), "greeting")
        if client.protocol.state == "NONAUTH" and client.protocol.capabilities == set():
            raise TemporarySourceError(f"{cfg.name}: no greeting from {cfg.host}:{cfg.port}")
        response = await self._run(client.login(cfg.username, cfg.password), "login")
        if response.result != "OK":
            raise SourceError(f"{cfg.name}: login as {cfg.username!r} refused by {cfg.host}")
        for folder in (cfg.processed_folder, cfg.failed_folder):
            if folder:
                await self._run(client.create(folder), f"create {folder}")  # NO if it exists
        response = await self._ok(client.select(cfg.folder), f"select {cfg.folder}")
        for line in response.lines:
            found = _UIDVALIDITY.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if found:
                self.uidvalidity = int(found.group(1))
        caps = client.protocol.capabilities
        self._idle = self.config.idle and "IDLE" in caps
        self._move = "MOVE" in caps

    async def search(self, first_uid: int | None) -> list[int]:
        """UIDs in the folder (from first_uid on, when given), ascending."""
        criteria = f"UID {first_uid}:*" if first_uid else "ALL"
        response = await self._ok(self._client.uid_search(criteria, charset=None), "search")
        uids: list[int] = []
        for line in response.lines[:-1]:
            uids.extend(int(tok) for tok in bytes(line).split() if tok.isdigit())
        # "n:*" always matches the newest mail, even below n: filter.
        return sorted(u for u in set(uids) if first_uid is None or u >= first_uid)

    async def fetch(self, uids: Sequence[int]) -> list[tuple[int, bytes]]:
        """Raw bytes of these mails (at most batch_size at a time), without setting \\Seen."""
        response = await self._ok(
            self._client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])"), "fetch"
        )
        return parse_fetch(response.lines)

    async def settle(self, uids: Sequence[int], folder: str | None) -> None:
        """Move mails to folder, or mark them \\Seen when no folder is configured."""
        if not uids:
            return
        which = uid_set(uids)
        if folder and self._move:
            response = await self._run(self._client.uid("move", which, folder), "move")
            if response.result != "OK":  # already moved by another process: nothing to do
                log.debug("%s move %s: %s", self.config.name, which, response.lines[-1:])
            return
        if folder:
            await self._ok(self._client.uid("copy", which, folder), "copy")
            await self._ok(self._client.uid("store", which, "+FLAGS", r"(\Seen \Deleted)"),
                           "store")
            await self._ok(self._client.expunge(), "expunge")
            return
        await self._ok(self._client.uid("store", which, "+FLAGS", r"(\Seen)"), "store")

    async def wait_for_mail(self, seconds: float, stop: asyncio.Event) -> None:
        """Return when new mail may have arrived (IDLE push, or seconds passed) or on stop."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            if not self._idle:
                await asyncio.wait({stopping}, timeout=seconds)
                return
            await self._idle_until_push(seconds, stopping)
        finally:
            stopping.cancel()

    async def _idle_until_push(self, seconds: float, stopping: asyncio.Future[Any]) -> None:
        client = self._client
        idle = await self._run(client.idle_start(timeout=seconds), "idle")
        loop = asyncio.get_running_loop()
        try:
            deadline = loop.time() + seconds
            while not stopping.done():
                left = deadline - loop.time()
                if left <= 0:
                    break
                push = asyncio.ensure_future(client.wait_server_push(timeout=left))
                await asyncio.wait({push, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not push.done():
                    push.cancel()  # shutting down: leave IDLE now
                    break
                try:
                    lines = push.result()
                except TimeoutError:
                    break
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH or any(
                    b"EXISTS" in bytes(x) for x in lines if isinstance(x, bytes | bytearray)
                ):
                    break
        finally:
            if client.has_pending_idle():
                client.idle_done()
            await self._run(idle, "idle done")

    async def close(self) -> None:
        """Log out; a dead connection is simply dropped."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await asyncio.wait_for(client.logout(), 5)
        except Exception:  # closing a broken connection: nothing left to save
            log.debug("%s logout failed", self.config.name)
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()
