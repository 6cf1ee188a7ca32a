"""SMTP sender: the only module that imports aiosmtplib; one connection per batch.

Library errors are translated at this edge into ``gateway.errors``: ``TemporarySendError``
(4xx, network: retry later) and ``PermanentSendError`` (5xx: give up, record). A temporary
error with ``connection_lost`` means the rest of the batch was not attempted.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from types import TracebackType
from typing import Protocol

import aiosmtplib

from gateway.config import SmtpConfig
from gateway.errors import PermanentSendError, TemporarySendError


class MailSender(Protocol):
    """Hands mails to a server over one connection; used as an async context manager."""

    async def __aenter__(self) -> MailSender:
        """Connect (raises TemporarySendError when the server cannot be reached)."""
        ...

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Say goodbye, or just drop a broken connection."""
        ...

    async def send(self, message: EmailMessage) -> None:
        """Send one mail or raise a SendError."""
        ...


class SmtpSender:
    """aiosmtplib behind the MailSender interface."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> SmtpSender:
        cfg = self.config
        client = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout_seconds,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            tls_context=ssl.create_default_context() if cfg.security != "none" else None,
        )
        try:
            await client.connect()
            if cfg.username and cfg.password is not None:
                await client.login(cfg.username, cfg.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TemporarySendError(f"SMTP login refused: {exc.code} {exc.message}",
                                     connection_lost=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporarySendError(f"SMTP {cfg.host}:{cfg.port} unreachable: {exc}",
                                     connection_lost=True) from exc
        self.client = client
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()

    async def send(self, message: EmailMessage) -> None:
        """Send one mail on the open connection."""
        if self.client is None:
            raise TemporarySendError("not connected", connection_lost=True)
        try:
            refused, _ = await self.client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if all(code >= 500 for code in codes):
                raise PermanentSendError(f"recipients refused: {detail}") from exc
            raise TemporarySendError(f"recipients deferred: {detail}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentSendError(f"{exc.code} {exc.message}") from exc
            raise TemporarySendError(f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError,
                aiosmtplib.SMTPTimeoutError, OSError, TimeoutError) as exc:
            raise TemporarySendError(f"connection lost: {exc}", connection_lost=True) from exc
        except aiosmtplib.SMTPException as exc:
            raise TemporarySendError(str(exc)) from exc
        if refused:
            detail = "; ".join(f"{k}: {v.code} {v.message}" for k, v in refused.items())
            raise PermanentSendError(f"some recipients refused: {detail}")
