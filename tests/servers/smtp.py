"""A real SMTP server on loopback for tests (aiosmtpd): captures mail, can refuse or defer."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


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
            self.sessions.add(id(session))
            self.delivered.append(Delivered(envelope.mail_from, list(envelope.rcpt_tos),
                                            bytes(envelope.original_content or envelope.content),
                                            id(session)))
        return "250 OK"

    def to(self, address: str) -> list[Delivered]:
        """Mails with address among their envelope recipients."""
        with self.lock:
            return [d for d in self.delivered if address in d.rcpt_tos]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """Start, stop and restart (same port) a capturing server."""

    def __init__(self, port: int | None = None) -> None:
        self.handler = CapturingHandler()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        """Listen (the handler, and so the captured mail, survives restarts)."""
        self._controller = Controller(self.handler, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
