"""IMAP source: the only module that imports aioimaplib.

aioimaplib 2.0.3 dies on responses of ~1,000 lines (RecursionError; the awaited command
never returns), so every command runs under a timeout, fetches go in UID batches of at
most 200, and a timeout is treated as a dead connection: the caller reconnects and resumes
from the ledger.

Sign-in: LOGIN with a password, or AUTHENTICATE OAUTHBEARER / XOAUTH2 with an access token
(``gateway.auth``). aioimaplib's own ``xoauth2()`` hangs on a rejected token (it never answers
the server's error challenge), so AUTHENTICATE is driven here and answers it. aioimaplib has
no STARTTLS: after the server's OK the connection is upgraded with the event loop's
``start_tls``; if anything fails, nothing is sent in plain text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
from collections.abc import Awaitable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

import aioimaplib

from gateway.auth.sasl import abort_reply, failure_detail, initial_response
from gateway.auth.signin import Credentials, PasswordSignIn, SignIn
from gateway.auth.tls import client_context, tls_problem
from gateway.config import MailboxConfig
from gateway.errors import SignInError, SourceError, TemporarySourceError
from gateway.intake.mailboxnames import wire_name

log = logging.getLogger("gateway.imap")

T = TypeVar("T")
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*?(?:UID (\d+))?.*\{(\d+)\}$")
_UID = re.compile(rb"UID (\d+)")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UIDNEXT = re.compile(rb"UIDNEXT (\d+)")


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


def _login_refused(cfg: MailboxConfig, username: str, lines: Sequence[Any]) -> SourceError:
    """A refused LOGIN: for now ([UNAVAILABLE], RFC 5530) or for good, naming the fix."""
    said = b" ".join(bytes(x) for x in lines).decode("ascii", "replace").strip()[:200]
    if "[UNAVAILABLE]" in said.upper():
        return TemporarySourceError(f"{cfg.name}: {cfg.host} cannot sign {username!r} in now: {said}")
    return SignInError(
        f"{cfg.name}: {cfg.host} refused the login of {username!r} ({said or 'no reason given'}): "
        f"wrong user name or password? Fix username and password (or the variable password_env "
        f"names) of [[mailbox]] {cfg.name!r}, then try `ticketgate run --once`")


class _Authenticate(aioimaplib.Command):  # type: ignore[misc]
    """AUTHENTICATE that answers each server challenge ("+ ...") with the next of answers.

    With SASL-IR the token goes in the command and the only challenge is an error report, which
    the client must answer before the server sends its final NO.
    """

    def __init__(self, protocol: Any, mechanism: str, initial: str | None, answers: list[str]) -> None:
        args = (mechanism, initial) if initial is not None else (mechanism,)
        super().__init__("AUTHENTICATE", protocol.new_tag(), *args, loop=protocol.loop)
        self._protocol, self._answers = protocol, answers
        self.challenge = ""

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        super().append_to_resp(line, result)
        if result == "Pending" and line.startswith(b"+"):
            self.challenge = line[1:].strip().decode("ascii", "replace")
            answer = self._answers.pop(0) if self._answers else "*"  # "*" cancels (RFC 3501)
            self._protocol.transport.write(answer.encode("ascii") + b"\r\n")


class ImapMailbox:
    """One logged-in, selected IMAP folder."""

    def __init__(self, config: MailboxConfig, signin: SignIn | None = None) -> None:
        self.config = config
        if signin is None:
            if config.auth != "password" or config.password is None:
                raise ValueError(f"{config.name}: auth = {config.auth!r} needs a SignIn")
            signin = PasswordSignIn(config.username, config.password)
        self.signin = signin
        self.uidvalidity = 0
        self.renew_at: datetime | None = None  # sign in again by then (the access token expires)
        self._client: Any = None
        self._idle = False
        self._move = False
        self._uidplus = False

    @property
    def moves(self) -> bool:
        """Whether the server has MOVE (else mail is filed by COPY, STORE \\Deleted, EXPUNGE)."""
        return self._move

    @property
    def tls_version(self) -> str | None:
        """The TLS version of the connection ("TLSv1.3"), None when it is plain text."""
        transport = getattr(getattr(self._client, "protocol", None), "transport", None)
        found = transport.get_extra_info("ssl_object") if transport is not None else None
        return str(found.version()) if found is not None else None

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
        """Connect (TLS, STARTTLS or plain), sign in, select the folder, create the target folders."""
        cfg = self.config
        client = await self._open()
        await self._sign_in(client)
        for folder in (cfg.processed_folder, cfg.failed_folder):
            if folder:
                await self._run(client.create(wire_name(folder)), f"create {folder}")  # NO if it exists
        self.uidvalidity = await self._select()
        caps = client.protocol.capabilities
        self._idle = self.config.idle and "IDLE" in caps
        self._move = "MOVE" in caps
        self._uidplus = "UIDPLUS" in caps

    async def _select(self) -> int:
        """Select the folder; its UIDVALIDITY."""
        folder = self.config.folder
        response = await self._ok(self._client.select(wire_name(folder)), f"select {folder}")
        for line in response.lines:
            found = _UIDVALIDITY.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if found:
                return int(found.group(1))
        return 0

    async def _open(self) -> Any:
        """A connection that has greeted us, encrypted unless security = "none"."""
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        context = client_context(cfg.ca_file) if cfg.security != "none" else None
        if cfg.security == "tls":
            client = aioimaplib.IMAP4_SSL(host=cfg.host, port=cfg.port,
                                          timeout=cfg.timeout_seconds, ssl_context=context)
        else:
            client = aioimaplib.IMAP4(host=cfg.host, port=cfg.port, timeout=cfg.timeout_seconds)
        self._client = client
        try:
            await self._greeting(client, where)
        except TemporarySourceError as exc:
            problem = tls_problem(exc.__cause__, where, cfg.ca_file) if exc.__cause__ else None
            if problem:
                raise SignInError(f"{cfg.name}: {problem}") from exc
            raise
        if client.protocol.state == "NONAUTH" and client.protocol.capabilities == set():
            raise TemporarySourceError(f"{cfg.name}: no greeting from {where}")
        if cfg.security == "starttls":
            assert context is not None
            await self._starttls(client, context)
        return client

    async def _greeting(self, client: Any, where: str) -> None:
        """Connect and wait for the server's hello, within connect_timeout_seconds."""
        limit = self.config.connect_timeout_seconds
        try:
            await asyncio.wait_for(client.wait_hello_from_server(), limit)
        except TimeoutError:
            raise TemporarySourceError(
                f"{self.config.name}: no answer from {where} within {limit:g} s "
                "(connect_timeout_seconds): wrong host or port, or a firewall?") from None
        except (OSError, aioimaplib.Abort, aioimaplib.CommandTimeout) as exc:
            raise TemporarySourceError(f"{self.config.name}: cannot connect to {where}: {exc}") from exc

    async def _starttls(self, client: Any, context: ssl.SSLContext) -> None:
        """Upgrade to TLS after the server's OK; any failure ends the connection, never plain text."""
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise SignInError(f"{cfg.name}: {where} does not offer STARTTLS; not signing in without "
                              "TLS (security = \"tls\" for port 993?)")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._run(protocol.execute(command), "STARTTLS")
        if response.result != "OK":
            raise SignInError(f"{cfg.name}: {where} refused STARTTLS ({response.result}); not "
                              "signing in without TLS")
        loop = asyncio.get_running_loop()
        try:
            protocol.transport = await asyncio.wait_for(
                loop.start_tls(protocol.transport, protocol, context, server_hostname=cfg.host),
                cfg.timeout_seconds)
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            protocol.state = aioimaplib.LOGOUT
            problem = tls_problem(exc, where, cfg.ca_file) or (
                f"TLS handshake with {where} after STARTTLS failed ({type(exc).__name__}: {exc}); "
                "not continuing in plain text")
            raise SignInError(f"{cfg.name}: {problem}") from exc
        await self._run(protocol.capability(), "capability")  # what the server said before TLS is void

    async def _sign_in(self, client: Any) -> None:
        """LOGIN or AUTHENTICATE; a refused token is renewed once, then the refusal is final."""
        cfg = self.config
        creds = await self.signin.credentials()
        if not creds.oauth:
            response = await self._run(client.login(creds.username, creds.secret), "login")
            if response.result != "OK":
                raise _login_refused(cfg, creds.username, response.lines[-1:])
        else:
            refused = await self._authenticate(client, creds)
            if refused:
                log.info("%s: access token refused (%s): getting a new one", cfg.name, refused)
                creds = await self.signin.credentials(renew=True)
                refused = await self._authenticate(client, creds)
            if refused:
                raise SignInError(
                    f"{cfg.name}: {cfg.host} refused the sign-in of {creds.username!r} even with a new "
                    f"access token ({refused}): check that the app may open this mailbox (scopes, "
                    f"IMAP enabled), then run `ticketgate auth login {cfg.name}`")
        self.renew_at = creds.renew_at
        await self._run(client.protocol.capability(), "capability")  # MOVE etc. appear now

    async def _authenticate(self, client: Any, creds: Credentials) -> str:
        """SASL OAUTHBEARER (when offered) or XOAUTH2; "" when signed in, else why not."""
        cfg = self.config
        protocol = client.protocol
        caps = protocol.capabilities
        mechanism = "OAUTHBEARER" if "AUTH=OAUTHBEARER" in caps else "XOAUTH2"
        if f"AUTH={mechanism}" not in caps:
            raise SignInError(f"{cfg.name}: {cfg.host} offers neither XOAUTH2 nor OAUTHBEARER; "
                              "use auth = \"password\" for this server")
        initial = initial_response(mechanism, creds.username, creds.secret, cfg.host, cfg.port)
        with_ir = "SASL-IR" in caps
        answers = [abort_reply(mechanism)] if with_ir else [initial, abort_reply(mechanism)]
        command = _Authenticate(protocol, mechanism, initial if with_ir else None, answers)
        response = await self._run(protocol.execute(command, scrub=initial), "authenticate")
        if response.result == "OK":
            protocol.state = aioimaplib.AUTH
            return ""
        detail = failure_detail(command.challenge) if command.challenge else "no details"
        return f"{mechanism} {response.result}: {detail}"

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

    async def uidnext(self, folder: str) -> int:
        """The UID the next mail put into folder will get (STATUS UIDNEXT)."""
        response = await self._ok(self._client.status(wire_name(folder), "(UIDNEXT)"), f"status {folder}")
        for line in response.lines:
            found = _UIDNEXT.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
            if found:
                return int(found.group(1))
        raise SourceError(f"{self.config.name}: STATUS {folder} gave no UIDNEXT")

    async def already_copied(self, uids: Sequence[int], folder: str, since_uid: int) -> set[int]:
        """Which of these mails have an identical copy in folder at since_uid or above.

        A pass that died between COPY and EXPUNGE left them there; copying again would double them.
        """
        wanted: dict[bytes, list[int]] = {}
        for uid, data in await self.fetch(uids):
            wanted.setdefault(hashlib.sha256(data).digest(), []).append(uid)
        await self._ok(self._client.examine(wire_name(folder)), f"examine {folder}")
        there = await self.search(since_uid)
        found: set[int] = set()
        for start in range(0, len(there), self.config.batch_size):
            for _uid, data in await self.fetch(there[start:start + self.config.batch_size]):
                same = wanted.get(hashlib.sha256(data).digest())
                if same:
                    found.add(same.pop())
        if await self._select() != self.uidvalidity:
            raise TemporarySourceError(f"{self.config.name}: UIDVALIDITY of {self.config.folder} "
                                       "changed")
        return found

    async def settle(self, uids: Sequence[int], folder: str | None,
                     copied: Collection[int] = ()) -> None:
        """Move mails to folder (those in copied are there already), or flag them \\Seen without one."""
        if not uids:
            return
        which = uid_set(uids)
        if folder and self._move:
            response = await self._run(self._client.uid("move", which, wire_name(folder)), "move")
            if response.result != "OK":  # already moved by another process: nothing to do
                log.debug("%s move %s: %s", self.config.name, which, response.lines[-1:])
            return
        if folder:
            to_copy = [uid for uid in uids if uid not in copied]
            if to_copy:
                await self._ok(self._client.uid("copy", uid_set(to_copy), wire_name(folder)), "copy")
            await self._ok(self._client.uid("store", which, "+FLAGS", r"(\Seen \Deleted)"),
                           "store")
            # UID EXPUNGE removes only ours; EXPUNGE also mails another client flagged \Deleted.
            expunge = self._client.uid("expunge", which) if self._uidplus else self._client.expunge()
            await self._ok(expunge, "expunge")
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
            if client.protocol.state in (aioimaplib.AUTH, aioimaplib.SELECTED):
                await asyncio.wait_for(client.logout(), 5)
        except Exception:  # closing a broken connection: nothing left to save
            log.debug("%s logout failed", self.config.name)
        transport = getattr(client.protocol, "transport", None)
        if transport is not None:
            transport.close()
