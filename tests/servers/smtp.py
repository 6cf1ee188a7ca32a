"""A real SMTP server on loopback for tests (aiosmtpd): captures mail, can refuse or defer;
optionally speaks TLS (implicit or STARTTLS) and AUTH XOAUTH2 checked against a token server."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult


@dataclass
class Delivered:
    """One accepted mail."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    session: int

    @property
    def message(self) -> EmailMessage:
        """The mail parsed (policy.default, so headers are decoded)."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class CapturingHandler:
    """aiosmtpd handler: keeps every mail; refuses (5xx) or defers (4xx) chosen recipients."""

    delivered: list[Delivered] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    sessions: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pause: float = 0.0  # seconds each DATA takes before it is accepted (a slow server)
    busy: int = 0  # DATA commands being answered right now
    most_busy: int = 0  # the most at once: how many connections really sent in parallel
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 no such user"
        if address.lower() in self.defer:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
        if self.pause:
            await asyncio.sleep(self.pause)
        with self.lock:
            self.busy -= 1
            self.sessions.add(id(session))
            self.delivered.append(Delivered(envelope.mail_from, list(envelope.rcpt_tos),
                                            bytes(envelope.original_content or envelope.content),
                                            id(session)))
        with self.arrived:
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until count mails were delivered in all (False when timeout passed first)."""
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.delivered) >= count, timeout)

    def to(self, address: str) -> list[Delivered]:
        """Mails with address among their envelope recipients."""
        with self.lock:
            return [d for d in self.delivered if address in d.rcpt_tos]


@dataclass
class OAuthHandler(CapturingHandler):
    """A capturing handler that also offers AUTH XOAUTH2; user_of says whose a token is (or None).

    Like Gmail and Exchange Online, a refused token gets a 334 error challenge first; the
    client must answer it before the final 535.
    """

    user_of: Callable[[str], str | None] = lambda token: None
    signed_in: list[str] = field(default_factory=list)
    refused: int = 0

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        blob: Any = args[1] if len(args) > 1 else await server.challenge_auth("", encode_to_b64=False)
        if blob is MISSING:
            return AuthResult(success=False, handled=False)
        try:
            fields = dict(part.split("=", 1) for part in base64.b64decode(blob).decode().split("\x01")
                          if "=" in part)
        except (ValueError, UnicodeError):
            fields = {}
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        if user and self.user_of(token) == user:
            self.signed_in.append(user)
            return AuthResult(success=True, auth_data=user)
        self.refused += 1
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        await server.challenge_auth(error)  # the client answers with an empty line
        return AuthResult(success=False, handled=False)  # aiosmtpd then says 535


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """Start, stop and restart (same port) a capturing server."""

    def __init__(self, port: int | None = None, *, tls: tuple[Path, Path] | None = None,
                 implicit_tls: bool = False,
                 user_of: Callable[[str], str | None] | None = None, smtputf8: bool = True) -> None:
        """tls (certificate, key): STARTTLS required, or implicit TLS; user_of: offer XOAUTH2;
        smtputf8=False: a server without SMTPUTF8 (no addresses outside ASCII)."""
        self.handler: CapturingHandler = (OAuthHandler(user_of=user_of) if user_of is not None
                                          else CapturingHandler())
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls, self.implicit_tls, self.smtputf8 = tls, implicit_tls, smtputf8
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        """Listen (the handler, and so the captured mail, survives restarts)."""
        options: dict[str, Any] = {"enable_SMTPUTF8": self.smtputf8}
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            options.update({"ssl_context": context} if self.implicit_tls
                           else {"tls_context": context, "require_starttls": True})
        if isinstance(self.handler, OAuthHandler):
            options["auth_require_tls"] = self.tls is not None
        self._controller = Controller(self.handler, hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
