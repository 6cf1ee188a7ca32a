"""SMTP sender: the only module that imports aiosmtplib; mails go out prepared as bytes.

``outgoing`` turns a composed mail into its envelope and wire bytes ahead of time (in the
mailer's worker thread, off the event loop); ``SmtpSender.send`` hands them over (with
SMTPUTF8 for an address outside ASCII), and falls back to aiosmtplib's own serialisation
only for 8-bit bytes to a server without 8BITMIME (ours are 7-bit: quoted-printable, base64).

Library errors are translated at this edge into ``gateway.errors``: ``TemporarySendError``
(4xx, network: retry later) and ``PermanentSendError`` (5xx: give up, record). A temporary
error with ``connection_lost`` means the rest of the batch was not attempted. A refused
sign-in (password, or an OAuth token even after renewing it) or a TLS failure keeps the mail
queued too: it is a ``TemporarySendError`` whose message says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Protocol

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender

from gateway.auth.signin import PasswordSignIn, SignIn
from gateway.auth.tls import client_context, tls_problem
from gateway.config import SmtpConfig
from gateway.errors import PermanentSendError, SignInError, TemporarySendError, TokenEndpointUnavailable
from gateway.outbound.wire import wire_bytes


@dataclass(frozen=True)
class Outgoing:
    """A mail ready for the wire: envelope sender, recipients, bytes, and the mail itself."""

    sender: str
    recipients: list[str]
    data: bytes
    message: Message

    @property
    def plain(self) -> bool:
        """ASCII envelope: the prepared bytes can go to any server with 8BITMIME."""
        return (self.sender + "".join(self.recipients)).isascii()


def outgoing(message: Message, sender: str | None = None,
             recipients: list[str] | None = None) -> Outgoing:
    """Envelope (From, To and Cc; no Bcc is ever set) and wire bytes (``gateway.outbound.wire``);
    an envelope the caller knows is not parsed out of the headers again."""
    sender = sender or extract_sender(message)
    if sender is None:
        raise ValueError("the mail has no From header")
    if recipients is None:
        recipients = extract_recipients(message)
    utf8 = not (sender + "".join(recipients)).isascii()
    return Outgoing(sender, recipients, wire_bytes(message, utf8), message)


class MailSender(Protocol):
    """Hands mails to a server over one connection; used as an async context manager."""

    async def __aenter__(self) -> MailSender:
        """Connect (raises TemporarySendError when the server cannot be reached)."""
        ...

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        """Say goodbye, or just drop a broken connection."""
        ...

    async def send(self, mail: Outgoing) -> None:
        """Send one mail or raise a SendError."""
        ...


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and the exceptions it was raised from: aiosmtplib wraps TLS errors."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


class SmtpSender:
    """aiosmtplib behind the MailSender interface."""

    def __init__(self, config: SmtpConfig, signin: SignIn | None = None) -> None:
        self.config = config
        if signin is None and config.auth == "oauth2":
            raise ValueError("[smtp] auth = \"oauth2\" needs a SignIn")
        if signin is None and config.username and config.password is not None:
            signin = PasswordSignIn(config.username, config.password)
        self.signin = signin  # None: no login
        self.client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> SmtpSender:
        cfg = self.config
        where = f"{cfg.host}:{cfg.port}"
        client = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout_seconds,
            use_tls=cfg.security == "tls",
            start_tls=cfg.security == "starttls",
            tls_context=client_context(cfg.ca_file) if cfg.security != "none" else None,
        )
        try:
            await client.connect()
            if self.signin is not None:
                await self._sign_in(client)
        except (SignInError, TokenEndpointUnavailable) as exc:
            client.close()
            raise TemporarySendError(f"SMTP {where}: {exc}", connection_lost=True) from exc
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise TemporarySendError(f"SMTP login refused: {exc.code} {exc.message}",
                                     connection_lost=True) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            problem = next(filter(None, (tls_problem(e, where, cfg.ca_file) for e in _chain(exc))), None)
            if problem is None and "STARTTLS" in str(exc):
                problem = f"{where} does not offer STARTTLS; not sending without TLS"
            raise TemporarySendError(f"SMTP {problem or f'{where} unreachable: {exc}'}",
                                     connection_lost=True) from exc
        self.client = client
        return self

    async def _sign_in(self, client: aiosmtplib.SMTP) -> None:
        """AUTH with a password, or XOAUTH2 with an access token renewed once after a refusal."""
        assert self.signin is not None
        creds = await self.signin.credentials()
        if not creds.oauth:
            await client.login(creds.username, creds.secret)
            return
        if client.last_ehlo_response is None:
            await client.ehlo()
        if "xoauth2" not in client.server_auth_methods:
            raise SignInError("the server does not offer AUTH XOAUTH2; use auth = \"password\"")
        try:
            await client.auth_xoauth2(creds.username, creds.secret)
        except aiosmtplib.SMTPAuthenticationError:
            creds = await self.signin.credentials(renew=True)
            try:
                await client.auth_xoauth2(creds.username, creds.secret)
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise SignInError(
                    f"XOAUTH2 sign-in of {creds.username!r} refused even with a new access token "
                    f"({exc.code} {exc.message}): check that the app may send as this mailbox "
                    f"(SMTP.Send, SMTP AUTH enabled), then run `ticketgate auth login {creds.grant}`"
                ) from exc

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()

    async def send(self, mail: Outgoing) -> None:
        """Send one mail on the open connection."""
        client = self.client
        if client is None:
            raise TemporarySendError("not connected", connection_lost=True)
        try:
            if client.is_ehlo_or_helo_needed:  # what the server supports decides how to send
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()
            eight_bit = client.supports_extension("8BITMIME")
            options = ["BODY=8BITMIME"] if eight_bit else []
            if not mail.plain:  # an address outside ASCII
                if not client.supports_extension("SMTPUTF8"):
                    raise TemporarySendError("an address contains non-ASCII characters, but the "
                                             "server does not support SMTPUTF8")
                options.append("SMTPUTF8")
            if eight_bit or mail.data.isascii():
                refused, _ = await client.sendmail(mail.sender, mail.recipients, mail.data,
                                                   mail_options=options)
            else:  # 8-bit bytes and a server without 8BITMIME: aiosmtplib re-encodes them
                refused, _ = await client.send_message(mail.message)
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
